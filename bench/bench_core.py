"""The call core's cost per webhook, against baselines measured in the same run.

    .venv/bin/python bench/bench_core.py [--calls 400] [--store sqlite|redis] [--redis URL]

Every app gets the same signed requests of whole calls (a greeting, a key, a silent
window and its retry, words, the goodbye, its pause, the status callback), called
directly through WSGI in this process:
  bare      Flask answering fixed TwiML (the cheapest possible webhook)
  floor     bench/floor_app.py: form, one HMAC, one store read, one write transaction
  engine    the real app: session, engine, machines, TwiML, the same store work

Printed: CPU per webhook (p50, p99), throughput per CPU-second and the engine's share of
the floor's; the cost of building versus firing a machine; the largest state kept per
call. Figures go to bench/results/core.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from twilio.request_validator import RequestValidator
from werkzeug.test import EnvironBuilder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from flask import Flask, Response  # noqa: E402
from twilio.twiml.voice_response import VoiceResponse  # noqa: E402

from floor_app import floor_app  # noqa: E402
from ivr.store import open_store  # noqa: E402
from ivr.twilio import create_app  # noqa: E402

TOKEN = "bench-token"
BASE = "http://localhost"
CALL = [  # (path, query, params) of one call on the synthetic menu flow
    ("/twilio/voice", {}, {"From": "+15550100000", "To": "+15550100001", "CallStatus": "ringing"}),
    ("/twilio/event", {"k": "gather", "t": 0}, {"Digits": "1", "CallStatus": "in-progress"}),
    ("/twilio/event", {"k": "gather", "t": 1}, {"CallStatus": "in-progress"}),
    ("/twilio/event", {"k": "gather", "t": 2}, {"SpeechResult": "more", "Confidence": "0.92",
                                                 "CallStatus": "in-progress"}),
    ("/twilio/event", {"k": "gather", "t": 3}, {"Digits": "2", "CallStatus": "in-progress"}),
    ("/twilio/event", {"k": "pause", "t": 4}, {"CallStatus": "in-progress"}),
    ("/twilio/status", {}, {"CallStatus": "completed", "CallDuration": "31"}),
]


def synthetic_flow(steps: int, directory: Path) -> Path:
    """A menu flow with `steps` menu steps chained 1 -> next, 2 -> goodbye."""
    lines = ["name: synthetic", "language: en-US", "start: m0",
             "offers: {call_back: bye, leave_message: bye}", "steps:"]
    for i in range(steps):
        nxt = f"m{i + 1}" if i + 1 < steps else "m0"
        lines += [f"  m{i}:", "    menu:", f"      prompt: Menu {i}. For more, press 1. To finish, press 2.",
                  "      options:", f"        - {{keys: \"1\", words: [more], go: {nxt}}}",
                  "        - {keys: \"2\", words: [finish], go: bye}"]
    lines += ["  bye:", "    goodbye: Thank you for calling. Goodbye."]
    path = directory / f"synthetic_{steps}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def requests_for(calls: int, prefix: str) -> list[dict]:
    """Signed WSGI environs for `calls` whole calls, built before any timing."""
    signer, out = RequestValidator(TOKEN), []
    for n in range(calls):
        sid = f"CA{prefix}{n:0{32 - len(prefix)}x}"
        for path, query, params in CALL:
            params = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, **params}
            qs = "&".join(f"{k}={v}" for k, v in query.items())
            url = BASE + path + (f"?{qs}" if qs else "")
            builder = EnvironBuilder(path=path, query_string=qs, method="POST", data=params, base_url=BASE,
                                     headers={"X-Twilio-Signature": signer.compute_signature(url, params)})
            out.append(builder.get_environ())
    return out


def run(app, environs: list[dict]) -> tuple[list[float], list[bytes]]:
    """CPU seconds of each request (this thread), and the answers."""
    times, bodies = [], []
    status = []

    def start_response(s, headers, exc_info=None):
        status.append(s)

    for environ in environs:
        t0 = time.thread_time()
        body = b"".join(app(environ, start_response))
        times.append(time.thread_time() - t0)
        bodies.append(body)
    bad = [s for s in status if not s.startswith("200")]
    if bad:
        raise SystemExit(f"{len(bad)} requests were not answered 200 (first: {bad[0]})")
    return times, bodies


def watch_kept_bytes(store) -> dict:
    """Track the most a call keeps at any turn: its state and the answers of its last two turns."""
    seen = {"largest": 0, "answers": {}}
    start, commit = store.start, store.commit

    def keep(sid, state, answer):
        previous = seen["answers"].get(sid, "")
        seen["answers"][sid] = answer
        size = len(json.dumps(state, ensure_ascii=False).encode()) + len(answer.encode()) + len(previous.encode())
        seen["largest"] = max(seen["largest"], size)

    def watched_start(sid, state, answer, entries):
        keep(sid, state, answer)
        return start(sid, state, answer, entries)

    def watched_commit(sid, turn, state, answer, entries):
        keep(sid, state, answer)
        return commit(sid, turn, state, answer, entries)

    store.start, store.commit = watched_start, watched_commit
    return seen


def bare_app() -> Flask:
    app = Flask("bare")
    body = str(VoiceResponse().say("hello"))

    @app.route("/twilio/<path:anything>", methods=["POST"])
    def any_webhook(anything):
        return Response(body, mimetype="text/xml")

    return app


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
            "per_cpu_second": round(len(times) / sum(times))}


def machine_costs() -> dict:
    """Building a machine instance versus firing one event on a reused instance."""
    from ivr.engine.listening import ListenLadder
    from ivr.engine.machines import Slot

    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        ListenLadder(model=Slot(), state_field="value")
    build = (time.perf_counter() - t0) / n
    class _Run:  # what give_up() needs: the last chance over, the engine hangs up
        @staticmethod
        def hang_up(fact):
            pass

        etiquette = type("E", (), {"x": type("L", (), {"final": "bye"})})

    machine = ListenLadder(model=Slot(), state_field="value")
    t0 = time.perf_counter()
    for _ in range(n):
        machine.model.value, machine.model.run = "last_chance", _Run
        machine.send("miss", ladder="x")
    fire = (time.perf_counter() - t0) / n
    return {"build_ms": round(build * 1000, 3), "fire_ms": round(fire * 1000, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        def store(name):
            return open_store(f"sqlite:///{tmp}/{name}.db" if args.store == "sqlite" else args.redis)

        small, large = synthetic_flow(10, Path(tmp)), synthetic_flow(1000, Path(tmp))
        apps = {"bare": bare_app(), "floor": floor_app(store("floor"), TOKEN),
                "engine": create_app([str(small)], store=store("engine"), auth_token=TOKEN),
                "engine_1000": create_app([str(large)], store=store("engine1000"), auth_token=TOKEN)}
        kept = watch_kept_bytes(apps["engine"].extensions["ivr"].store)
        for name, app in apps.items():  # warm up: imports, first connections, caches
            run(app, requests_for(5, f"w{name[:3]}"))
        results, answers = {}, {}
        for round_ in range(3):  # interleaved rounds: the machine's noise hits every app alike
            for name, app in apps.items():
                times, bodies = run(app, requests_for(args.calls, f"{round_}{name[:3]}"))
                results.setdefault(name, []).extend(times)
                answers[name] = bodies
        apologies = sum(b"sorry" in body.lower() for body in answers["engine"])
        sizes = kept["largest"]

    figures = {name: summary(times) for name, times in results.items()}
    floor, engine = figures["floor"]["per_cpu_second"], figures["engine"]["per_cpu_second"]
    report = {"store": args.store, "calls_per_round": args.calls, "requests_per_call": len(CALL),
              "apps": figures, "engine_share_of_floor": round(engine / floor, 3),
              "engine_1000_vs_10_steps": round(figures["engine_1000"]["p50_ms"] / figures["engine"]["p50_ms"], 3),
              "machines": machine_costs(), "largest_kept_state_bytes": sizes,
              "engine_apologies": apologies}
    print(f"store: {args.store}; {args.calls} calls x {len(CALL)} webhooks x 3 rounds per app; CPU time per webhook")
    print(f"{'app':<12}{'p50 ms':>9}{'p99 ms':>9}{'webhooks/CPU-s':>16}{'/ floor':>9}")
    for name, fig in figures.items():
        print(f"{name:<12}{fig['p50_ms']:>9.3f}{fig['p99_ms']:>9.3f}{fig['per_cpu_second']:>16}"
              f"{fig['per_cpu_second'] / floor:>9.2f}")
    print(f"engine CPU throughput / durable floor, in-process: {report['engine_share_of_floor']:.0%} "
          "(the >= 85% target is over HTTP, as Twilio reaches the server: bench/bench_http.py)")
    print(f"engine p99 CPU per webhook: {figures['engine']['p99_ms']:.3f} ms (target < 1 ms)")
    print(f"1000-step flow / 10-step flow, p50: {report['engine_1000_vs_10_steps']:.2f}x (1.00x: does not grow)")
    m = report["machines"]
    print(f"machine: build {m['build_ms']:.3f} ms (once per thread), fire {m['fire_ms']:.3f} ms (per event)")
    print(f"largest state + kept answers per call: {report['largest_kept_state_bytes']} bytes (target < 4096)")
    if apologies:
        print(f"WARNING: {apologies} engine answers were apologies", file=sys.stderr)
    out = REPO / "bench" / "results" / f"core_{args.store}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
