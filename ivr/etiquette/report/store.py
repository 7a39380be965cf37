"""Reading the call store: every call's scorecard, or one call by (the end of) its SID."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone

from ivr.etiquette.report.scorecard import iso as _iso
from ivr.etiquette.report.scorecard import score_call
from ivr.etiquette.report.sums import summarise


class ReportError(Exception):
    """A one-line message for the user; exit code 1."""


@contextmanager
def opened(url: str):
    """The store, read-only in spirit; every failure becomes a ReportError (one line, exit 1)."""
    from ivr.store import StoreError, open_store

    try:
        store = open_store(url, must_exist=True)
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
