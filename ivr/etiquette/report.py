"""`ivr report`: the compliance scorecard of ETIQUETTE.md, per call and per flow, from the call log.

Scoring is a handful of small pure functions over one call's log (the entries
ivr/twilio/app.py appends: requests, responses and the engine's notes):
`score_call(log) -> dict`, then `summarise(cards) -> {flow: dict}`. Formatting
(text, JSON, HTML) is separate and never changes a figure.

    ivr report [--store URL] [--since WHEN] [--flow NAME] [--format text|json|html] [--out FILE] [--call SID]

Every string taken from the log (caller speech, parameters, step names) is
untrusted: the HTML is rendered by Jinja2 with autoescaping, links are only
made of http(s) URLs, and no output format executes anything it reads.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

LADDERS = ("silence", "quiet", "noisy", "not_understood")   # E2 silent line; the others (E3, E5, E6) unclear
GOODBYE_FACTS = {"goodbye", "final_words"}        # E11 goodbye, or the last words of a ladder (E2/E3/E5)
TRANSFER_OUTCOMES = ("connected", "declined", "no_answer", "busy", "failed", "canceled",
                     "no-consent", "dropped", "in progress")
OUTCOME_LABELS = {"connected": "connected", "declined": "agent did not accept", "no_answer": "no answer",
                  "busy": "busy", "failed": "failed", "canceled": "canceled",
                  "no-consent": "caller said no", "dropped": "caller hung up while ringing",
                  "in progress": "in progress"}
HANG_UPS = ("caller", "engine", "caller, before goodbye", "engine, without goodbye")
HANG_UP_LABELS = {"caller": "caller, after goodbye", "engine": "engine, after goodbye",
                  "caller, before goodbye": "caller, before goodbye", "engine, without goodbye": "engine, no goodbye"}
INPUT_PARAMS = ("Digits", "SpeechResult", "Confidence", "QueueResult", "QueueTime", "DialCallStatus",
                "RecordingUrl", "RecordingDuration", "CallStatus")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
TEMPLATES = Path(__file__).resolve().parent / "templates"


# --- one call ------------------------------------------------------------------------------

def _facts(log: list[dict]) -> list[dict]:
    """The engine's and the app's notes."""
    return [e for e in log if isinstance(e, dict) and "fact" in e]


def _num(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _params(entry: dict) -> dict:
    params = entry.get("params")
    return params if isinstance(params, dict) else {}


def _printable(text: str) -> str:
    """Text for a terminal: control characters from a hostile log could drive it (ANSI escapes)."""
    return CONTROL.sub("?", text)


def _first(facts: list[dict], fact: str) -> dict | None:
    return next((f for f in facts if f.get("fact") == fact), None)


def time_to_greeting_ms(log: list[dict]) -> float | None:
    """From the first /twilio/voice request to its response, in milliseconds."""
    start = next((i for i, e in enumerate(log) if e.get("kind") == "request"
                  and str(e.get("path", "")).startswith("/twilio/voice")), None)
    if start is None:
        return None
    answer = next((e for e in log[start + 1:] if e.get("kind") == "response"
                   and str(e.get("path", "")).startswith("/twilio/voice")), None)
    t0, t1 = _num(log[start].get("t")), _num(answer.get("t")) if answer else None
    return round((t1 - t0) * 1000, 1) if t0 is not None and t1 is not None else None


def retries(facts: list[dict]) -> dict:
    """Re-prompts used per listening ladder (E2 silence; E3 quiet, E5 noisy, E6 not understood)."""
    counts = dict.fromkeys(LADDERS, 0)
    for f in facts:
        if f.get("fact") == "retry":
            ladder = str(f.get("ladder", "?"))
            counts[ladder] = counts.get(ladder, 0) + 1
    return counts


def consent_kind(entry: dict) -> str:
    """hold | transfer: what a consent note was about."""
    return str(entry.get("about", "?"))


def consents(facts: list[dict]) -> list[dict]:
    return [{"step": f.get("step"), "kind": consent_kind(f), "given": bool(f.get("given"))}
            for i, f in enumerate(facts) if f.get("fact") == "consent"]


def _last_consent(facts: list[dict], upto: int, step, kind: str) -> bool | None:
    for i in range(upto - 1, -1, -1):
        f = facts[i]
        if f.get("fact") == "consent" and f.get("step") == step:
            return bool(f.get("given")) if consent_kind(f) == kind else None
    return None


def holds(log: list[dict]) -> list[dict]:
    """Every hold: promised and actual length (E9). Actual = hold_ended.waited; for a hold the caller
    left by hanging up, the longest of the QueueTime Twilio reported and the time the log shows
    (marked estimated). A hold over its promise is a breach. Check-ins come from the hold wait URL;
    longest_gap is the longest stretch without a voice (start, each check-in, end)."""
    facts = _facts(log)
    out = []
    for i, entry in enumerate(log):
        if entry.get("fact") != "hold_started":
            continue
        promised = _num(entry.get("promised"))
        hold = {"step": entry.get("step"), "promised": promised, "waited": None, "estimated": False,
                "result": "in progress", "breach": None, "over_by": None, "check_ins": [], "longest_gap": None,
                "consent": _last_consent(facts, facts.index(entry), entry.get("step"), "hold")}
        queue_times, t0 = [], _num(entry.get("t"))
        for later in log[i + 1:]:
            if later.get("kind") == "request":
                qt = _num(_params(later).get("QueueTime"))
                if qt is not None:
                    queue_times.append(qt)
            elif later.get("fact") == "check_in":
                qt = _num(later.get("queue_time"))
                if qt is not None:
                    hold["check_ins"].append(qt)
            elif later.get("fact") == "hold_ended":
                hold["waited"], hold["result"] = _num(later.get("waited")), str(later.get("result", "?"))
                break
            elif later.get("fact") in ("hold_started", "fallback", "hung_up", "dropped", "call_ended"):
                hold["result"] = {"hold_started": "?", "fallback": "error"}.get(later["fact"], "dropped")
                t_end = _num(later.get("t"))
                hold["estimated"] = True
                by_clock = (t_end - t0) if t0 is not None and t_end is not None else None
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


def transfers(facts: list[dict]) -> list[dict]:
    """Every transfer offered (E10): consent given or not, and the outcome of each attempt.
    A transfer the caller said no to is listed with outcome "no-consent"."""
    out = []
    for i, f in enumerate(facts):
        if f.get("fact") == "consent" and not f.get("given") and consent_kind(f) == "transfer":
            out.append({"step": f.get("step"), "to": None, "ring_limit": None, "consent": False,
                        "outcome": "no-consent", "agent_accepted": False})
        if f.get("fact") != "transfer_started":
            continue
        record = {"step": f.get("step"), "to": f.get("to"), "ring_limit": _num(f.get("ring_limit")),
                  "consent": _last_consent(facts, i, f.get("step"), "transfer"), "outcome": "in progress",
                  "agent_accepted": False}
        for later in facts[i + 1:]:
            if later.get("fact") == "agent_accepted":
                record["agent_accepted"] = True
            elif later.get("fact") == "transfer_ended":
                record["outcome"] = str(later.get("outcome", "?"))
                break
            elif later.get("fact") in ("transfer_started", "fallback", "hung_up", "dropped", "call_ended"):
                record["outcome"] = {"transfer_started": "?", "fallback": "failed"}.get(later["fact"], "dropped")
                break
        out.append(record)
    return out


def ending(facts: list[dict]) -> dict:
    """Did a goodbye (or a ladder's final words) come before the hang-up (E11), and who hung up first."""
    hang = next((i for i, f in enumerate(facts) if f.get("fact") == "hung_up"), None)
    ended = hang is not None or _first(facts, "call_ended") is not None
    if not ended:
        return {"in_progress": True, "goodbye": None, "hung_up_first": None}
    before = facts[:hang] if hang is not None else facts
    said_goodbye = any(f.get("fact") in GOODBYE_FACTS for f in before)
    if hang is None:
        return {"in_progress": False, "goodbye": said_goodbye, "hung_up_first": None}
    h = facts[hang]
    after = bool(h.get("after_goodbye")) or said_goodbye
    if h.get("by") == "caller":
        who = "caller" if after else "caller, before goodbye"
    else:
        who = "engine" if after else "engine, without goodbye"
    return {"in_progress": False, "goodbye": said_goodbye, "hung_up_first": who}


def caller_input(log: list[dict]) -> list[str]:
    """What the caller pressed or said, in order (for a manager to see what was not understood)."""
    out = []
    for e in log:
        if e.get("kind") != "request":
            continue
        params = _params(e)
        if params.get("Digits"):
            out.append(f"key {params['Digits']}")
        elif params.get("SpeechResult"):
            conf = _num(params.get("Confidence"))
            out.append(f"“{params['SpeechResult']}”" + (f" ({conf:.2f})" if conf is not None else ""))
    return out


def _flags(card: dict) -> list[str]:
    flags = []
    if card["in_progress"]:
        flags.append("in progress")
    if card["hold_breaches"]:
        flags.append("breach")
    if card["dropped"]:
        flags.append("dropped")
    if card["fallbacks"]:
        flags.append("fallback")
    if card.get("lost"):
        flags.append("lost")
    if any(x["consent"] is not True for x in card["holds"] + card["transfers"] if x.get("outcome") != "no-consent"):
        flags.append("no consent")
    if card["hung_up_first"] == "engine, without goodbye":
        flags.append("hung up on caller")
    return flags


def score_call(log: list[dict], call_sid: str | None = None, flow: str | None = None) -> dict:
    """The scorecard of one call, from its log alone."""
    log = [e for e in log if isinstance(e, dict)]
    facts = _facts(log)
    started_note = _first(facts, "call_started") or {}
    greeted = _first(facts, "greeted")
    first_request = _params(next((e for e in log if e.get("kind") == "request"), {}))
    t0 = _num(log[0].get("t")) if log else None
    ended = _first(facts, "call_ended") or {}
    per_ladder = retries(facts)
    call_holds = holds(log)
    card = {
        "call_sid": call_sid or first_request.get("CallSid"),
        "flow": started_note.get("flow") or flow or "?",
        "version": started_note.get("version"),
        "caller": first_request.get("From"),
        "started_at": t0,
        "started": _iso(t0),
        "greeted": bool(greeted and greeted.get("text")),
        "greeting": (greeted or {}).get("text"),
        "time_to_greeting_ms": time_to_greeting_ms(log),
        "retries": per_ladder,
        "silent_retries": per_ladder.get("silence", 0),
        "unclear_retries": sum(n for ladder, n in per_ladder.items() if ladder != "silence"),
        "final_words": [f.get("ladder") for f in facts if f.get("fact") == "final_words"],
        "repeated_louder": sum(f.get("fact") == "repeated_louder" for f in facts),
        "consents": consents(facts),
        "holds": call_holds,
        "hold_breaches": sum(bool(h["breach"]) for h in call_holds),
        "transfers": transfers(facts),
        **ending(facts),
        "dropped": [{"step": f.get("step"), "during": f.get("during")} for f in facts if f.get("fact") == "dropped"],
        "fallbacks": sum(f.get("fact") == "fallback" for f in facts),
        "lost": any(f.get("fact") == "lost" for f in facts),  # closed by the reconciler: its end never came
        "complaints": [],
        "messages": [],
        "call_back_requested": any(f.get("fact") == "call_back_requested" for f in facts),
        "end_status": ended.get("status"),
        "duration": _num(ended.get("duration")),
        "caller_input": caller_input(log),
    }
    _recordings(facts, card)
    card["flags"] = _flags(card)
    return card


def _recordings(facts: list[dict], card: dict) -> None:
    """A recording right after the caller chose "leave a message" is a message; any other is a complaint (E15)."""
    asked_message = False
    for f in facts:
        if f.get("fact") == "offer_taken":
            asked_message = f.get("offer") == "message"
        elif f.get("fact") == "recorded":
            item = {"step": f.get("step"), "url": f.get("url"), "seconds": _num(f.get("seconds"))}
            (card["messages"] if asked_message else card["complaints"]).append(item)
            asked_message = False


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).astimezone().isoformat(timespec="seconds")


