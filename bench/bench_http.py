"""Webhook throughput over HTTP, as Twilio reaches a server: gunicorn workers, wrk over loopback.

    .venv/bin/python bench/bench_http.py [--seconds 8] [--workers 2] [--redis URL]

The same signed requests of whole calls (bench_core.CALL) go to three apps served the same
way: bare Flask (fixed TwiML), the durable floor (form, one HMAC, one store read, one write
transaction) and the engine. Each wrk connection plays its own calls in order (one connection
per wrk thread), so every request is a real next turn. Prints requests/s and the engine's
share of the floor's; with --redis, the engine on Redis with 1, 2 and 4 workers.
Needs `wrk` (Debian package wrk). Figures go to bench/results/http.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

sys.path.insert(0, str(BENCH.parent / "tests"))

from bench_core import CALL, TOKEN, synthetic_flow  # noqa: E402
from harness import free_port  # noqa: E402

LUA = r"""
local reqs, i = {}, 0
local counter = 0
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(args)
  for line in io.lines(os.getenv("BENCH_REQUESTS") .. "." .. id) do
    local path, sig, body = line:match("^(%S+)\t(%S+)\t(.*)$")
    reqs[#reqs + 1] = {path = path, sig = sig, body = body}
  end
end
function request()
  i = i + 1
  if i > #reqs then i = 1 end
  local r = reqs[i]
  return wrk.format("POST", r.path, {["Content-Type"] = "application/x-www-form-urlencoded",
                                     ["X-Twilio-Signature"] = r.sig}, r.body)
end
"""


def write_requests(base: str, prefix: str, calls: int, threads: int) -> str:
    """One file per wrk thread: path, signature, body of each request of its calls, in order."""
    signer = RequestValidator(TOKEN)
    stem = tempfile.mktemp(prefix="bench_http_")
    for thread in range(threads):
        with open(f"{stem}.{thread}", "w", encoding="utf-8") as out:
            # wrk builds one request per thread before its connection starts: let it be a harmless one
            padding = {"CallSid": f"CApad{prefix}{thread}", "CallStatus": "completed"}
            out.write(f"/twilio/status\t{signer.compute_signature(base + '/twilio/status', padding)}"
                      f"\t{urlencode(padding)}\n")
            for n in range(calls):
                sid = f"CA{prefix}{thread}{n:0{31 - len(prefix)}x}"
                for path, query, params in CALL:
                    params = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, **params}
                    full = path + (f"?{urlencode(query)}" if query else "")
                    out.write(f"{full}\t{signer.compute_signature(base + full, params)}\t{urlencode(params)}\n")
    return stem


def serve(kind: str, port: int, workers: int, store: str, flow: Path):
    env = {**os.environ, "BENCH_APP": kind, "BENCH_STORE": store, "BENCH_FLOW": str(flow), "BENCH_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
                             "--chdir", str(BENCH), "--log-level", "warning", "wsgi_apps:app()"], env=env)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"gunicorn for {kind} did not start")


def measure(kind: str, workers: int, store: str, flow: Path, seconds: float, calls: int, prefix: str) -> float:
    port = free_port()
    proc = serve(kind, port, workers, store, flow)
    threads = 2
    stem = write_requests(f"http://127.0.0.1:{port}", prefix, calls, threads)
    script = Path(stem + ".lua")
    script.write_text(LUA, encoding="utf-8")
    try:
        done = subprocess.run(["wrk", "-t", str(threads), "-c", str(threads), "-d", f"{seconds:g}s", "-s", str(script),
                               f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                              env={**os.environ, "BENCH_REQUESTS": stem}, timeout=seconds + 30)
        out = done.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        for path in Path(stem).parent.glob(Path(stem).name + "*"):
            path.unlink()
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{kind}: {errors.group(1)} error responses\n{out}")
    if not match:
        raise SystemExit(f"{kind}: wrk printed no rate\n{out}\n{done.stderr}")
    return float(match.group(1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis", help="also measure the engine on this Redis with 1, 2 and 4 workers")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    calls = int(args.seconds * 1500)  # more than wrk can play in the time: no call is replayed
    report = {"workers": args.workers, "seconds": args.seconds, "sqlite": {}, "redis": {}}
    with tempfile.TemporaryDirectory() as tmp:
        flow = synthetic_flow(10, Path(tmp))
        for round_ in range(2):  # two interleaved rounds; the better of each is kept (noise only slows)
            for kind in ("bare", "floor", "engine"):
                rps = measure(kind, args.workers, f"sqlite:///{tmp}/{kind}{round_}.db", flow, args.seconds, calls,
                              f"{kind[0]}{round_}")
                report["sqlite"][kind] = max(rps, report["sqlite"].get(kind, 0))
        if args.redis:
            for workers in (1, 2, 4):
                report["redis"][f"engine_w{workers}"] = measure("engine", workers, args.redis, flow, args.seconds,
                                                                calls, f"r{workers}")
            report["redis"]["floor_w2"] = measure("floor", 2, args.redis, flow, args.seconds, calls, "rf")
    s = report["sqlite"]
    report["engine_share_of_floor"] = round(s["engine"] / s["floor"], 3)
    print(f"gunicorn -w {args.workers}, wrk -t2 -c2 over loopback, {args.seconds:g} s each, SQLite store, signed requests")
    for kind, rps in s.items():
        print(f"  {kind:<8}{rps:>9.0f} req/s  {rps / s['bare']:>6.0%} of bare Flask")
    print(f"engine / durable floor: {report['engine_share_of_floor']:.0%} (target >= 85%)")
    for name, rps in report["redis"].items():
        print(f"  redis {name:<11}{rps:>9.0f} req/s")
    out = BENCH / "results" / "http.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
