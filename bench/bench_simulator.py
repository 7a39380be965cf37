"""Simulated calls per second, in-process: `ivr test`-style scripted calls and `ivr replay` of logged calls.

Each figure comes with a baseline measured in the same run (the machines are noisy): the bare
Flask app answering fixed TwiML to the same number of requests through the same in-process WSGI
transport (signed like Twilio). Time is also split between the app (the webhooks: engine, store,
TwiML) and the simulator (building and signing requests, parsing TwiML, the caller, the clock,
reading the call log, diffing), so each side's share is visible.

    .venv/bin/python bench/bench_simulator.py [--rounds 5] [--calls 1000] [--jobs 2]

`ivr test --jobs N` is measured too: the scripts many times over in N worker processes (each its own
apps and flows), wall time including the workers' start.

Writes bench/results/simulator.json.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask, Response
from twilio.twiml.voice_response import VoiceResponse

from ivr.simulator.replay import Replayer
from ivr.simulator.runner import InProcessRun, find_scripts, run_script
from ivr.simulator.script import load_script
from ivr.simulator.transport import InProcessTransport
from ivr.store import open_store

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "simulator.json"


class TimedApp:
    """WSGI middleware: the time spent inside the app, and how many requests it answered."""

    def __init__(self, app):
        self.app, self.seconds, self.requests = app, 0.0, 0

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        try:
            return list(self.app(environ, start_response))  # the app's whole work happens in here
        finally:
            self.seconds += time.perf_counter() - started
            self.requests += 1


class TimedRun(InProcessRun):
    """An InProcessRun whose apps are each wrapped with a TimedApp as they are created."""

    def __init__(self, store=None):
        super().__init__(store)
        self.apps: list[TimedApp] = []

    def transport(self, path):
        transport = super().transport(path)
        if not isinstance(transport.app, TimedApp):
            transport.app = TimedApp(transport.app)
            self.apps.append(transport.app)
        return transport


def bare_baseline(requests: int) -> float:
    """Seconds for the bare Flask app to answer `requests` signed POSTs with fixed TwiML, same transport."""
    app = Flask("bare")
    body = str(VoiceResponse().say("hello"))

    @app.post("/twilio/voice")
    def voice():
        return Response(body, mimetype="text/xml")

    transport = InProcessTransport(app, "bare-token")
    params = {"CallSid": "CA" + "0" * 32, "AccountSid": "AC" + "0" * 32, "From": "+8613700000000",
              "To": "+861095500000", "CallStatus": "in-progress", "Digits": "1"}
    url = transport.base_url + "/twilio/voice"
    transport.send("POST", url, params)
    started = time.perf_counter()
    for _ in range(requests):
        transport.send("POST", url, params)
    return time.perf_counter() - started


def scripted(scripts: list, rounds: int) -> dict:
    """`ivr test` in one process: the scripts (files, read for each call as `ivr test` does) `rounds` times."""
    run = TimedRun()
    for script in scripts:  # warm-up: first calls fill caches (music WAVs, renderers)
        run_script(script, run=run)
    apps = run.apps
    for app in apps:
        app.seconds, app.requests = 0.0, 0
    started = time.perf_counter()
    for _ in range(rounds):
        for script in scripts:
            outcome = run_script(script, run=run)
            assert outcome.passed, outcome.failure
    total = time.perf_counter() - started
    calls = rounds * len(scripts)
    app_seconds, requests = sum(a.seconds for a in apps), sum(a.requests for a in apps)
    return {"calls": calls, "requests": requests, "seconds": total, "calls_per_s": calls / total,
            "app_seconds": app_seconds, "simulator_seconds": total - app_seconds,
            "simulator_share": (total - app_seconds) / total}


def scripted_in_workers(paths: list[Path], rounds: int, jobs: int) -> dict:
    """`ivr test --jobs N`: the scripts `rounds` times over, in N worker processes, wall time from the
    pool's start (workers starting and loading their flows included) to the last outcome."""
    from ivr.simulator.commands import outcomes_of

    work = paths * rounds
    started = time.perf_counter()
    outcomes = list(outcomes_of(work, None, None, None, jobs))
    total = time.perf_counter() - started
    bad = [o for o in outcomes if not o.passed]
    assert not bad, bad[0].failure
    return {"jobs": jobs, "calls": len(work), "seconds": total, "calls_per_s": len(work) / total}


