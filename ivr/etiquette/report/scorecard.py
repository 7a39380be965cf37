"""One call's scorecard (ETIQUETTE.md "What is measured per call"), from its log alone, read as
the neutral facts of ivr.call.facts: no Twilio parameter names here except where the figure
is Twilio's own (QueueTime of a caller still on hold, caller input for a manager to read)."""
from __future__ import annotations

from datetime import datetime, timezone

from ivr.call import facts as F
from ivr.etiquette.report.log import CallLog, Noted, Request, Response, before_first_say, num, read_log

from ivr.etiquette.report.line import line_card
from ivr.flow.load import LADDERS  # E2 silent line; the others (E3, E4, E5, E6) unclear
ENDS_SERVICE = (F.HungUp, F.Dropped, F.CallEnded, F.Fallback, F.Lost)
LINE_LOST = {"failed"}  # a call that ended so (or was closed by the reconciler) was cut off, not hung up


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).astimezone().isoformat(timespec="seconds")


def time_to_greeting_s(log: CallLog) -> float | None:
    """What the caller waits from the call being answered (our first request's time) to the first
    word: the time until the answer that first says something, plus what that answer plays before
    its first <Say> (a <Pause>). Our own processing inside one webhook is not the caller's wait
    as the log measures it; a greeting that comes only after a pause and a redirect is."""
    start = next((e for e in log.entries if isinstance(e, Request)), None)
    if start is None:
        return None
    waited = 0.0
    for e in log.entries[log.entries.index(start):]:
        if not isinstance(e, Response):
            continue
        says, before = before_first_say(e.twiml)
        if says:
            gap = (e.t - start.t) if e.t is not None and start.t is not None else 0.0
            return round(max(gap, waited) + before, 1)
        waited += before
    return None


def retries(facts: list) -> dict:
    counts = dict.fromkeys(LADDERS, 0)
    for f in facts:
        if isinstance(f, F.Listening) and f.what == "retry":
            counts[str(f.ladder)] = counts.get(str(f.ladder), 0) + 1
    return counts


def consents(facts: list) -> list[dict]:
    return [{"step": f.step, "kind": str(f.about), "given": bool(f.given)}
            for f in facts if isinstance(f, F.Chose) and f.what == "consent"]


def _last_consent(facts: list, upto: int, step, kind: str) -> bool | None:
    for f in reversed(facts[:upto]):
        if isinstance(f, F.Chose) and f.what == "consent" and f.step == step:
            return bool(f.given) if f.about == kind else None
    return None


def _line_lost(log: CallLog) -> bool:
    ended = log.first(F.CallEnded)
    return log.first(F.Lost) is not None or (ended is not None and ended.status in LINE_LOST)