# --- per flow ------------------------------------------------------------------------------

def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 1) if values else None


def summarise_flow(cards: list[dict]) -> dict:
    n = len(cards)
    ended = [c for c in cards if not c["in_progress"]]
    all_holds = [h for c in cards for h in c["holds"]]
    all_transfers = [t for c in cards for t in c["transfers"]]
    asked = {kind: [x for c in cards for x in c["consents"] if x["kind"] == kind] for kind in ("hold", "transfer")}
    hung = {who: sum(c["hung_up_first"] == who for c in cards) for who in HANG_UPS}
    hung_known = sum(hung.values())
    per_ladder = {ladder: sum(c["retries"].get(ladder, 0) for c in cards) for ladder in LADDERS}
    for c in cards:  # ladders a flow may add beyond the four standard ones
        for ladder, count in c["retries"].items():
            if ladder not in per_ladder:
                per_ladder[ladder] = per_ladder.get(ladder, 0) + count
    outcomes = {o: 0 for o in TRANSFER_OUTCOMES}
    for t in all_transfers:
        outcomes[t["outcome"]] = outcomes.get(t["outcome"], 0) + 1
    silent = sum(c["silent_retries"] for c in cards)
    unclear = sum(c["unclear_retries"] for c in cards)
    return {
        "calls": n,
        "in_progress": n - len(ended),
        "greeted": sum(c["greeted"] for c in cards),
        "greeted_pct": _pct(sum(c["greeted"] for c in cards), n),
        "mean_time_to_greeting_ms": _mean(c["time_to_greeting_ms"] for c in cards),
        "retries": per_ladder,
        "silent_retries": silent,
        "unclear_retries": unclear,
        "retries_per_call": round((silent + unclear) / n, 2) if n else None,
        "holds": len(all_holds),
        "hold_breaches": sum(bool(h["breach"]) for h in all_holds),
        "hold_breach_pct": _pct(sum(bool(h["breach"]) for h in all_holds), len(all_holds)),
        "mean_hold_s": _mean(h["waited"] for h in all_holds),
        "mean_promise_s": _mean(h["promised"] for h in all_holds),
        "hold_consent_asked": len(asked["hold"]),
        "hold_consent_given": sum(x["given"] for x in asked["hold"]),
        "transfers": sum(t["outcome"] != "no-consent" for t in all_transfers),
        "transfers_by_outcome": outcomes,
        "transfer_consent_asked": len(asked["transfer"]),
        "transfer_consent_given": sum(x["given"] for x in asked["transfer"]),
        "transfer_consent_pct": _pct(sum(x["given"] for x in asked["transfer"]), len(asked["transfer"])),
        "ended": len(ended),
        "ended_with_goodbye": sum(bool(c["goodbye"]) for c in ended),
        "ended_with_goodbye_pct": _pct(sum(bool(c["goodbye"]) for c in ended), len(ended)),
        "hung_up_first": hung,
        "caller_hung_up_first_pct": _pct(hung["caller"] + hung["caller, before goodbye"], hung_known),
        "drops": sum(len(c["dropped"]) for c in cards),
        "fallbacks": sum(c["fallbacks"] for c in cards),
        "lost": sum(bool(c.get("lost")) for c in cards),
        "complaints": sum(len(c["complaints"]) for c in cards),
        "call_backs": sum(c["call_back_requested"] for c in cards),
    }


