"""In-process store for unit tests and one-off simulations (lost on exit)."""
from __future__ import annotations

import copy
import threading

from ivr.store.base import CallStore


class MemoryStore(CallStore):
    def __init__(self):
        self._lock = threading.Lock()
        self._calls: dict[str, dict] = {}
        self._started: dict[str, float] = {}
        self._responses: dict[tuple[str, int], str] = {}
        self._logs: dict[str, list[dict]] = {}
        self._flows: dict[str, dict] = {}

    def create_call(self, call_sid, state, response):
        with self._lock:
            if call_sid in self._calls:
                return False
            self._calls[call_sid] = copy.deepcopy(state)
            self._started[call_sid] = self.now()
            self._responses[(call_sid, 0)] = response
            return True

    def get_call(self, call_sid):
        with self._lock:
            state = self._calls.get(call_sid)
            return copy.deepcopy(state) if state is not None else None

    def advance(self, call_sid, expected_turn, state, response):
        with self._lock:
            current = self._calls.get(call_sid)
            if current is None or current.get("turn", 0) != expected_turn:
                return False
            self._calls[call_sid] = copy.deepcopy(state)
            self._responses[(call_sid, expected_turn + 1)] = response
            return True

    def response_for(self, call_sid, turn):
        with self._lock:
            return self._responses.get((call_sid, turn))

    def append_log(self, call_sid, entry):
        entry = {"t": self.now(), **entry}
        with self._lock:
            self._logs.setdefault(call_sid, []).append(copy.deepcopy(entry))

    def call_log(self, call_sid):
        with self._lock:
            return copy.deepcopy(self._logs.get(call_sid, []))

    def list_calls(self, since=None):
        with self._lock:
            rows = [{"call_sid": sid, "flow": self._calls[sid].get("flow", ""), "started_at": t}
                    for sid, t in self._started.items() if since is None or t >= since]
        return sorted(rows, key=lambda r: r["started_at"])

    def put_flow(self, version, name, path, text):
        with self._lock:
            self._flows.setdefault(version, {"version": version, "name": name, "path": path, "text": text})

    def get_flow(self, version):
        with self._lock:
            flow = self._flows.get(version)
            return dict(flow) if flow else None
