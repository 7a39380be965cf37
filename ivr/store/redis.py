"""Redis store: for several hosts sharing one call store.

Keys (prefix "ivr:" by default):
  {prefix}call:{sid}   hash  state (JSON), turn, flow, started_at
  {prefix}resp:{sid}   hash  turn -> TwiML answered when the call reached that turn
  {prefix}log:{sid}    list  JSON entries, oldest first
  {prefix}calls        zset  call_sid scored by started_at, for list_calls(since)
  {prefix}flows        hash  version -> JSON {"name", "path", "text"}

create_call and advance are Lua scripts: Redis runs a script atomically, so the
check (exists? / turn unchanged?) and the writes cannot interleave with another worker.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from urllib.parse import urlsplit

import redis

from ivr.store.base import CallStore, StoreError

# KEYS: call, resp, calls   ARGV: sid, state, turn, flow, started_at, response
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'turn', ARGV[3], 'flow', ARGV[4], 'started_at', ARGV[5])
redis.call('HSET', KEYS[2], '0', ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
return 1
"""

# KEYS: call, resp   ARGV: expected_turn, state, new turn, response, expected_turn + 1
# HGET on a missing call gives false, which never equals a turn: unknown calls do not advance.
ADVANCE = """
if redis.call('HGET', KEYS[1], 'turn') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'turn', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[5], ARGV[4])
return 1
"""


def _redact(url: str) -> str:
    """The URL without its password, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


class RedisStore(CallStore):
    def __init__(self, url: str, prefix: str = "ivr:"):
        self.url, self.prefix = url, prefix
        try:
            # Connect timeout so a firewalled host fails in seconds rather than hanging a webhook.
            self._r = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
        except ValueError as e:   # malformed URL
            raise StoreError(f"invalid Redis URL {_redact(url)}: {e}") from e
        self._create = self._r.register_script(CREATE)
        self._advance = self._r.register_script(ADVANCE)
        with self._errors():   # fail at startup, not on the first call
            self._r.ping()

    @contextmanager
    def _errors(self):
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise StoreError(f"cannot reach Redis at {_redact(self.url)}: {e}; "
                             "start redis-server or pass --store sqlite:///calls.db") from e
        except redis.RedisError as e:   # auth, wrong key type, out of memory, ...
            raise StoreError(f"Redis at {_redact(self.url)}: {e}") from e

    def _key(self, kind: str, call_sid: str = "") -> str:
        return f"{self.prefix}{kind}:{call_sid}" if call_sid else f"{self.prefix}{kind}"

    def _loads(self, text: str, what: str):
        try:
            return json.loads(text)
        except (TypeError, ValueError) as e:
            raise StoreError(f"corrupt {what} in Redis at {_redact(self.url)}: {e}") from e

    def close(self) -> None:
        self._r.close()

    # --- call state -------------------------------------------------------------
    def create_call(self, call_sid, state, response):
        keys = [self._key("call", call_sid), self._key("resp", call_sid), self._key("calls")]
        args = [call_sid, json.dumps(state, ensure_ascii=False), state.get("turn", 0),
                state.get("flow", ""), repr(self.now()), response]
        with self._errors():
            return self._create(keys=keys, args=args) == 1

    def get_call(self, call_sid):
        with self._errors():
            text = self._r.hget(self._key("call", call_sid), "state")
        return self._loads(text, f"state of call {call_sid}") if text is not None else None

    def advance(self, call_sid, expected_turn, state, response):
        keys = [self._key("call", call_sid), self._key("resp", call_sid)]
        args = [int(expected_turn), json.dumps(state, ensure_ascii=False), state.get("turn", 0), response,
                int(expected_turn) + 1]
        with self._errors():
            return self._advance(keys=keys, args=args) == 1

    def response_for(self, call_sid, turn):
        with self._errors():
            return self._r.hget(self._key("resp", call_sid), str(turn))

    # --- call log ---------------------------------------------------------------
    def append_log(self, call_sid, entry):
        entry = {"t": self.now(), **entry}
        with self._errors():
            self._r.rpush(self._key("log", call_sid), json.dumps(entry, ensure_ascii=False))

    def call_log(self, call_sid):
        with self._errors():
            texts = self._r.lrange(self._key("log", call_sid), 0, -1)
        return [self._loads(text, f"log entry of call {call_sid}") for text in texts]

    def list_calls(self, since=None):
        with self._errors():
            scored = self._r.zrangebyscore(self._key("calls"), "-inf" if since is None else since,
                                           "+inf", withscores=True)
            pipe = self._r.pipeline(transaction=False)
            for sid, _ in scored:
                pipe.hget(self._key("call", sid), "flow")
            flows = pipe.execute()
        # zset ties are ordered by member; the memory store's sort is stable. Both are "oldest first".
        return [{"call_sid": sid, "flow": flow or "", "started_at": t} for (sid, t), flow in zip(scored, flows)]

    # --- flow texts ---------------------------------------------------------------
    def put_flow(self, version, name, path, text):
        value = json.dumps({"name": name, "path": path, "text": text}, ensure_ascii=False)
        with self._errors():
            self._r.hsetnx(self._key("flows"), version, value)   # first text wins: idempotent

    def get_flow(self, version):
        with self._errors():
            text = self._r.hget(self._key("flows"), version)
        if text is None:
            return None
        return {"version": version, **self._loads(text, f"flow {version}")}