def summarise(cards: list[dict]) -> dict:
    """{flow name: sums and rates}, flows in order of their first call."""
    by_flow: dict[str, list[dict]] = {}
    for card in cards:
        by_flow.setdefault(card["flow"], []).append(card)
    return {flow: summarise_flow(group) for flow, group in by_flow.items()}


# --- reading the store ---------------------------------------------------------------------

class ReportError(Exception):
    """A one-line message for the user; exit code 1."""


def _store_path_problem(url: str) -> str | None:
    """A report only reads: a SQLite file that is not there is a mistake, not a new empty store."""
    if not url.startswith("sqlite:"):
        return None
    path = Path(url.removeprefix("sqlite:///") or "calls.db")
    if not path.exists():
        return f"no SQLite store at {path}: check --store (sqlite:///relative.db or sqlite:////absolute.db)"
    if path.is_dir():
        return f"{path} is a directory, not a SQLite store file"
    return None


@contextmanager
def opened(url: str):
    """The store, read-only in spirit; every failure becomes a ReportError (one line, exit 1)."""
    from ivr.store import StoreError, open_store

    problem = _store_path_problem(url)
    if problem:
        raise ReportError(problem)
    try:
        store = open_store(url)
    except (ValueError, StoreError) as e:
        raise ReportError(str(e)) from e
    try:
        yield store
    except StoreError as e:
        raise ReportError(str(e)) from e
    finally:
        store.close()


