"""Per-webhook cost, as a ratio to a bare Flask endpoint measured in the same run.

The machines are noisy, so absolute times mean little; what matters is
(1) how much a real webhook costs over the smallest possible one, and
(2) that this does not grow with the size of the flow (DESIGN.md).

    .venv/bin/python bench/bench_webhooks.py [--seconds 2]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask, Response
from twilio.twiml.voice_response import VoiceResponse

from ivr.engine import events as ev
from ivr.engine.engine import Engine
from ivr.flow import load_flow
from ivr.store import MemoryStore
from ivr.twilio import create_app

REPO = Path(__file__).resolve().parent.parent


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


def per_call(fn, seconds: float) -> float:
    """Median seconds per call of fn over several rounds."""
    rounds = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rounds) < 5:
        n, start = 0, time.perf_counter()
        while n < 50:
            fn()
            n += 1
        rounds.append((time.perf_counter() - start) / n)
    return statistics.median(rounds)


def bare_flask():
    app = Flask("bare")
    body = str(VoiceResponse().say("hello"))

    @app.post("/twilio/voice")
    def voice():
        return Response(body, mimetype="text/xml")

    client = app.test_client()
    return lambda: client.post("/twilio/voice", data={"CallSid": "CA1", "Digits": "1"})


def webhook_loop(flow_path: Path):
    """Each iteration: one menu key press on a live call (the common webhook)."""
    app = create_app([str(flow_path)], store=MemoryStore(), auth_token="")
    client = app.test_client()
    state = {"n": 0, "turn": 0, "sid": ""}

    def new_call():
        state["n"] += 1
        state["sid"] = f"CA{state['n']:032x}"
        state["turn"] = 0
        client.post("/twilio/voice", data={"CallSid": state["sid"], "From": "+1", "To": "+2"})

    new_call()

    def press():
        if state["turn"] > 200:
            new_call()
        client.post(f"/twilio/event?k=gather&t={state['turn']}", data={"CallSid": state["sid"], "Digits": "1"})
        state["turn"] += 1

    return press


def engine_loop(flow_path: Path):
    engine = Engine(load_flow(flow_path))
    holder = {"state": None}

    def fresh():
        holder["state"] = engine.new_call()
        engine.start(holder["state"])

    fresh()

    def step():
        if holder["state"].turn > 200:
            fresh()
        engine.handle(holder["state"], ev.Digits("1"))

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    import logging
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [10, 100, 1000]
        flows = {n: synthetic_flow(n, Path(tmp)) for n in sizes}
        baseline = per_call(bare_flask(), args.seconds)
        print(f"baseline: bare Flask endpoint returning fixed TwiML   {baseline * 1e3:7.3f} ms/request")
        print(f"{'flow size':>10} {'engine ms/event':>16} {'webhook ms':>11} {'webhook / baseline':>19}")
        rows = []
        for n in sizes:
            engine_t = per_call(engine_loop(flows[n]), args.seconds)
            hook_t = per_call(webhook_loop(flows[n]), args.seconds)
            rows.append((n, engine_t, hook_t))
            print(f"{n:>10} {engine_t * 1e3:>16.3f} {hook_t * 1e3:>11.3f} {hook_t / baseline:>18.2f}x")
        growth = rows[-1][2] / rows[0][2]
        print(f"webhook cost, {sizes[-1]}-step flow / {sizes[0]}-step flow: {growth:.2f}x "
              f"(1.00x = does not grow with the flow)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
