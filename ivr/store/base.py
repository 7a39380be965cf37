"""The call store: call state between webhooks, the call log, pinned and published flows.

State never lives in process memory (DESIGN.md): any worker on any host takes
the next webhook. Every backend offers the same operations, and the same
conformance tests (tests/test_store.py) run against each.

One webhook, two store operations (the call session's contract):

  load(sid)                      ONE read: state, turn and the latest answer
  commit(sid, turn, state, answer, entries)
                                 ONE write transaction: compare-and-set on the turn,
                                 the new state, the TwiML answered, the call-log entries

Concurrency and duplicates: a call's state carries `turn`, the number of events
handled. `commit` saves a new state only if the stored turn is still the one the
handler started from, and keeps the TwiML it answered with, so a duplicate
delivery of the same webhook gets the same answer (`answer_for`) and never
advances the call twice. Only the answers of the LAST TWO turns are kept, so what
a call in progress occupies is bounded whatever its number of turns.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass


class StoreError(Exception):
    """The store cannot be reached or its data cannot be read (a one-line message for people)."""


class StoreUnavailable(StoreError):
    """The store did not answer in time or cannot be reached (as opposed to data it cannot read):
    worth failing fast for a moment rather than waiting again (ivr.store.guard)."""


@dataclass(frozen=True)
class StoredCall:
    state: dict          # the state dict as saved
    turn: int
    answer: str | None   # the TwiML answered when the call reached `turn` (the latest answer)
    line: dict | None = None  # the line verdict of the window asked for (load(sid, line_window=...))


LINE_WINDOWS_KEPT = 2  # the window being heard and the one before (a duplicate webhook re-reads it)


def stamp(entries, now: float) -> list[dict]:
    """Log entries with "t" (epoch seconds) added where absent."""
    return [{"t": now, **entry} for entry in entries]


def check_commit(expected_turn: int, state: dict) -> None:
    if state.get("turn") != expected_turn + 1:
        raise ValueError(f"commit from turn {expected_turn} must save a state whose turn is "
                         f"{expected_turn + 1}, not {state.get('turn')!r}")


def check_update(expected_turn: int, state: dict) -> None:
    if state.get("turn") != expected_turn:
        raise ValueError(f"update at turn {expected_turn} must save a state whose turn is {expected_turn}, "
                         f"not {state.get('turn')!r}")


def check_ended(state: dict) -> None:
    if not state.get("ended"):
        raise ValueError("end_call saves an ended state: set state['ended'] first")


class CallStore(ABC):
    # --- one webhook: one read, one write ----------------------------------------
    @abstractmethod
    def load(self, call_sid: str, line_window: int | None = None) -> StoredCall | None:
        """The call as stored (one read), or None for an unknown call. With `line_window`, the line
        verdict kept for that listening window comes in the same read (see put_line)."""

    @abstractmethod
    def start(self, call_sid: str, state: dict, answer: str, entries: list[dict]) -> bool:
        """Insert a new call at state["turn"] (0) with the answer to its first webhook and its
        first log entries, in one transaction. False (and nothing written) if the call exists."""

    @abstractmethod
    def commit(self, call_sid: str, expected_turn: int, state: dict, answer: str,
               entries: list[dict]) -> bool:
        """Compare-and-set, in one transaction: only if the stored turn == expected_turn, save
        `state` (whose turn must be expected_turn + 1), keep `answer` as the answer for that turn
        (dropping answers older than the previous turn) and append `entries` to the call log.
        False and nothing written when the call is unknown or another request got there first."""

    @abstractmethod
    def update(self, call_sid: str, expected_turn: int, state: dict, entries: list[dict]) -> bool:
        """Compare-and-set without a new turn: only if the stored turn == expected_turn == state["turn"],
        save `state` and append `entries`; the answers are untouched. For what another leg learns about
        the call while it waits (an agent accepting a transfer). False and nothing written otherwise."""

    @abstractmethod
    def answer_for(self, call_sid: str, turn: int) -> str | None:
        """The TwiML answered when the call reached `turn`; kept for the latest turn and the one
        before (duplicate deliveries), None for older turns and unknown calls."""

    @abstractmethod
    def end_call(self, call_sid: str, state: dict, entries: list[dict], expected_turn: int | None = None) -> bool:
        """Save an ended state (state["ended"] truthy) and append log entries: closes calls Twilio
        never told us the end of. Answers of turns the state moved past are dropped; a late webhook
        for an older turn then fails its compare-and-set. Unconditional by default; with
        `expected_turn`, only if the call exists and its stored turn is still that one (two
        reconcilers never both close a call, nor close one a webhook just moved on): False, and
        nothing written, otherwise."""

    @abstractmethod
    def stale_calls(self, idle_for: float) -> list[str]:
        """Sids of calls not ended whose last start/commit is older than now - idle_for."""

    # --- what the line sounded like, per listening window (issue 11) ------------------
    @abstractmethod
    def put_line(self, call_sid: str, window: int | None, report: dict) -> int | None:
        """Keep the line verdict of one listening window of a live call, replacing the window's
        previous one, in ONE round trip. `window` None means the window the call is in now (its
        stored turn: the turn whose answer is playing, which the next webhook's URL carries).
        Returns the window it was filed under, or None (nothing written) when the call is unknown
        or has ended. Only the latest LINE_WINDOWS_KEPT windows of a call are kept."""

    @abstractmethod
    def get_line(self, call_sid: str, window: int) -> dict | None:
        """The verdict kept for one window of a call (one read), or None."""

    # --- flow versions new calls get (every worker on every host agrees) ------------
    @abstractmethod
    def publish_flow(self, name: str, version: str) -> None:
        """Make `version` the one NEW calls of flow `name` get."""

    @abstractmethod
    def published_flows(self) -> dict[str, str]:
        """{flow name: published version}, one read."""

    # --- call log -----------------------------------------------------------
    @abstractmethod
    def append_log(self, call_sid: str, *entries: dict) -> None:
        """Append JSON-serialisable entries in one transaction; the store adds "t" (epoch
        seconds) where absent."""

    @abstractmethod
    def call_log(self, call_sid: str) -> list[dict]:
        """All entries of one call, oldest first."""

    @abstractmethod
    def list_calls(self, since: float | None = None) -> list[dict]:
        """[{"call_sid", "flow", "started_at"}] of calls started at or after `since`, oldest first."""

    # --- flow texts pinned by calls -------------------------------------------
    @abstractmethod
    def put_flow(self, version: str, name: str, path: str, text: str) -> None:
        """Keep the exact text of a flow version (idempotent)."""

    @abstractmethod
    def get_flow(self, version: str) -> dict | None:
        """{"version", "name", "path", "text"} or None."""

    def checkpoint(self) -> None:
        """Housekeeping a server may call periodically (SQLite: WAL checkpoint); nothing by default."""

    def close(self) -> None:  # pragma: no cover - backends override when they hold resources
        pass

    @staticmethod
    def now() -> float:
        return time.time()