def load_cards(url: str, since: float | None = None, flow: str | None = None) -> list[dict]:
    with opened(url) as store:
        cards = [score_call(store.call_log(row["call_sid"]), row["call_sid"], row.get("flow"))
                 for row in store.list_calls(since)]
    return [c for c in cards if not flow or c["flow"] == flow]


def load_call(url: str, call_sid: str) -> tuple[dict, list[dict]]:
    """One call by its SID, or by the end of it when that is unambiguous (tables show SIDs shortened)."""
    with opened(url) as store:
        log = store.call_log(call_sid)
        if not log and call_sid:
            matches = [r["call_sid"] for r in store.list_calls() if r["call_sid"].endswith(call_sid)]
            if len(matches) > 1:
                raise ReportError(f"{len(matches)} calls end with {call_sid}: give more of the SID")
            if matches:
                call_sid = matches[0]
                log = store.call_log(call_sid)
    if not log:
        raise ReportError(f"no log for call {call_sid} in {url}")
    return score_call(log, call_sid), log


def build_report(cards: list[dict], store: str = "", since: float | None = None, flow: str | None = None) -> dict:
    return {"generated": _iso(datetime.now(timezone.utc).timestamp()), "store": store,
            "since": _iso(since), "flow": flow, "flows": summarise(cards), "calls": cards}


