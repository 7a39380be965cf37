"""The call store: call state between webhooks, the call log, pinned flow texts.

State never lives in process memory (DESIGN.md): any worker on any host takes
the next webhook. Every backend offers the same operations, and the same
conformance tests (tests/test_store.py) run against each.

Concurrency and duplicates: a call's state carries `turn`, the number of
events handled. `advance` saves a new state only if the stored turn is still
the one the handler started from (compare-and-set), and keeps the TwiML it
answered with under (call, turn), so a duplicate delivery of the same webhook
gets the same answer and never advances the call twice.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod


class StoreError(Exception):
    """The store cannot be reached or its data cannot be read."""


class CallStore(ABC):
    # --- call state ---------------------------------------------------------
    @abstractmethod
    def create_call(self, call_sid: str, state: dict, response: str) -> bool:
        """Insert a new call at turn 0 with the TwiML answered to its first webhook.
        False (and nothing written) when the call already exists."""

    @abstractmethod
    def get_call(self, call_sid: str) -> dict | None:
        """The stored state dict, or None for an unknown call."""

    @abstractmethod
    def advance(self, call_sid: str, expected_turn: int, state: dict, response: str) -> bool:
        """Atomically: if the stored state's turn == expected_turn, store `state` (whose turn is
        expected_turn + 1) and keep `response` as the answer for turn expected_turn + 1.
        False (nothing written) when another request got there first."""

    @abstractmethod
    def response_for(self, call_sid: str, turn: int) -> str | None:
        """The TwiML answered when the call reached `turn` (0 = the first webhook)."""

    # --- call log -----------------------------------------------------------
    @abstractmethod
    def append_log(self, call_sid: str, entry: dict) -> None:
        """Append one JSON-serialisable entry; the store adds "t" (epoch seconds) if absent."""

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

    def close(self) -> None:  # pragma: no cover - backends override when they hold resources
        pass

    @staticmethod
    def now() -> float:
        return time.time()