def holds(log: CallLog) -> list[dict]:
    """Every hold: promised and actual length (E9). Actual = the hold's end; for a caller who left by
    hanging up, the longest of the QueueTime Twilio reported and the time the log shows (marked
    estimated). A hold over its promise is a breach. `result`: served | limit | hung up (the caller
    hung up on hold) | dropped (the line was lost) | error | in progress."""
    entries, facts = log.entries, log.facts
    lost = _line_lost(log)
    out, fact_index = [], -1
    for i, entry in enumerate(entries):
        if not isinstance(entry, Noted):
            continue
        fact_index += 1
        f = entry.fact
        if not (isinstance(f, F.Hold) and f.what == "started"):
            continue
        promised = num(f.promised)
        hold = {"step": f.step, "promised": promised, "waited": None, "estimated": False,
                "result": "in progress", "breach": None, "over_by": None, "check_ins": [], "longest_gap": None,
                "consent": _last_consent(facts, fact_index, f.step, "hold")}
        queue_times, t0, deliveries = [], entry.t, set()
        for later in entries[i + 1:]:
            if isinstance(later, Request):
                qt = num(later.params.get("QueueTime"))
                if qt is not None:
                    queue_times.append(qt)
                continue
            if not isinstance(later, Noted):
                continue
            g = later.fact
            if isinstance(g, F.Hold) and g.what == "check_in":
                if g.delivery is not None and g.delivery in deliveries:
                    continue  # the platform retried the same request: one check-in
                deliveries.add(g.delivery)
                if num(g.queue_time) is not None:
                    hold["check_ins"].append(num(g.queue_time))
            elif isinstance(g, F.Hold) and g.what == "ended":
                hold["waited"], hold["result"] = num(g.waited), str(g.result or "?")
                break
            elif isinstance(g, F.Hold) and g.what == "started" or isinstance(g, ENDS_SERVICE):
                if isinstance(g, F.Hold):
                    hold["result"] = "?"
                elif isinstance(g, F.Fallback):
                    hold["result"] = "error"
                else:
                    hold["result"] = "dropped" if lost else "hung up"
                hold["estimated"] = True
                by_clock = (later.t - t0) if t0 is not None and later.t is not None else None
                known = [v for v in (*queue_times, by_clock) if v is not None]
                hold["waited"] = round(max(known), 1) if known else None
                break
        else:  # still on hold
            if queue_times:
                hold["waited"], hold["estimated"] = max(queue_times), True
        waited = hold["waited"]
        if waited is not None and promised is not None:
            hold["over_by"] = round(waited - promised, 1)
            hold["breach"] = waited > promised
        if waited is not None:
            marks = [0.0, *sorted(q for q in hold["check_ins"] if q <= waited), waited]
            hold["longest_gap"] = round(max(b - a for a, b in zip(marks, marks[1:])), 1)
        out.append(hold)
    return out


def transfers(facts: list) -> list[dict]:
    """Every transfer offered (E10): consent given or not, and the outcome of each attempt.
    A transfer the caller said no to is listed with outcome "no-consent"."""
    out = []
    for i, f in enumerate(facts):
        if isinstance(f, F.Chose) and f.what == "consent" and not f.given and f.about == "transfer":
            out.append({"step": f.step, "to": None, "ring_limit": None, "consent": False,
                        "outcome": "no-consent", "agent_accepted": False})
        if not (isinstance(f, F.Transfer) and f.what == "started"):
            continue
        record = {"step": f.step, "to": f.to, "ring_limit": num(f.ring_limit),
                  "consent": _last_consent(facts, i, f.step, "transfer"), "outcome": "in progress",
                  "agent_accepted": False}
        for g in facts[i + 1:]:
            if isinstance(g, F.Transfer) and g.what == "accepted":
                record["agent_accepted"] = True
            elif isinstance(g, F.Transfer) and g.what == "ended":
                record["outcome"] = str(g.outcome or "?")
                break
            elif isinstance(g, F.Transfer) and g.what == "started":
                record["outcome"] = "?"
                break
            elif isinstance(g, ENDS_SERVICE):
                record["outcome"] = "failed" if isinstance(g, F.Fallback) else "dropped"
                break
        out.append(record)
    return out


def ending(facts: list) -> dict:
    """Did a goodbye (or a ladder's final words) come before the hang-up (E11), and who hung up first."""
    hang = next((i for i, f in enumerate(facts) if isinstance(f, F.HungUp)), None)
    ended = hang is not None or any(isinstance(f, (F.CallEnded, F.Lost)) for f in facts)
    if not ended:
        return {"in_progress": True, "goodbye": None, "hung_up_first": None}
    before = facts[:hang] if hang is not None else facts
    said_goodbye = any(isinstance(f, F.Goodbye) or (isinstance(f, F.Listening) and f.what == "final") for f in before)
    if hang is None:
        return {"in_progress": False, "goodbye": said_goodbye, "hung_up_first": None}
    h = facts[hang]
    after = bool(h.after_goodbye) or said_goodbye
    if h.by == "caller":
        who = "caller" if after else "caller, before goodbye"
    else:
        who = "engine" if after else "engine, without goodbye"
    return {"in_progress": False, "goodbye": said_goodbye, "hung_up_first": who}