# --- text ----------------------------------------------------------------------------------

def _s(seconds) -> str:
    return "-" if seconds is None else f"{seconds:g} s"


def _pct_text(value) -> str:
    return "-" if value is None else f"{value:g}%"


def _holds_text(card: dict) -> str:
    parts = []
    for h in card["holds"]:
        waited = "?" if h["waited"] is None else f"{'~' if h['estimated'] else ''}{h['waited']:g}"
        promised = "?" if h["promised"] is None else f"{h['promised']:g}"
        parts.append(f"{waited}/{promised}s" + (" BREACH" if h["breach"] else ""))
    return ", ".join(parts) or "-"


def _transfers_text(card: dict) -> str:
    return ", ".join(t["outcome"] + ("" if t["consent"] or t["outcome"] == "no-consent" else " (no consent!)")
                     for t in card["transfers"]) or "-"


def _yes_no(value) -> str:
    return "-" if value is None else ("yes" if value else "NO")


CALL_COLUMNS = ("call", "started", "flow", "greet", "retries s/u", "holds (actual/promise)", "transfers",
                "goodbye", "hung up first", "flags")


NARROW_COLUMNS = ("call", "started", "flow", "greet", "s/u", "holds", "transfers", "bye", "hung up", "flags")


def call_row(card: dict) -> list[str]:
    started = (card["started"] or "-")[:19].replace("T", " ")
    greet = "-" if card["time_to_greeting_ms"] is None else f"{card['time_to_greeting_ms']:g} ms"
    return [str(card["call_sid"]), started, str(card["flow"]), greet,
            f"{card['silent_retries']}/{card['unclear_retries']}", _holds_text(card), _transfers_text(card),
            _yes_no(card["goodbye"]), card["hung_up_first"] or "-", ", ".join(card["flags"]) or "ok"]


