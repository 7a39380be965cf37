"""The report for people: text (plain, or rich at a terminal), one call in detail with its timeline."""
from __future__ import annotations

import json

from ivr.etiquette.report.log import Noted, Request, Response, printable as _printable, read_log, summary

OUTCOME_LABELS = {"connected": "connected", "declined": "agent did not accept", "no_answer": "no answer",
                  "busy": "busy", "failed": "failed", "canceled": "canceled",
                  "no-consent": "caller said no", "dropped": "caller hung up while ringing",
                  "in progress": "in progress"}
HANG_UP_LABELS = {"caller": "caller, after goodbye", "engine": "engine, after goodbye",
                  "caller, before goodbye": "caller, before goodbye", "engine, without goodbye": "engine, no goodbye"}
INPUT_PARAMS = ("Digits", "SpeechResult", "Confidence", "QueueResult", "QueueTime", "DialCallStatus",
                "RecordingUrl", "RecordingDuration", "CallStatus")


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


def _wait(seconds) -> str:
    return "-" if seconds is None else f"{seconds:g} s"


def _yes_no(value) -> str:
    return "-" if value is None else ("yes" if value else "NO")


CALL_COLUMNS = ("call", "started", "flow", "greet", "retries s/u", "holds (actual/promise)", "transfers",
                "goodbye", "hung up first", "flags")


NARROW_COLUMNS = ("call", "started", "flow", "greet", "s/u", "holds", "transfers", "bye", "hung up", "flags")


def call_row(card: dict) -> list[str]:
    started = (card["started"] or "-")[:19].replace("T", " ")
    greet = _wait(card["time_to_greeting_s"])
    return [str(card["call_sid"]), started, str(card["flow"]), greet,
            f"{card['silent_retries']}/{card['unclear_retries']}", _holds_text(card), _transfers_text(card),
            _yes_no(card["goodbye"]), card["hung_up_first"] or "-", ", ".join(card["flags"]) or "ok"]


def flow_lines(name: str, s: dict) -> list[str]:
    outcomes = ", ".join(f"{k} {v}" for k, v in s["transfers_by_outcome"].items() if v) or "none"
    hung = "; ".join(f"{HANG_UP_LABELS.get(k, k)} {v}" for k, v in s["hung_up_first"].items() if v) or "-"
    return [
        f"Flow {name}: {s['calls']} call(s)" + (f", {s['in_progress']} in progress" if s["in_progress"] else ""),
        f"  greeted {_pct_text(s['greeted_pct'])} · time to greeting {_wait(s['mean_time_to_greeting_s'])}"
        f" · retries per call {s['retries_per_call']} (silent {s['silent_retries']}, unclear {s['unclear_retries']})",
        f"  holds {s['holds']} · over promise {s['hold_breaches']} · mean hold {_s(s['mean_hold_s'])} "
        f"vs promise {_s(s['mean_promise_s'])} · consent {s['hold_consent_given']}/{s['hold_consent_asked']} "
        f"· hung up on hold {s['hung_up_on_hold']}",
        f"  transfers: {outcomes} · consent {s['transfer_consent_given']}/{s['transfer_consent_asked']} "
        f"({_pct_text(s['transfer_consent_pct'])})",
        f"  ended with goodbye {_pct_text(s['ended_with_goodbye_pct'])} · caller hung up first "
        f"{_pct_text(s['caller_hung_up_first_pct'])} ({hung})",
        f"  drops {s['drops']} · fallbacks {s['fallbacks']} · lost {s['lost']} · complaints {s['complaints']} · "
        f"call backs {s['call_backs']}",
        f"  line (share of calls): {_line_shares(s['line'])}",
    ]


def _line_shares(line: dict) -> str:
    """Issue 11: the share of calls heard on each kind of line, and the ladders the audio chose."""
    def pct(share):
        return _pct_text(None if share is None else round(share * 100))

    shares = [f"{c} {pct(v)}" for c, v in line["share_of_calls"].items() if v]
    shares.append(f"no audio {pct(line['no audio'])}")
    chosen = ", ".join(f"{k} x{n}" for k, n in line["ladders_chosen_by_audio"].items())
    return " · ".join(shares) + (f"; audio chose {chosen}" if chosen else "")


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
           f"  greeting: {'yes' if card['greeted'] else 'NO'} after {_wait(card['time_to_greeting_s'])}"
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
    for h in card["hung_up_on_hold"]:
        out.append(f"  HUNG UP ON HOLD at {h['step']} after {_s(h['waited'])}")
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


def timeline(raw: list) -> list[str]:
    """The call turn by turn: requests (→), the facts noted (·), and what the caller heard (←)."""
    log = read_log(raw)
    t0 = log.t0()
    lines = []
    for e in log.entries:
        at = f"{e.t - t0:+8.3f}s" if e.t is not None and t0 is not None else "        ?"
        if isinstance(e, Noted):
            details = {k: v for k, v in e.fact.to_dict().items() if k != "fact"}
            lines.append(f"{at}  · {e.fact.json_name} {json.dumps(details, ensure_ascii=False) if details else ''}".rstrip())
        elif isinstance(e, Request):
            shown = {k: e.params[k] for k in INPUT_PARAMS if k in e.params and not (k == "CallStatus" and
                                                                                   e.params[k] == "in-progress")}
            lines.append(f"{at}  → {e.path} {json.dumps(shown, ensure_ascii=False) if shown else ''}".rstrip())
        elif isinstance(e, Response):
            lines.append(f"{at}  ← {summary(e.twiml)}")
    return lines
