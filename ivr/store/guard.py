"""Every webhook gets an overall time budget, and a store that stops answering is failed fast.

Twilio waits 15 s for a webhook, then plays its own "application error" to the caller. A frozen
Redis once held webhooks for 19-44 s: each store operation waited its own socket timeout, a
webhook makes several, and requests queued behind each other in the worker's threads. Two guards
keep every answer well inside Twilio's limit:

- a deadline per request (`budget(seconds)`, set by the webhook wrapper, 3 s by default): a store
  operation that would start after it raises StoreUnavailable at once, and SQLite's busy wait is
  capped to what is left of it (Redis already gives up on a silent socket after 1 s);
- a circuit breaker per process (GuardedStore): after a StoreUnavailable (timeout, refused
  connection, locked database) every operation fails fast for `cooldown` seconds (1 s by default,
  or $IVR_STORE_COOLDOWN); then one operation probes the store and the breaker closes again if it
  answers.

Either way the caller hears the flow's apology and fallback (the call session's `fail`), within
the budget. The deadline is thread-local, so the background threads (flow refresher, reconciler,
WAL checkpoints) are bounded only by the store's own timeouts and the breaker.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

from ivr import settings
from ivr.store.base import CallStore, StoreUnavailable

log = logging.getLogger("ivr.store")
DEFAULT_BUDGET = 3.0  # seconds for a whole webhook, well under Twilio's 15 s
DEFAULT_COOLDOWN = 1.0  # seconds the breaker fails fast before it probes; IVR_STORE_COOLDOWN overrides it

_local = threading.local()


@contextmanager
def budget(seconds: float | None):
    """Run the block under a deadline `seconds` from now (None: no deadline)."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = None if seconds is None else time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = previous


def remaining() -> float | None:
    """Seconds left of this thread's budget (None: no deadline)."""
    deadline = getattr(_local, "deadline", None)
    return None if deadline is None else deadline - time.monotonic()


class GuardedStore(CallStore):
    """A CallStore that honours the request's deadline and fails fast while its backend is unavailable."""

    def __init__(self, inner: CallStore, cooldown: float | None = None):
        if cooldown is None:
            cooldown = settings.seconds("IVR_STORE_COOLDOWN", DEFAULT_COOLDOWN)
        self.inner, self.cooldown = inner, cooldown
        self._lock = threading.Lock()
        self._open_until = 0.0   # monotonic time before which every operation fails fast
        self._probing = False
        self._why = ""

    def __getattr__(self, name):  # backend specifics (path, url, prefix, ...) stay reachable
        return getattr(self.inner, name)

    def _run(self, op, *args):
        left = remaining()
        if left is not None and left <= 0:
            raise StoreUnavailable("the webhook's time budget is spent")
        probe = False
        now = time.monotonic()
        if self._open_until:
            with self._lock:
                if now < self._open_until or self._probing:
                    raise StoreUnavailable(f"store unavailable, failing fast: {self._why}")
                self._probing = probe = True
        try:
            result = getattr(self.inner, op)(*args)
        except StoreUnavailable as exc:
            with self._lock:
                if not self._open_until:
                    log.error("store unavailable, failing fast for %.1f s at a time: %s", self.cooldown, exc)
                self._open_until, self._why = time.monotonic() + self.cooldown, str(exc)[:300]
                if probe:
                    self._probing = False
            raise
        except BaseException:
            if probe:
                with self._lock:
                    self._probing = False
            raise
        if probe:
            with self._lock:
                self._open_until, self._probing = 0.0, False
            log.warning("store answers again")
        return result

    # every CallStore operation goes through _run
    def load(self, call_sid, line_window=None):
        return self._run("load", call_sid, line_window)

    def start(self, call_sid, state, answer, entries):
        return self._run("start", call_sid, state, answer, entries)

    def commit(self, call_sid, expected_turn, state, answer, entries):
        return self._run("commit", call_sid, expected_turn, state, answer, entries)

    def update(self, call_sid, expected_turn, state, entries):
        return self._run("update", call_sid, expected_turn, state, entries)

    def answer_for(self, call_sid, turn):
        return self._run("answer_for", call_sid, turn)

    def end_call(self, call_sid, state, entries, expected_turn=None):
        return self._run("end_call", call_sid, state, entries, expected_turn)

    def stale_calls(self, idle_for):
        return self._run("stale_calls", idle_for)

    def publish_flow(self, name, version):
        return self._run("publish_flow", name, version)

    def published_flows(self):
        return self._run("published_flows")

    def put_line(self, call_sid, window, report):
        return self._run("put_line", call_sid, window, report)

    def get_line(self, call_sid, window):
        return self._run("get_line", call_sid, window)

    def append_log(self, call_sid, *entries):
        return self._run("append_log", call_sid, *entries)

    def call_log(self, call_sid):
        return self._run("call_log", call_sid)

    def list_calls(self, since=None):
        return self._run("list_calls", since)

    def put_flow(self, version, name, path, text):
        return self._run("put_flow", version, name, path, text)

    def get_flow(self, version):
        return self._run("get_flow", version)

    def checkpoint(self):
        return self._run("checkpoint")

    def close(self):
        self.inner.close()