def flow_lines(name: str, s: dict) -> list[str]:
    outcomes = ", ".join(f"{k} {v}" for k, v in s["transfers_by_outcome"].items() if v) or "none"
    hung = "; ".join(f"{HANG_UP_LABELS.get(k, k)} {v}" for k, v in s["hung_up_first"].items() if v) or "-"
    return [
        f"Flow {name}: {s['calls']} call(s)" + (f", {s['in_progress']} in progress" if s["in_progress"] else ""),
        f"  greeted {_pct_text(s['greeted_pct'])} · time to greeting "
        f"{'-' if s['mean_time_to_greeting_ms'] is None else format(s['mean_time_to_greeting_ms'], 'g') + ' ms'}"
        f" · retries per call {s['retries_per_call']} (silent {s['silent_retries']}, unclear {s['unclear_retries']})",
        f"  holds {s['holds']} · over promise {s['hold_breaches']} · mean hold {_s(s['mean_hold_s'])} "
        f"vs promise {_s(s['mean_promise_s'])} · consent {s['hold_consent_given']}/{s['hold_consent_asked']}",
        f"  transfers: {outcomes} · consent {s['transfer_consent_given']}/{s['transfer_consent_asked']} "
        f"({_pct_text(s['transfer_consent_pct'])})",
        f"  ended with goodbye {_pct_text(s['ended_with_goodbye_pct'])} · caller hung up first "
        f"{_pct_text(s['caller_hung_up_first_pct'])} ({hung})",
        f"  drops {s['drops']} · fallbacks {s['fallbacks']} · lost {s.get('lost', 0)} · complaints {s['complaints']} · "
        f"call backs {s['call_backs']}",
    ]


def _plain_table(header, rows) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line([h.upper() for h in header]), *map(line, rows)])


def format_text(report: dict) -> str:
    out = [f"Etiquette scorecard · store {report['store']}"
           + (f" · since {report['since']}" if report["since"] else "")
           + (f" · flow {report['flow']}" if report["flow"] else ""), ""]
    for name, s in report["flows"].items():
        out += flow_lines(name, s) + [""]
    out.append(_plain_table(CALL_COLUMNS, [call_row(c) for c in report["calls"]]))
    return "\n".join(out) + "\n"


def print_rich(report: dict) -> None:
    """The same figures for a person at a terminal: colour, and a table that fits the window."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    console.print(f"[bold]Etiquette scorecard[/] · store {escape(report['store'])}"
                  + (f" · since {report['since']}" if report["since"] else ""))
    for name, s in report["flows"].items():
        lines = flow_lines(name, s)
        console.print(f"\n[bold cyan]{escape(_printable(lines[0]))}[/]")
        for line in lines[1:]:
            console.print(escape(_printable(line)))
    short = console.width < 160   # --call accepts the end of a SID
    several = len(report["flows"]) > 1
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for i, col in enumerate(NARROW_COLUMNS if short else CALL_COLUMNS):
        if i == 2 and not several:
            continue
        table.add_column(col, no_wrap=i < 2, overflow="fold")
    for card in report["calls"]:
        cells = call_row(card)
        if short:
            cells[0], cells[1] = "…" + cells[0][-8:], cells[1][5:16]
        if not several:
            del cells[2]
        bad = card["hold_breaches"] or card["dropped"] or card["fallbacks"] or "no consent" in card["flags"]
        style = "red" if bad else "dim" if card["in_progress"] else None
        table.add_row(*(escape(_printable(c)) for c in cells), style=style)
    console.print(table)
    if short:
        console.print("[dim]One call in detail: ivr report --call <SID or its last digits>[/]")


def format_call_detail(card: dict, log: list[dict] | None = None) -> str:
    """One call: the scorecard in words, then what happened, turn by turn."""
    out = [f"Call {card['call_sid']} · flow {card['flow']} · started {card['started']}"
           + (" · IN PROGRESS" if card["in_progress"] else f" · {card['end_status'] or 'ended'}"
              + (f" after {_s(card['duration'])}" if card["duration"] is not None else "")),
           f"  greeting: {'yes' if card['greeted'] else 'NO'} in "
           f"{'-' if card['time_to_greeting_ms'] is None else format(card['time_to_greeting_ms'], 'g')} ms"
           f" — {card['greeting'] or ''}",
           "  retries: " + (", ".join(f"{k} {v}" for k, v in card["retries"].items() if v) or "none")
           + (f" · final words ({', '.join(map(str, card['final_words']))})" if card["final_words"] else "")]
    for h in card["holds"]:
        out.append(f"  hold at {h['step']}: {'~' if h['estimated'] else ''}{_s(h['waited'])} of "
                   f"{_s(h['promised'])} promised, {h['result']}"
                   + (f" — BREACH by {h['over_by']:g} s" if h["breach"] else "")
                   + f" · check-ins at {', '.join(f'{q:g}' for q in h['check_ins']) or 'none'}"
                   + f" · longest silence {_s(h['longest_gap'])} · consent {_yes_no(h['consent'])}")
    for t in card["transfers"]:
        out.append(f"  transfer at {t['step']} to {t['to'] or '-'}: {OUTCOME_LABELS.get(t['outcome'], t['outcome'])}"
                   f" · consent {_yes_no(t['consent'])}")
    out.append(f"  ending: goodbye {_yes_no(card['goodbye'])} · hung up first {card['hung_up_first'] or '-'}")
    for d in card["dropped"]:
        out.append(f"  DROPPED during {d['during']} at {d['step']} (E12: call back {card['caller'] or '?'})")
    for r in card["complaints"]:
        out.append(f"  complaint recorded ({_s(r['seconds'])}): {r['url']}")
    for r in card["messages"]:
        out.append(f"  message recorded ({_s(r['seconds'])}): {r['url']}")
    if card["fallbacks"]:
        out.append(f"  fallbacks (apologies): {card['fallbacks']}")
    if log:
        out += ["", "Timeline"] + timeline(log)
    return "\n".join(out) + "\n"


def timeline(log: list[dict]) -> list[str]:
    t0 = _num(log[0].get("t")) if log else None
    lines = []
    for e in log:
        t = _num(e.get("t"))
        at = f"{t - t0:+8.3f}s" if t is not None and t0 is not None else "        ?"
        if "fact" in e:
            details = {k: v for k, v in e.items()
                       if k not in ("t", "fact", "turn") and not (k == "kind" and v == "note")}
            lines.append(f"{at}  · {e['fact']} {json.dumps(details, ensure_ascii=False) if details else ''}".rstrip())
        elif e.get("kind") == "request":
            params = _params(e)
            shown = {k: params[k] for k in INPUT_PARAMS if k in params and not (k == "CallStatus" and
                                                                              params[k] == "in-progress")}
            lines.append(f"{at}  → {e.get('path')} {json.dumps(shown, ensure_ascii=False) if shown else ''}".rstrip())
        elif e.get("kind") == "response":
            lines.append(f"{at}  ← {_twiml_summary(str(e.get('twiml', '')))}")
    return lines


def _twiml_summary(xml: str) -> str:
    """What the caller heard and what Twilio was told to do next, in one line."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return "(unreadable TwiML)"
    parts = []
    for el in root.iter():
        if el.tag == "Say":
            parts.append(f"“{''.join(el.itertext()).strip()}”")
        elif el.tag not in ("Response", "prosody"):
            parts.append(el.tag)
    return " ".join(parts) or "(empty)"


