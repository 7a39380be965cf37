"""The line's part of the scorecard (issue 11): what the caller's audio said about each call's
line, which ladders it chose, and per flow the share of calls with each condition.

Pure functions over one call's log (the `line_heard` facts the engine writes, ivr.call.facts.LineHeard),
in the shape of ivr.etiquette.report: `line_card(log) -> dict` for one call and
`line_summary(cards) -> dict` for one flow's calls, each card carrying its call's line card
under "line". report.py can call them as they are:

    card["line"] = line_card(log)                          # in score_call
    summary["line"] = line_summary([c["line"] for c in cards])   # in summarise_flow

A call without a `line_heard` fact had no audio (no stream, or the WebSocket down): it is counted
as "no audio", never as a condition.
"""
from __future__ import annotations

from collections import Counter

from ivr.call import facts as F

CONDITIONS = ("silent", "quiet", "noisy", "speakerphone", "clear")
NO_AUDIO = "no audio"
LADDER_RULES = {"silence": "E2", "quiet": "E3", "speakerphone": "E4", "noisy": "E5", "not_understood": "E6"}


def line_card(log) -> dict:
    """{"windows": n, "conditions": {condition: windows}, "ladders": {ladder: times the audio chose it},
    "main": the condition the call was mostly heard in (or "no audio")}. `log`: the call's typed facts,
    or its raw log entries."""
    conditions, ladders, windows = Counter(), Counter(), 0
    for fact in (entry if isinstance(entry, F.Fact) else F.parse(entry) for entry in log):
        if not isinstance(fact, F.LineHeard) or fact.condition not in CONDITIONS:
            continue
        windows += 1
        conditions[fact.condition] += 1
        if isinstance(fact.ladder, str) and fact.ladder in LADDER_RULES:
            ladders[fact.ladder] += 1
    main = NO_AUDIO if not windows else max(CONDITIONS, key=lambda c: (conditions[c], -CONDITIONS.index(c)))
    return {"windows": windows, "conditions": {c: conditions[c] for c in CONDITIONS if conditions[c]},
            "ladders": dict(sorted(ladders.items())), "main": main}


def line_summary(cards: list[dict]) -> dict:
    """Per flow: how many calls, and the share (0..1) of calls heard at least once in each condition,
    the share with no audio, and how often the audio chose each ladder (with its rule)."""
    calls = len(cards)
    heard = Counter()
    ladders = Counter()
    no_audio = 0
    for card in cards:
        if not card.get("windows"):
            no_audio += 1
        for condition in card.get("conditions", {}):
            heard[condition] += 1
        ladders.update(card.get("ladders", {}))
    share = {c: (heard[c] / calls if calls else None) for c in CONDITIONS}
    return {"calls": calls, "share_of_calls": share, NO_AUDIO: (no_audio / calls if calls else None),
            "ladders_chosen_by_audio": {f"{LADDER_RULES[k]} {k}": v for k, v in sorted(ladders.items())}}


def line_text(card: dict) -> str:
    """One line of text for a call: 'speakerphone 2, clear 1; audio chose E4 speakerphone x1'."""
    if not card.get("windows"):
        return NO_AUDIO
    heard = ", ".join(f"{c} {n}" for c, n in card["conditions"].items())
    chose = ", ".join(f"{LADDER_RULES[k]} {k} x{n}" for k, n in card["ladders"].items())
    return heard + (f"; audio chose {chose}" if chose else "")