def caller_input(log: CallLog) -> list[str]:
    """What the caller pressed or said, in order (for a manager to see what was not understood)."""
    out = []
    for r in log.requests:
        if r.params.get("Digits"):
            out.append(f"key {r.params['Digits']}")
        elif r.params.get("SpeechResult"):
            conf = num(r.params.get("Confidence"))
            out.append(f"“{r.params['SpeechResult']}”" + (f" ({conf:.2f})" if conf is not None else ""))
    return out


FLAGS = (("in_progress", "in progress"), ("hold_breaches", "breach"), ("dropped", "dropped"),
         ("hung_up_on_hold", "hung up on hold"), ("fallbacks", "fallback"), ("lost", "lost"))


def flags(card: dict) -> list[str]:
    out = [label for key, label in FLAGS if card[key]]
    if any(x["consent"] is not True for x in card["holds"] + card["transfers"] if x.get("outcome") != "no-consent"):
        out.append("no consent")
    if card["hung_up_first"] == "engine, without goodbye":
        out.append("hung up on caller")
    return out


def recordings(facts: list, card: dict) -> None:
    """A recording right after the caller chose "leave a message" is a message; any other is a complaint (E15)."""
    asked_message = False
    for f in facts:
        if isinstance(f, F.Chose) and f.what == "offer":
            asked_message = f.offer == "message"
        elif isinstance(f, F.Recording) and f.what == "kept":
            item = {"step": f.step, "url": f.url, "seconds": num(f.seconds)}
            (card["messages"] if asked_message else card["complaints"]).append(item)
            asked_message = False


def score_call(raw: list, call_sid: str | None = None, flow: str | None = None) -> dict:
    """The scorecard of one call, from its log alone."""
    log = read_log(raw)
    facts = log.facts
    started = log.first(F.CallStarted)
    greeted = log.first(F.Greeted)
    first_request = log.requests[0].params if log.requests else {}
    ended = log.first(F.CallEnded)
    per_ladder = retries(facts)
    call_holds = holds(log)
    lost = _line_lost(log)
    drops = [f for f in facts if isinstance(f, F.Dropped)]
    t0 = log.t0()
    card = {
        "call_sid": call_sid or first_request.get("CallSid"),
        "flow": (started.flow if started else None) or flow or "?",
        "version": started.version if started else None,
        "caller": first_request.get("From"),
        "started_at": t0,
        "started": iso(t0),
        "greeted": bool(greeted and greeted.text),
        "greeting": greeted.text if greeted else None,
        "time_to_greeting_s": time_to_greeting_s(log),
        "retries": per_ladder,
        "silent_retries": per_ladder.get("silence", 0),
        "unclear_retries": sum(n for ladder, n in per_ladder.items() if ladder != "silence"),
        "final_words": [f.ladder for f in facts if isinstance(f, F.Listening) and f.what == "final"],
        "repeated_louder": sum(isinstance(f, F.Chose) and f.what == "repeat_louder" for f in facts),
        "consents": consents(facts),
        "holds": call_holds,
        "hold_breaches": sum(bool(h["breach"]) for h in call_holds),
        "transfers": transfers(facts),
        **ending(facts),
        # a caller who hangs up on hold chose to (counted apart); a drop is a call cut off (E12)
        "dropped": [{"step": f.step, "during": f.during} for f in drops if f.during != "hold" or lost],
        "hung_up_on_hold": [{"step": h["step"], "waited": h["waited"]} for h in call_holds if h["result"] == "hung up"],
        "fallbacks": sum(isinstance(f, F.Fallback) for f in facts),
        "lost": log.first(F.Lost) is not None,  # closed by the reconciler: Twilio never reported its end
        "complaints": [],
        "messages": [],
        "call_back_requested": any(isinstance(f, F.CallBackRequested) for f in facts),
        "end_status": ended.status if ended else ("lost" if log.first(F.Lost) else None),
        "duration": num(ended.duration) if ended else None,
        "caller_input": caller_input(log),
        "line": line_card(facts),  # what the caller's audio said about the line (issue 11)
    }
    recordings(facts, card)
    card["flags"] = flags(card)
    return card