# --- HTML ----------------------------------------------------------------------------------

HOLD_COLOURS = {"ok": "#2e7d32", "breach": "#c62828", "dropped": "#9e9e9e", "open": "#f9a825"}
OUTCOME_COLOURS = {"connected": "#2e7d32", "no-consent": "#78909c", "in progress": "#f9a825"}
HANG_UP_COLOURS = {"caller": "#2e7d32", "engine": "#1565c0", "caller, before goodbye": "#ef6c00",
                   "engine, without goodbye": "#c62828"}


def hold_chart(cards: list[dict], width: int = 760, label_w: int = 230, row_h: int = 28) -> dict:
    """Geometry of the hold chart: one bar per hold (actual length), the promise marked on it."""
    rows = [(c, h) for c in cards for h in c["holds"]]
    top = max([h["waited"] or 0 for _, h in rows] + [h["promised"] or 0 for _, h in rows] + [1]) * 1.1
    scale = (width - label_w - 60) / top
    bars = []
    for i, (card, h) in enumerate(rows):
        status = ("breach" if h["breach"] else "ok" if h["result"] in ("served", "limit")
                  else "open" if h["result"] == "in progress" else "dropped")
        waited = h["waited"] or 0
        bars.append({
            "y": 30 + i * row_h, "x": label_w, "w": max(1.0, round(waited * scale, 1)),
            "promise_x": None if h["promised"] is None else round(label_w + h["promised"] * scale, 1),
            "label": f"…{str(card['call_sid'])[-6:]} · {h['step']}", "call_sid": card["call_sid"],
            "value": ("?" if h["waited"] is None else f"{'~' if h['estimated'] else ''}{h['waited']:g} s"),
            "promised": _s(h["promised"]), "status": status, "colour": HOLD_COLOURS[status],
        })
    ticks = [round(label_w + v * scale, 1) for v in range(0, int(top) + 1, 30 if top <= 300 else 60)]
    return {"bars": bars, "width": width, "height": 50 + len(rows) * row_h, "label_w": label_w, "row_h": row_h,
            "ticks": list(zip(ticks, range(0, int(top) + 1, 30 if top <= 300 else 60)))}


