"""Benchmark the join of issue 11: latency from the end of a listening window to its verdict in the
call store, the way a live Media Stream delivers it.

    python bench/bench_line_join.py [--windows 300] [--redis redis://127.0.0.1:6379/15]

A window's audio arrives as Twilio sends it, one 20 ms message at a time in real time. The stream
side (ivr.media.live.StreamConnection) files the window's verdict in the store every
PUBLISH_EVERY_MS of audio. For a window that ends after frame k, the verdict covering it is in the
store once the next publishing frame has arrived and been handled:

    latency = (frames from k to that frame) x 20 ms of waiting for audio
              + the measured wall time of handling those frames (JSON, base64, μ-law, VAD, verdict,
                one put_line round trip)

Windows end at random frames of 3-8 s windows of synthetic speech-like audio, on the memory and
SQLite stores (and Redis with --redis). The target is p99 < 100 ms. Writes bench/results/line_join.json.
"""
from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ivr.media.analyser import ulaw_encode  # noqa: E402
from ivr.media.live import PUBLISH_EVERY_MS, LineService  # noqa: E402
from ivr.media.stream import call_secret  # noqa: E402
from ivr.store import open_store  # noqa: E402


def frames_of(seconds: float, rng: np.random.Generator) -> list[str]:
    """Speech-like audio: 4 Hz syllables of band noise over a faint hiss, as base64 μ-law 20 ms frames."""
    n = int(seconds * 8000) // 160 * 160
    t = np.arange(n) / 8000
    envelope = (np.sin(2 * np.pi * 4 * t) > 0.2) * (t > 0.5)
    x = rng.standard_normal(n) * (0.002 + 0.1 * envelope)
    pcm = np.clip(x * 32768, -32768, 32767).astype(np.int16)
    payload = ulaw_encode(pcm)
    return [base64.b64encode(payload[i:i + 160]).decode() for i in range(0, n, 160)]


def run(store_url: str, windows: int, seed: int = 7) -> dict:
    store = open_store(store_url)
    rng, pick = np.random.default_rng(seed), random.Random(seed)
    clock = [0.0]
    service = LineService(store, "tok", clock=lambda: clock[0], flood_factor=1e9)
    latencies = []
    for w in range(windows):
        sid = f"CAbench{w:06d}{pick.randrange(10**6)}"
        store.start(sid, {"turn": 0, "flow": "bench"}, "<Response/>", [])
        conn, clock[0] = service.connection(), 0.0
        conn.receive(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        conn.receive(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ" + sid[2:], "start": {
            "streamSid": "MZ" + sid[2:], "accountSid": "AC1", "callSid": sid, "tracks": ["inbound"],
            "customParameters": {"lineSecret": call_secret("tok", sid)},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
        frames = frames_of(pick.uniform(3, 8) + 0.5, rng)
        end = pick.randrange(int(len(frames) * 0.6), len(frames) - int(PUBLISH_EVERY_MS / 20) - 1)
        messages = [json.dumps({"event": "media", "sequenceNumber": str(i + 2), "streamSid": "MZ" + sid[2:],
                                "media": {"track": "inbound", "chunk": str(i + 1), "timestamp": str(i * 20),
                                          "payload": p}}) for i, p in enumerate(frames)]
        for i, text in enumerate(messages[:end + 1]):
            clock[0] = i * 0.02
            conn.receive(text)
        handled, i = 0.0, end
        while True:  # after the window's last frame: until a verdict covers it
            record = store.get_line(sid, 0)
            if record is not None and record["until_ms"] >= (end + 1) * 20:  # covers the last frame, whole
                break
            i += 1
            clock[0] = i * 0.02
            t0 = time.perf_counter()
            conn.receive(messages[i])
            handled += time.perf_counter() - t0
        latencies.append((i - end) * 0.020 + handled)
        conn.finish()
    store.close()
    ms = np.array(latencies) * 1000
    return {"store": store_url.split(":")[0], "windows": windows, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "publish_every_ms": PUBLISH_EVERY_MS}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", type=int, default=300)
    ap.add_argument("--redis")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = ["memory://", f"sqlite:///{tmp}/bench.db"] + ([args.redis] if args.redis else [])
        for url in urls:
            r = run(url, args.windows)
            results.append(r)
            print(f"{r['store']:7s} window end -> verdict in store: p50 {r['p50_ms']:6.1f} ms  "
                  f"p99 {r['p99_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms  ({r['windows']} windows, "
                  f"a verdict every {r['publish_every_ms']} ms of audio)")
    out = HERE / "results" / "line_join.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
