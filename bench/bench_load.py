"""Load test (not CI): many concurrent simulated calls over HTTP against `ivr serve` (gunicorn),
with the SQLite store and with the Redis store.

Each call is a caller script of tests/calls (holds, transfers, silent lines, recordings... both flows)
played by the simulator over HTTP, re-sending like Twilio on a broken connection. Prints, per store:
calls and webhooks per second, webhook latency p50/p99/max, failed calls and 5xx; writes
bench/results/load.json.

    .venv/bin/python bench/bench_load.py                 # 200 concurrent calls (default, about a minute)
    .venv/bin/python bench/bench_load.py --calls 1000    # the full figure: 1000 calls, 200 at a time
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from harness import FLOWS, TOKEN, RedisServer, Served, percentile  # noqa: E402

from ivr.simulator.runner import find_scripts, run_script  # noqa: E402
from ivr.simulator.transport import HttpTransport, SimulatorError  # noqa: E402

RESULTS = REPO / "bench" / "results" / "load.json"
SCRIPTS = find_scripts([REPO / "tests" / "calls"])


class TimedTransport(HttpTransport):
    """Times every webhook; re-sends on a broken connection as Twilio does."""

    def __init__(self, *args, sink: list, lock: threading.Lock, **kwargs):
        super().__init__(*args, **kwargs)
        self.sink, self.lock, self.server_errors = sink, lock, 0

    def _dispatch(self, method, url, params, headers):
        for attempt in range(3):
            start = time.monotonic()
            try:
                reply = super()._dispatch(method, url, params, headers)
            except SimulatorError:
                if attempt == 2:
                    raise
                continue
            elapsed = time.monotonic() - start
            with self.lock:
                self.sink.append(elapsed)
            if reply.status >= 500:
                self.server_errors += 1
            return reply


def run_load(url: str, calls: int, concurrency: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    outcomes, transports = [], []
    counter = iter(range(calls))

    def caller():
        transport = TimedTransport(url, TOKEN, timeout=30, sink=latencies, lock=lock)
        with lock:
            transports.append(transport)
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            outcome = run_script(SCRIPTS[n % len(SCRIPTS)], transport)
            with lock:
                outcomes.append(outcome)

    start = time.monotonic()
    threads = [threading.Thread(target=caller) for _ in range(min(concurrency, calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    ms = [x * 1000 for x in latencies]
    failed = [o for o in outcomes if not o.passed]
    return {"calls": len(outcomes), "concurrency": min(concurrency, calls), "seconds": round(wall, 1),
            "calls_per_s": round(len(outcomes) / wall, 1), "webhooks": len(ms),
            "webhooks_per_s": round(len(ms) / wall, 1), "p50_ms": round(percentile(ms, 50), 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms, default=0), 1),
            "failed_calls": len(failed), "errors_5xx": sum(t.server_errors for t in transports),
            "first_failures": [f"{o.script}: {o.failure}"[:300] for o in failed[:3]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()

    results = {"calls": args.calls, "concurrency": args.concurrency, "workers": args.workers,
               "threads": args.threads, "cpus": os.cpu_count(), "stores": {}}
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    for kind in args.stores.split(","):
        redis_server = RedisServer().start() if kind == "redis" else None
        store = redis_server.url if redis_server else f"sqlite:///{tmp}/calls.db"
        served = Served(store, workers=args.workers, threads=args.threads,
                        flows=[FLOWS / "bank_hotline.yaml", FLOWS / "bank_hotline_en.yaml"],
                        log=tmp / f"server-{kind}.log")
        try:
            served.start()
            results["stores"][kind] = run_load(served.url, args.calls, args.concurrency)
        finally:
            served.stop()
            if redis_server:
                redis_server.stop()

    print(f"{args.calls} calls, {args.concurrency} at a time, ivr serve {args.workers} workers x {args.threads} "
          f"threads, {os.cpu_count()} CPUs")
    print(f"{'store':<8}{'calls/s':>9}{'webhooks/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'failed':>8}{'5xx':>6}")
    for kind, r in results["stores"].items():
        print(f"{kind:<8}{r['calls_per_s']:>9}{r['webhooks_per_s']:>12}{r['p50_ms']:>9}{r['p99_ms']:>9}"
              f"{r['max_ms']:>9}{r['failed_calls']:>8}{r['errors_5xx']:>6}")
        for failure in r["first_failures"]:
            print(f"  {failure}")
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