def count_chart(counts: dict, labels: dict, colours: dict, default: str = "#ef6c00",
                width: int = 520, label_w: int = 200, row_h: int = 26) -> dict:
    """A small horizontal bar chart of counts (zero rows left out)."""
    items = [(k, v) for k, v in counts.items() if v]
    top = max([v for _, v in items] + [1])
    scale = (width - label_w - 40) / top
    bars = [{"y": 10 + i * row_h, "x": label_w, "w": max(2.0, round(v * scale, 1)), "value": v,
             "label": labels.get(k, k), "colour": colours.get(k, default)} for i, (k, v) in enumerate(items)]
    return {"bars": bars, "width": width, "height": 20 + max(len(items), 1) * row_h, "label_w": label_w,
            "row_h": row_h}


def _safe_link(url) -> str | None:
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def render_html(report: dict) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["s"] = _s
    env.filters["pct"] = _pct_text
    env.filters["safe_link"] = _safe_link
    by_flow: dict[str, list[dict]] = {}
    for card in report["calls"]:
        by_flow.setdefault(card["flow"], []).append(card)
    flows = [{"name": name, "s": s, "hold_chart": hold_chart(by_flow.get(name, [])),
              "transfer_chart": count_chart(s["transfers_by_outcome"], OUTCOME_LABELS, OUTCOME_COLOURS),
              "hang_up_chart": count_chart(s["hung_up_first"], HANG_UP_LABELS, HANG_UP_COLOURS)}
             for name, s in report["flows"].items()]
    return env.get_template("report.html.j2").render(report=report, flows=flows, calls=report["calls"],
                                                     outcome_labels=OUTCOME_LABELS, row=call_row)


# --- CLI -----------------------------------------------------------------------------------

def parse_since(text: str) -> float:
    """Epoch seconds, or an ISO date / date-time (local time unless it says otherwise)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is neither epoch seconds nor an ISO date/time "
                                         "(e.g. 2026-11-01 or 2026-11-01T09:30)") from None
    return when.timestamp()


def add_arguments(parser) -> None:
    parser.add_argument("--store", default="sqlite:///calls.db",
                        help="the call store to read (sqlite:///calls.db | redis://host:6379/0)")
    parser.add_argument("--since", type=parse_since,
                        help="only calls started at or after: ISO date/time or epoch seconds")
    parser.add_argument("--flow", help="only calls of this flow (by name)")
    parser.add_argument("--format", choices=("text", "json", "html"), default="text")
    parser.add_argument("--out", help="write to this file (html: default report.html)")
    parser.add_argument("--call", metavar="SID", help="one call's scorecard and timeline")


def _write(text: str, out: str | None) -> None:
    text = _printable(text)
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    else:
        sys.stdout.write(text)


def run(args) -> int:
    try:
        log = None
        if args.call:
            card, log = load_call(args.store, args.call)
            cards = [card]
        else:
            cards = load_cards(args.store, args.since, args.flow)
        if not cards:
            what = f" of flow {args.flow}" if args.flow else ""
            print(f"no calls{what} in {args.store}" + (f" since {_iso(args.since)}" if args.since else ""))
            return 0
        report = build_report(cards, args.store, args.since, args.flow)
        if args.format == "json":
            if log is not None:
                report["timeline"] = timeline(log)
            _write(json.dumps(report, ensure_ascii=False, indent=2) + "\n", args.out)
        elif args.format == "html":
            _write(render_html(report), args.out or "report.html")
        elif log is not None:
            _write(format_call_detail(cards[0], log), args.out)
        elif args.out or not sys.stdout.isatty():
            _write(format_text(report), args.out)
        else:
            print_rich(report)
        return 0
    except ReportError as e:
        print(f"ivr report: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - an ops tool prints one line, never a traceback
        print(f"ivr report: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
