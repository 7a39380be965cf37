"""Redis store: for several hosts sharing one call store.

Keys (prefix "ivr:" by default):
  {prefix}call:{sid}   hash  state (JSON), turn, answer, prev_answer, flow, started_at, touched_at
  {prefix}log:{sid}    list  JSON entries, oldest first
  {prefix}calls        zset  call_sid scored by started_at, for list_calls(since)
  {prefix}live         zset  call_sid of calls not ended, scored by last start/commit, for stale_calls
  {prefix}flows        hash  version -> JSON {"name", "path", "text"}
  {prefix}published    hash  flow name -> version new calls get

One webhook is two round trips: `load` is one HMGET, `commit` one EVALSHA of a Lua
script. Redis runs a script atomically, so the compare-and-set on the turn, the state,
the answer (the previous one moved to prev_answer: two turns kept, no more), the log
entries and the live zset cannot interleave with another worker.

Timeouts: socket_timeout and socket_connect_timeout (1 s by default; override with the
constructor or the URL, e.g. redis://host:6379/0?socket_timeout=0.5) bound how long a
webhook waits for a frozen or unreachable Redis before StoreError. The only retry is one
immediate reconnect after a dropped connection (e.g. Redis restarted); timeouts are not
retried. A retried commit is safe: its compare-and-set fails and the caller answers
from answer_for, which is the answer the first attempt stored.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ivr.store.base import (LINE_WINDOWS_KEPT, CallStore, StoreError, StoreUnavailable, StoredCall, check_commit,
                             check_ended, check_update, stamp)

# KEYS: call, calls, live, log   ARGV: sid, state, turn, flow, now, answer, ended, entries...
START = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'turn', ARGV[3], 'flow', ARGV[4], 'started_at', ARGV[5],
           'touched_at', ARGV[5], 'answer', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
if ARGV[7] ~= '1' then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1]) end
if #ARGV > 7 then redis.call('RPUSH', KEYS[4], unpack(ARGV, 8)) end
return 1
"""

# KEYS: call, live, log   ARGV: sid, expected_turn, state, new turn, answer, now, ended, entries...
# HGET on a missing call gives false, which never equals a turn: unknown calls do not advance.
COMMIT = """
if redis.call('HGET', KEYS[1], 'turn') ~= ARGV[2] then return 0 end
local prev = redis.call('HGET', KEYS[1], 'answer')
if prev then redis.call('HSET', KEYS[1], 'prev_answer', prev) else redis.call('HDEL', KEYS[1], 'prev_answer') end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'turn', ARGV[4], 'answer', ARGV[5], 'touched_at', ARGV[6])
if ARGV[7] == '1' then redis.call('ZREM', KEYS[2], ARGV[1]) else redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1]) end
if #ARGV > 7 then redis.call('RPUSH', KEYS[3], unpack(ARGV, 8)) end
return 1
"""

# KEYS: call, log   ARGV: expected turn, state, now, entries...
UPDATE = """
if redis.call('HGET', KEYS[1], 'turn') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'touched_at', ARGV[3])
if #ARGV > 3 then redis.call('RPUSH', KEYS[2], unpack(ARGV, 4)) end
return 1
"""

# KEYS: call, calls, live, log   ARGV: sid, state, turn, flow, now, expected turn ('' = any), entries...
END = """
local cur = redis.call('HMGET', KEYS[1], 'turn', 'answer')
if ARGV[6] ~= '' and cur[1] ~= ARGV[6] then return 0 end
local old, new = tonumber(cur[1]), tonumber(ARGV[3])
if not cur[1] then
  redis.call('HSET', KEYS[1], 'flow', ARGV[4], 'started_at', ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
end
if old ~= new then
  if old and new == old + 1 and cur[2] then
    redis.call('HSET', KEYS[1], 'prev_answer', cur[2])
  else
    redis.call('HDEL', KEYS[1], 'prev_answer')
  end
  redis.call('HDEL', KEYS[1], 'answer')
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'turn', ARGV[3], 'touched_at', ARGV[5])
redis.call('ZREM', KEYS[3], ARGV[1])
if #ARGV > 6 then redis.call('RPUSH', KEYS[4], unpack(ARGV, 7)) end
return 1
"""