def record(scripts, n: int, url: str) -> float:
    """n calls through the simulator into the SQLite store at url (the scripts, over and over)."""
    store = open_store(url)
    run = InProcessRun(store)
    started = time.perf_counter()
    for script in itertools.islice(itertools.cycle(scripts), n):
        outcome = run_script(script, run=run)
        assert outcome.passed, outcome.failure
    store.close()
    return time.perf_counter() - started


def replayed(url: str) -> dict:
    store = open_store(url)
    started = time.perf_counter()
    sids = [row["call_sid"] for row in store.list_calls()]
    replayer = Replayer(store)
    replayer.run = TimedRun(replayer.scratch)
    replays = [replayer.replay(sid) for sid in sids]
    apps = replayer.run.apps
    total = time.perf_counter() - started
    bad = [r for r in replays if r.error or r.differs]
    assert not bad, bad[0].to_dict()
    store.close()
    app_seconds, requests = sum(a.seconds for a in apps), sum(a.requests for a in apps)
    return {"calls": len(sids), "requests": requests, "seconds": total, "calls_per_s": len(sids) / total,
            "seconds_per_10000": total / len(sids) * 10_000, "app_seconds": app_seconds,
            "simulator_seconds": total - app_seconds, "simulator_share": (total - app_seconds) / total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="times each shipped caller script runs (default 5)")
    parser.add_argument("--calls", type=int, default=1000, help="logged calls to record, then replay (default 1000)")
    parser.add_argument("--jobs", type=int, default=2, help="workers for the `ivr test --jobs` figure (default 2; 1: skip)")
    parser.add_argument("--parallel-rounds", type=int, default=40,
                        help="times each script runs for the --jobs figure (default 40)")
    parser.add_argument("--store", help="replay this existing sqlite:///… store instead of recording --calls")
    parser.add_argument("--out", default=str(RESULTS), help=f"JSON results (default {RESULTS.relative_to(REPO)})")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    scripts = [load_script(p) for p in find_scripts([REPO / "tests" / "calls"])]

    paths = find_scripts([REPO / "tests" / "calls"])
    test = scripted(paths, args.rounds)  # by file, as `ivr test` runs them: reading each script is part of it
    test_base = bare_baseline(test["requests"])
    print(f"ivr test: {test['calls']} scripted calls ({test['requests']} webhooks) in {test['seconds']:.2f} s"
          f"  = {test['calls_per_s']:.0f} calls/s")
    print(f"  bare Flask app, same {test['requests']} requests, same transport: {test_base:.2f} s"
          f"  -> scripted calls cost {test['seconds'] / test_base:.1f}x the baseline")
    print(f"  inside the app (webhooks) {test['app_seconds']:.2f} s, simulator side {test['simulator_seconds']:.2f} s"
          f" ({test['simulator_share']:.0%} of the total; {test['simulator_seconds'] / test_base:.2f}x the baseline)")

    parallel = scripted_in_workers(paths, args.parallel_rounds, args.jobs) if args.jobs > 1 else None
    if parallel:
        print(f"ivr test --jobs {parallel['jobs']}: {parallel['calls']} scripted calls in {parallel['seconds']:.2f} s"
              f"  = {parallel['calls_per_s']:.0f} calls/s (wall time, workers' start included)")

    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"sqlite:///{tmp}/calls.db"
        recording = None if args.store else record(scripts, args.calls, url)
        replay = replayed(url)
    replay_base = bare_baseline(replay["requests"])
    if recording is not None:
        print(f"recorded {args.calls} calls into SQLite in {recording:.1f} s ({args.calls / recording:.0f} calls/s)")
    print(f"ivr replay: {replay['calls']} logged calls ({replay['requests']} webhooks) in {replay['seconds']:.2f} s"
          f"  = {replay['calls_per_s']:.0f} calls/s  (10,000 calls: {replay['seconds_per_10000']:.0f} s)")
    print(f"  bare Flask app, same {replay['requests']} requests, same transport: {replay_base:.2f} s"
          f"  -> replay costs {replay['seconds'] / replay_base:.1f}x the baseline")
    print(f"  inside the app (webhooks) {replay['app_seconds']:.2f} s, simulator side (incl. reading the log) "
          f"{replay['simulator_seconds']:.2f} s ({replay['simulator_share']:.0%})")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "python": platform.python_version(), "machine": platform.machine(),
        "scripted": {**test, "baseline_seconds": test_base, "ratio_to_baseline": test["seconds"] / test_base},
        "scripted_in_workers": parallel,
        "replay": {**replay, "baseline_seconds": replay_base, "ratio_to_baseline": replay["seconds"] / replay_base,
                   "recorded_calls_per_s": args.calls / recording if recording else None},
    }, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
