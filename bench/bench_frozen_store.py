"""Webhook latency while the Redis store is frozen (issue 12 item 6), against a normal baseline.

Starts its own redis-server and `ivr serve --store redis://...` (gunicorn, 127.0.0.1 only), drives
calls with CLIENTS concurrent clients (each: a new call's first webhook, then one menu event), then
SIGSTOPs the redis-server (a frozen store: connections stay open, nothing answers), keeps the same
load for --frozen seconds, SIGCONTs it and measures again. Twilio gives up on a webhook after 15 s
and plays its own "application error"; the caller must hear our apology well before that.

    .venv/bin/python bench/bench_frozen_store.py [--label after] [--clients 16] [--frozen 10]

Prints p50/p99/max per phase and merges {label: figures} into bench/results/frozen_store.json.
"""
from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from harness import RedisServer, Served, Signer, percentile  # noqa: E402

RESULTS = REPO / "bench" / "results" / "frozen_store.json"
APOLOGY = "非常抱歉"


def drive(signer: Signer, seconds: float, clients: int) -> dict:
    """CLIENTS threads placing calls for `seconds`; every webhook's latency, status and kind of answer."""
    samples: list[tuple[float, int, bool]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client():
        session = requests.Session()
        while time.monotonic() < stop_at:
            sid = "CA" + secrets.token_hex(16)
            common = {"CallSid": sid, "From": "+8613700000000", "To": "+861095500000", "CallStatus": "in-progress"}
            for path, extra in (("/twilio/voice", {}), ("/twilio/event?k=gather&t=0", {"Digits": "9"})):
                start = time.monotonic()
                try:
                    reply = signer.post(session, path, {**common, **extra}, timeout=60)
                    status, apology = reply.status_code, APOLOGY in reply.text
                except requests.RequestException:
                    status, apology = 0, False
                with lock:
                    samples.append((time.monotonic() - start, status, apology))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies = [s[0] * 1000 for s in samples]
    return {"webhooks": len(samples), "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1), "max_ms": round(max(latencies, default=0), 1),
            "over_15s": sum(1 for s in samples if s[0] > 15), "errors_5xx_or_none": sum(1 for s in samples
                                                                                          if not 200 <= s[1] < 500),
            "apologies": sum(1 for s in samples if s[2])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="key in the results file (before/after)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--normal", type=float, default=4.0, help="seconds of load before and after the freeze")
    parser.add_argument("--frozen", type=float, default=10.0, help="seconds the store stays frozen under load")
    args = parser.parse_args()

    redis_server = RedisServer().start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-frozen-"))
    served = Served(redis_server.url, workers=args.workers, threads=args.threads, log=tmp / "server.log")
    try:
        served.start()
        signer = Signer(served.url)
        figures = {"clients": args.clients, "workers": args.workers, "threads": args.threads}
        figures["normal"] = drive(signer, args.normal, args.clients)
        redis_server.freeze()
        try:
            figures["frozen"] = drive(signer, args.frozen, args.clients)
        finally:
            redis_server.thaw()
        thawed = time.monotonic()
        figures["after_thaw"] = drive(signer, args.normal, args.clients)
        figures["after_thaw"]["seconds_to_first_ok"] = round(time.monotonic() - thawed, 2)
    finally:
        served.stop()
        redis_server.stop()

    print(f"{args.clients} clients, {args.workers} workers x {args.threads} threads, Redis store")
    print(f"{'phase':<12}{'webhooks':>9}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'>15 s':>7}{'5xx/none':>9}"
          f"{'apologies':>10}")
    for phase in ("normal", "frozen", "after_thaw"):
        f = figures[phase]
        print(f"{phase:<12}{f['webhooks']:>9}{f['p50_ms']:>10}{f['p99_ms']:>10}{f['max_ms']:>10}{f['over_15s']:>7}"
              f"{f['errors_5xx_or_none']:>9}{f['apologies']:>10}")
    print(f"frozen p99 / normal p99: {figures['frozen']['p99_ms'] / max(figures['normal']['p99_ms'], 0.1):.0f}x")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.label] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)} [{args.label}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