# KEYS: call, live, lines   ARGV: window ('' = the call's turn), report, keep, ttl seconds, sid
# The call must be live (in the live zset: started, not ended). One hash of windows per call.
PUT_LINE = """
if not redis.call('ZSCORE', KEYS[2], ARGV[5]) then
  redis.call('DEL', KEYS[3])
  return false
end
local window = ARGV[1]
if window == '' then window = redis.call('HGET', KEYS[1], 'turn') end
if not window then return false end
redis.call('HSET', KEYS[3], window, ARGV[2])
for _, w in ipairs(redis.call('HKEYS', KEYS[3])) do
  if tonumber(w) <= tonumber(window) - tonumber(ARGV[3]) then redis.call('HDEL', KEYS[3], w) end
end
redis.call('EXPIRE', KEYS[3], ARGV[4])
return tonumber(window)
"""
LINE_TTL = 6 * 3600  # a call's line verdicts outlive no call: gone hours after its last window


def _redact(url: str) -> str:
    """The URL without its password, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class RedisStore(CallStore):
    def __init__(self, url: str, prefix: str = "ivr:", socket_timeout: float = 1.0,
                 socket_connect_timeout: float = 1.0):
        self.url, self.prefix = url, prefix
        try:
            # Settings in the URL's query win over these (redis-py's from_url).
            self._r = redis.Redis.from_url(
                url, decode_responses=True, socket_timeout=socket_timeout,
                socket_connect_timeout=socket_connect_timeout,
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)))
        except ValueError as e:   # malformed URL or query
            raise StoreError(f"invalid Redis URL {_redact(url)}: {e}") from e
        self._start = self._r.register_script(START)
        self._commit = self._r.register_script(COMMIT)
        self._end = self._r.register_script(END)
        self._update = self._r.register_script(UPDATE)
        self._put_line = self._r.register_script(PUT_LINE)
        with self._errors():   # fail at startup, not on the first call
            self._r.ping()

    @contextmanager
    def _errors(self):
        try:
            yield
        except redis.TimeoutError as e:
            raise StoreUnavailable(f"Redis at {_redact(self.url)} did not answer in time ({_one_line(e)}); "
                             "check it is running and not overloaded, or raise socket_timeout in the URL") from e
        except redis.ConnectionError as e:
            raise StoreUnavailable(f"cannot reach Redis at {_redact(self.url)}: {_one_line(e)}; "
                             "start redis-server or pass --store sqlite:///calls.db") from e
        except redis.RedisError as e:   # auth, wrong key type, out of memory, ...
            raise StoreError(f"Redis at {_redact(self.url)}: {_one_line(e)}") from e

    def _key(self, kind: str, call_sid: str = "") -> str:
        return f"{self.prefix}{kind}:{call_sid}" if call_sid else f"{self.prefix}{kind}"

    def _loads(self, text: str, what: str):
        try:
            return json.loads(text)
        except (TypeError, ValueError) as e:
            raise StoreError(f"corrupt {what} in Redis at {_redact(self.url)}: {e}") from e

    def close(self) -> None:
        self._r.close()

    # --- one webhook: one read, one write ----------------------------------------
    def load(self, call_sid, line_window=None):
        with self._errors():
            if line_window is None:
                text, turn, answer = self._r.hmget(self._key("call", call_sid), ["state", "turn", "answer"])
                line = None
            else:  # the window's line verdict in the same round trip
                pipe = self._r.pipeline(transaction=False)
                pipe.hmget(self._key("call", call_sid), ["state", "turn", "answer"])
                pipe.hget(self._key("line", call_sid), str(int(line_window)))
                (text, turn, answer), line = pipe.execute()
        if text is None:
            return None
        line = self._loads(line, f"line of call {call_sid}") if line is not None else None
        state = self._loads(text, f"state of call {call_sid}")
        try:
            turn = int(turn)
        except (TypeError, ValueError) as e:
            raise StoreError(f"corrupt turn of call {call_sid} in Redis at {_redact(self.url)}: {e}") from e
        return StoredCall(state, turn, answer, line)

    def start(self, call_sid, state, answer, entries):
        now = self.now()
        keys = [self._key("call", call_sid), self._key("calls"), self._key("live"), self._key("log", call_sid)]
        args = [call_sid, _dumps(state), int(state.get("turn", 0)), state.get("flow", ""), repr(now), answer,
                "1" if state.get("ended") else "0", *map(_dumps, stamp(entries, now))]
        with self._errors():
            return self._start(keys=keys, args=args) == 1

    def commit(self, call_sid, expected_turn, state, answer, entries):
        check_commit(expected_turn, state)
        now = self.now()
        keys = [self._key("call", call_sid), self._key("live"), self._key("log", call_sid)]
        args = [call_sid, int(expected_turn), _dumps(state), int(expected_turn) + 1, answer, repr(now),
                "1" if state.get("ended") else "0", *map(_dumps, stamp(entries, now))]
        with self._errors():
            return self._commit(keys=keys, args=args) == 1

    def update(self, call_sid, expected_turn, state, entries):
        check_update(expected_turn, state)
        now = self.now()
        keys = [self._key("call", call_sid), self._key("log", call_sid)]
        args = [int(expected_turn), _dumps(state), repr(now), *map(_dumps, stamp(entries, now))]
        with self._errors():
            return self._update(keys=keys, args=args) == 1

    def answer_for(self, call_sid, turn):
        with self._errors():
            stored, answer, prev = self._r.hmget(self._key("call", call_sid), ["turn", "answer", "prev_answer"])
        if stored is None:
            return None
        if str(turn) == stored:
            return answer
        return prev if str(turn + 1) == stored else None

    def end_call(self, call_sid, state, entries, expected_turn=None):
        check_ended(state)
        now = self.now()
        keys = [self._key("call", call_sid), self._key("calls"), self._key("live"), self._key("log", call_sid)]
        args = [call_sid, _dumps(state), int(state.get("turn", 0)), state.get("flow", ""), repr(now),
                "" if expected_turn is None else str(int(expected_turn)), *map(_dumps, stamp(entries, now))]
        with self._errors():
            return self._end(keys=keys, args=args) == 1

    def stale_calls(self, idle_for):
        with self._errors():
            return self._r.zrangebyscore(self._key("live"), "-inf", f"({self.now() - idle_for!r}")

    # --- line verdicts per listening window -----------------------------------------
    def put_line(self, call_sid, window, report):
        keys = [self._key("call", call_sid), self._key("live"), self._key("line", call_sid)]
        args = ["" if window is None else int(window), _dumps(report), LINE_WINDOWS_KEPT, LINE_TTL, call_sid]
        with self._errors():
            filed = self._put_line(keys=keys, args=args)
        return None if filed is None else int(filed)

    def get_line(self, call_sid, window):
        with self._errors():
            text = self._r.hget(self._key("line", call_sid), str(int(window)))
        return None if text is None else self._loads(text, f"line of call {call_sid}")

    # --- published flow versions -------------------------------------------------
    def publish_flow(self, name, version):
        with self._errors():
            self._r.hset(self._key("published"), name, version)

    def published_flows(self):
        with self._errors():
            return self._r.hgetall(self._key("published"))

    # --- call log ---------------------------------------------------------------
    def append_log(self, call_sid, *entries):
        if not entries:
            return
        texts = [_dumps(entry) for entry in stamp(entries, self.now())]
        with self._errors():
            self._r.rpush(self._key("log", call_sid), *texts)

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
        value = _dumps({"name": name, "path": path, "text": text})
        with self._errors():
            self._r.hsetnx(self._key("flows"), version, value)   # first text wins: idempotent

    def get_flow(self, version):
        with self._errors():
            text = self._r.hget(self._key("flows"), version)
        if text is None:
            return None
        return {"version": version, **self._loads(text, f"flow {version}")}
