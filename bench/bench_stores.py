"""What one webhook asks of the store, per backend, as a ratio to the in-memory store
measured in the same run.

  new API (CallSession): load the call, then ONE commit: compare-and-set the new state
                         (~1 KB), keep its TwiML answer (~1.5 KB), append 3 log entries
  old way (before CallSession): read the state, append_log(request), save the state and
                         answer, append_log(note), append_log(response): five separate store calls

Also counted per webhook: SQLite statements (sqlite3 trace callback) and Redis round
trips (calls to the client's execute_command), and the bytes a call keeps in the store
(state + kept answers) after 50 turns.

    .venv/bin/python bench/bench_stores.py [--seconds 2] [--json bench/results/stores.json]

Redis is measured when redis-server is installed (a throwaway one on a free port).
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ivr.store import MemoryStore
from ivr.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from harness import RedisServer  # noqa: E402 - the throwaway redis-server the tests start

RESULTS = Path(__file__).resolve().parent / "results" / "stores.json"
TURNS_PER_CALL = 40   # then a new call starts, so `start` is in the mix as on a real server
BATCH = 50


def realistic_state(turn: int) -> dict:
    """A call state of about 1 KB, as the engine saves it."""
    return {"flow": "bank_hotline", "flow_version": "0" * 16, "step": "main_menu", "turn": turn,
            "ended": False, "caller": "+8613700000000", "called": "+861095500000",
            "variables": {"org": "华夏示范银行", "agent": "客服专员小王", "customer": "王小明"},
            "misses": {"silence": 1, "noise": 0, "unclear": 0},
            "last_said": ["您好,欢迎致电华夏示范银行客户服务热线,客服专员小王很高兴为您服务,请问有什么可以帮助您?",
                          "查询账户余额请按1,挂失银行卡请按2,办理转账汇款请按3,信用卡业务请按4,人工服务请按0。"],
            "hold": {"queue": "accounts", "since": 1700000000.0, "check_ins": 2, "limit": 60},
            "history": [{"step": f"step_{i}", "event": "digits", "value": str(i % 10)} for i in range(6)]}


ANSWER = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Gather input=\"dtmf speech\" "
          "action=\"https://ivr.example.com/twilio/event?k=gather&amp;t=1\" method=\"POST\" timeout=\"5\" "
          "language=\"cmn-CN\" speechTimeout=\"auto\" numDigits=\"1\">"
          + "<Say voice=\"Polly.Zhiyu-Neural\" language=\"cmn-CN\">查询账户余额请按1,挂失银行卡请按2,"
            "办理转账汇款请按3,信用卡业务请按4,人工服务请按0,重听请按9。</Say>" * 6
          + "</Gather><Redirect method=\"POST\">https://ivr.example.com/twilio/event?k=silence&amp;t=1"
            "</Redirect></Response>")


def log_entries(sid: str) -> list[dict]:
    return [{"kind": "request", "path": "/twilio/event", "query": {"k": "gather", "t": "1"},
             "params": {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": "+8613700000000",
                        "To": "+861095500000", "CallStatus": "in-progress", "Digits": "1",
                        "Direction": "inbound", "ApiVersion": "2010-04-01"}},
            {"kind": "note", "fact": "menu_choice", "turn": 1, "keys": "1", "go": "account_enquiry"},
            {"kind": "response", "path": "/twilio/event", "twiml": ANSWER}]


class Webhooks:
    """Drives simulated webhooks through one store with the new or the old API."""

    def __init__(self, store, api: str):
        self.store, self.api, self.n, self.sid = store, api, 0, None
        self.new_call()

    def new_call(self):
        self.n += 1
        self.sid = f"CA{self.n:032x}"
        if self.api == "new":
            assert self.store.start(self.sid, realistic_state(0), ANSWER, log_entries(self.sid)[:1])
        else:
            assert self.store.start(self.sid, realistic_state(0), ANSWER, [])

    def one(self):
        store, sid = self.store, self.sid
        if self.api == "new":
            call = store.load(sid)
            if call.turn >= TURNS_PER_CALL:
                self.new_call()
                return
            state = realistic_state(call.turn + 1)
            assert store.commit(sid, call.turn, state, ANSWER, log_entries(sid))
        else:
            request, note, response = log_entries(sid)
            state = store.load(sid).state
            if state["turn"] >= TURNS_PER_CALL:
                self.new_call()
                return
            store.append_log(sid, request)
            turn = state["turn"]
            assert store.commit(sid, turn, realistic_state(turn + 1), ANSWER, [])
            store.append_log(sid, note)
            store.append_log(sid, response)


def cost(store, api: str, seconds: float) -> float:
    """Median seconds per simulated webhook."""
    hooks = Webhooks(store, api)
    rounds, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rounds) < 5:
        start = time.perf_counter()
        for _ in range(BATCH):
            hooks.one()
        rounds.append((time.perf_counter() - start) / BATCH)
    return statistics.median(rounds)


def count_sqlite_statements(store: SqliteStore) -> dict:
    counter = {"n": 0}

    def trace(statement):
        if not statement.startswith("PRAGMA"):
            counter["n"] += 1
    store._conn().set_trace_callback(trace)
    return counter


def count_redis_round_trips(store) -> dict:
    """Every command redis-py sends on its own (a script call is one EVALSHA) goes
    through execute_command once: one request, one reply."""
    counter = {"n": 0}
    client = store._r
    inner = client.execute_command

    def counting(*args, **options):
        counter["n"] += 1
        return inner(*args, **options)
    client.execute_command = counting
    return counter


def exact_counts(make_store, counter_for) -> dict:
    """Statements / round trips of one webhook (load + commit, or the five old calls)."""
    out = {}
    for api in ("new", "old"):
        store = make_store()
        counter = counter_for(store)
        hooks = Webhooks(store, api)
        counter["n"] = 0
        hooks.one()
        out[api] = counter["n"]
        store.close()
    return out


def bytes_after_50_turns_sqlite(path: str) -> dict:
    store = SqliteStore(path)
    sid = "CA" + "5" * 32
    store.start(sid, realistic_state(0), ANSWER, [])
    for turn in range(50):
        assert store.commit(sid, turn, realistic_state(turn + 1), ANSWER, log_entries(sid))
    with store._tx(write=False) as db:
        kept = db.execute("SELECT length(CAST(state AS BLOB)) + coalesce(length(CAST(answer AS BLOB)), 0) "
                          "+ coalesce(length(CAST(prev_answer AS BLOB)), 0) FROM calls WHERE call_sid = ?",
                          (sid,)).fetchone()[0]
    store.close()
    return {"kept": kept}


def bytes_after_50_turns_redis(store) -> dict:
    sid = "CA" + "5" * 32
    store.start(sid, realistic_state(0), ANSWER, [])
    for turn in range(50):
        assert store.commit(sid, turn, realistic_state(turn + 1), ANSWER, log_entries(sid))
    key = store._key("call", sid)
    fields = store._r.hkeys(key)
    return {"kept": sum(store._r.hstrlen(key, f) for f in fields),
            "memory_usage": store._r.memory_usage(key)}


def costs(new_store, seconds: float) -> dict[str, float]:
    """cost() of the new and the old way, each on a fresh store from `new_store()`."""
    out = {}
    for api in ("new", "old"):
        store = new_store()
        out[api] = cost(store, api, seconds)
        store.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the figures ({RESULTS})")
    args = parser.parse_args()

    state_bytes = len(json.dumps(realistic_state(1), ensure_ascii=False).encode())
    answer_bytes = len(ANSWER.encode())
    entries_bytes = sum(len(json.dumps(e, ensure_ascii=False).encode()) for e in log_entries("CA" + "0" * 32))
    print(f"one webhook: state {state_bytes} B, answer {answer_bytes} B, 3 log entries {entries_bytes} B; "
          f"median of {BATCH}-webhook rounds over {args.seconds:g} s each")
    figures: dict = {"machine": platform.platform(), "python": platform.python_version(),
                     "state_bytes": state_bytes, "answer_bytes": answer_bytes, "log_entries_bytes": entries_bytes,
                     "ms_per_webhook": {}, "ratio_to_memory": {}, "old_over_new": {}}
    timings: dict[str, dict[str, float]] = {}
    timings["memory"] = {api: cost(MemoryStore(), api, args.seconds) for api in ("new", "old")}

    with tempfile.TemporaryDirectory() as tmp:
        stores = iter(range(1000))

        def sqlite_store():
            return SqliteStore(f"{tmp}/calls-{next(stores)}.db")
        timings["sqlite"] = costs(sqlite_store, args.seconds)
        figures["sqlite_statements_per_webhook"] = exact_counts(sqlite_store, count_sqlite_statements)
        figures["bytes_kept_after_50_turns"] = {"sqlite": bytes_after_50_turns_sqlite(f"{tmp}/bytes.db")}

    if shutil.which("redis-server") is None:
        print("redis: not measured (redis-server is not installed)")
    else:
        redis_server = RedisServer().start()
        url = redis_server.url
        from ivr.store.redis import RedisStore
        prefixes = iter(range(1000))

        def redis_store():
            return RedisStore(url, prefix=f"bench{next(prefixes)}:")
        try:
            timings["redis"] = costs(redis_store, args.seconds)
            figures["redis_round_trips_per_webhook"] = exact_counts(redis_store, count_redis_round_trips)
            store = redis_store()
            figures["bytes_kept_after_50_turns"]["redis"] = bytes_after_50_turns_redis(store)
            store.close()
        finally:
            redis_server.stop()

    base = timings["memory"]
    print(f"\n{'backend':<22}{'new API ms':>11}{'x memory':>10}   {'old API ms':>11}{'x memory':>10}   old/new")
    for name, label in (("memory", "memory (baseline)"), ("sqlite", "sqlite (WAL, file)"), ("redis", "redis (loopback)")):
        if name not in timings:
            continue
        new, old = timings[name]["new"], timings[name]["old"]
        print(f"{label:<22}{new * 1e3:11.3f}{new / base['new']:9.1f}x   {old * 1e3:11.3f}{old / base['old']:9.1f}x"
              f"   {old / new:6.2f}x")
        figures["ms_per_webhook"][name] = {"new": round(new * 1e3, 4), "old": round(old * 1e3, 4)}
        figures["ratio_to_memory"][name] = {"new": round(new / base["new"], 2), "old": round(old / base["old"], 2)}
        figures["old_over_new"][name] = round(old / new, 2)

    s = figures["sqlite_statements_per_webhook"]
    print(f"\nSQLite statements per webhook: new {s['new']} (SELECT; BEGIN, UPDATE, 3 INSERT via executemany, "
          f"COMMIT), old {s['old']}")
    if "redis_round_trips_per_webhook" in figures:
        r = figures["redis_round_trips_per_webhook"]
        print(f"Redis round trips per webhook: new {r['new']} (HMGET, EVALSHA), old {r['old']}")
    kept = figures["bytes_kept_after_50_turns"]
    previous = state_bytes + 51 * answer_bytes   # the previous stores kept every turn's answer
    figures["bytes_kept_after_50_turns"]["previous_design_all_answers"] = previous
    print(f"Bytes a call keeps after 50 turns (state + answers kept for duplicates): sqlite {kept['sqlite']['kept']}"
          + (f", redis {kept['redis']['kept']} (MEMORY USAGE {kept['redis']['memory_usage']})" if "redis" in kept else "")
          + f"; keeping every answer, as before, it would be {previous}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
