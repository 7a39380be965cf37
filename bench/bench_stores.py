"""What one webhook asks of the store, per backend, as a ratio to the in-memory store
measured in the same run: read the call, compare-and-set the new state with its
TwiML, append two log entries (request and response).

    .venv/bin/python bench/bench_stores.py [--seconds 2]

Redis is measured when redis-server is installed (a throwaway one on a free port).
"""
from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from ivr.store import MemoryStore
from ivr.store.sqlite import SqliteStore

STATE = {"flow": "bank_hotline", "flow_version": "0" * 16, "step": "main_menu", "turn": 0,
         "variables": {"org": "华夏示范银行", "agent": "客服专员小王"}, "misses": {}, "last_said": ["查询账户余额请按1"] * 2}
TWIML = "<Response><Gather>" + "<Say>您好,欢迎致电华夏示范银行客户服务热线</Say>" * 2 + "</Gather></Response>"


def webhook_cost(store, seconds: float) -> float:
    """Median seconds per simulated webhook."""
    calls = {"n": 0}

    def new_call():
        calls["n"] += 1
        sid = f"CA{calls['n']:032x}"
        store.create_call(sid, dict(STATE), TWIML)
        return sid

    sid = new_call()
    rounds, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rounds) < 5:
        start = time.perf_counter()
        for _ in range(50):
            state = store.get_call(sid)
            if state["turn"] >= 40:
                sid = new_call()
                state = store.get_call(sid)
            store.append_log(sid, {"kind": "request", "params": {"CallSid": sid, "Digits": "1"}})
            turn = state["turn"]
            state["turn"] = turn + 1
            assert store.advance(sid, turn, state, TWIML)
            store.append_log(sid, {"kind": "response", "twiml": TWIML})
        rounds.append((time.perf_counter() - start) / 50)
    return statistics.median(rounds)


def throwaway_redis():
    server = shutil.which("redis-server")
    if server is None:
        return None, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from ivr.store.redis import RedisStore
    for _ in range(200):
        try:
            return RedisStore(f"redis://127.0.0.1:{port}/0"), proc
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.05)
    proc.kill()
    return None, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    baseline = webhook_cost(MemoryStore(), args.seconds)
    print(f"baseline: memory store   {baseline * 1e3:7.3f} ms per webhook's store work")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = webhook_cost(SqliteStore(f"{tmp}/calls.db"), args.seconds)
    print(f"sqlite (WAL, file)       {sqlite * 1e3:7.3f} ms   {sqlite / baseline:7.1f}x memory")
    redis_store, proc = throwaway_redis()
    if redis_store is None:
        print("redis                    not measured (redis-server is not installed)")
    else:
        try:
            redis_t = webhook_cost(redis_store, args.seconds)
            print(f"redis (loopback)         {redis_t * 1e3:7.3f} ms   {redis_t / baseline:7.1f}x memory")
        finally:
            proc.terminate()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
