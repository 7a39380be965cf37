"""Per-flow sums and rates of the scorecards."""
from __future__ import annotations

from ivr.etiquette.report.line import line_summary
from ivr.etiquette.report.scorecard import LADDERS

TRANSFER_OUTCOMES = ("connected", "declined", "no_answer", "busy", "failed", "canceled",
                     "no-consent", "dropped", "in progress")
HANG_UPS = ("caller", "engine", "caller, before goodbye", "engine, without goodbye")


def pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def mean(values, digits: int = 1) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), digits) if values else None


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
        "greeted_pct": pct(sum(c["greeted"] for c in cards), n),
        "mean_time_to_greeting_s": mean((c["time_to_greeting_s"] for c in cards), 2),
        "retries": per_ladder,
        "silent_retries": silent,
        "unclear_retries": unclear,
        "retries_per_call": round((silent + unclear) / n, 2) if n else None,
        "holds": len(all_holds),
        "hold_breaches": sum(bool(h["breach"]) for h in all_holds),
        "hold_breach_pct": pct(sum(bool(h["breach"]) for h in all_holds), len(all_holds)),
        "mean_hold_s": mean(h["waited"] for h in all_holds),
        "mean_promise_s": mean(h["promised"] for h in all_holds),
        "hold_consent_asked": len(asked["hold"]),
        "hold_consent_given": sum(x["given"] for x in asked["hold"]),
        "hung_up_on_hold": sum(len(c["hung_up_on_hold"]) for c in cards),
        "transfers": sum(t["outcome"] != "no-consent" for t in all_transfers),
        "transfers_by_outcome": outcomes,
        "transfer_consent_asked": len(asked["transfer"]),
        "transfer_consent_given": sum(x["given"] for x in asked["transfer"]),
        "transfer_consent_pct": pct(sum(x["given"] for x in asked["transfer"]), len(asked["transfer"])),
        "ended": len(ended),
        "ended_with_goodbye": sum(bool(c["goodbye"]) for c in ended),
        "ended_with_goodbye_pct": pct(sum(bool(c["goodbye"]) for c in ended), len(ended)),
        "hung_up_first": hung,
        "caller_hung_up_first_pct": pct(hung["caller"] + hung["caller, before goodbye"], hung_known),
        "drops": sum(len(c["dropped"]) for c in cards),
        "fallbacks": sum(c["fallbacks"] for c in cards),
        "lost": sum(c["lost"] for c in cards),
        "complaints": sum(len(c["complaints"]) for c in cards),
        "call_backs": sum(c["call_back_requested"] for c in cards),
        "line": line_summary([c["line"] for c in cards]),
    }


def summarise(cards: list[dict]) -> dict:
    """{flow name: sums and rates}, flows in order of their first call."""
    by_flow: dict[str, list[dict]] = {}
    for card in cards:
        by_flow.setdefault(card["flow"], []).append(card)
    return {flow: summarise_flow(group) for flow, group in by_flow.items()}
