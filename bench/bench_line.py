"""Benchmark (and tune) the line analyser on the labelled corpus (issue 11).

    python bench/line_corpus.py                 # 340 clips into bench/corpus (once)
    python bench/bench_line.py [--tune]         # --tune: thresholds from the TUNING set only

With ``--tune`` the thresholds of ``ivr/media/line_thresholds.yaml`` are chosen on the
tuning set (coordinate search, each threshold put in the middle of its best plateau);
the test set is never looked at while tuning. Then, on the TEST set (other voices,
seeds and noise colours): per-class precision and recall and the confusion matrix; the
analyser's real-time factor (CPU seconds per second of audio, frames fed one 20 ms frame
at a time as a Media Stream delivers them) and the latency from a window's last frame to
its verdict (p99). Writes ``bench/results/line.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import wave
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from line_corpus import CLASSES, COUNTS, generate, load_manifest  # noqa: E402

from ivr.media.analyser import (FRAME_SAMPLES, RATE, THRESHOLDS_FILE, LineAnalyser,  # noqa: E402
                                Thresholds, classify)

FEATURES = ("seconds", "speech_dbfs", "noise_dbfs", "snr_db", "reverb_s", "dynamics_db", "voiced_ratio",
            "digital_silence")
# threshold name -> candidate values searched when tuning
GRID = {
    "silent_max_voiced_ratio": np.round(np.arange(0.02, 0.40, 0.01), 3),
    "silent_max_speech_dbfs": np.arange(-75.0, -50.0, 0.5),
    "silent_min_dynamics_db": np.arange(2.0, 12.0, 0.25),
    "noisy_max_snr_db": np.arange(10.0, 26.0, 0.25),
    "speaker_min_reverb_s": np.round(np.arange(0.10, 1.90, 0.02), 3),
    "quiet_max_speech_dbfs": np.arange(-44.0, -26.0, 0.25),
}


def read_pcm(path: str) -> np.ndarray:
    with wave.open(path, "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def measure(rows: list[dict], thresholds: Thresholds) -> tuple[list[dict], dict]:
    """Run the analyser on every clip frame by frame; figures per clip and the cost."""
    out, cpu, audio, latencies = [], 0.0, 0.0, []
    for row in rows:
        pcm = read_pcm(row["path"])
        analyser = LineAnalyser(thresholds, max_seconds=len(pcm) / RATE + 1)
        frames = [pcm[i:i + FRAME_SAMPLES] for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
        c0 = time.process_time()
        for frame in frames:
            analyser.feed_frame(frame)
        w0 = time.perf_counter()
        report = analyser.verdict()
        latencies.append(time.perf_counter() - w0)
        cpu += time.process_time() - c0
        audio += len(frames) * FRAME_SAMPLES / RATE
        out.append(dict(row, predicted=report.condition, **{k: getattr(report, k) for k in FEATURES}))
    cost = dict(rtf=cpu / max(audio, 1e-9), audio_s=audio, cpu_s=cpu,
                latency_p50_ms=float(np.percentile(latencies, 50) * 1000),
                latency_p99_ms=float(np.percentile(latencies, 99) * 1000))
    return out, cost


def predict(items: list[dict], t: Thresholds) -> list[str]:
    return [classify({k: it[k] for k in FEATURES}, t).condition for it in items]


def scores(labels: list[str], predicted: list[str]) -> dict:
    idx = {c: i for i, c in enumerate(CLASSES)}
    matrix = np.zeros((len(CLASSES), len(CLASSES)), dtype=int)
    for a, p in zip(labels, predicted):
        matrix[idx[a], idx[p]] += 1
    per = {}
    for c, i in idx.items():
        tp = matrix[i, i]
        per[c] = dict(precision=float(tp / matrix[:, i].sum()) if matrix[:, i].sum() else 0.0,
                      recall=float(tp / matrix[i].sum()) if matrix[i].sum() else 0.0, n=int(matrix[i].sum()))
    return dict(per_class=per, matrix=matrix.tolist(), accuracy=float(np.trace(matrix) / max(1, matrix.sum())))


def objective(labels: list[str], items: list[dict], t: Thresholds) -> float:
    s = scores(labels, predict(items, t))["per_class"]
    worst = min(min(v["precision"], v["recall"]) for v in s.values())
    mean = np.mean([v["precision"] + v["recall"] for v in s.values()]) / 2
    return worst + mean  # lift the worst class first, then the average


def tune(items: list[dict], start: Thresholds, rounds: int = 3) -> Thresholds:
    """Coordinate search on the tuning clips; each threshold goes to the middle of its best plateau."""
    labels = [it["cls"] for it in items]
    best = start
    for _ in range(rounds):
        for name, grid in GRID.items():
            vals = [objective(labels, items, replace(best, **{name: float(v)})) for v in grid]
            top = max(vals)
            winners = [i for i, v in enumerate(vals) if v >= top - 1e-12]
            # the longest run of consecutive winners, and its middle (the widest margin)
            runs, run = [], [winners[0]]
            for i in winners[1:]:
                if i == run[-1] + 1:
                    run.append(i)
                else:
                    runs.append(run)
                    run = [i]
            runs.append(run)
            longest = max(runs, key=len)
            best = replace(best, **{name: float(grid[longest[len(longest) // 2]])})
    return best


def table(s: dict) -> str:
    w = max(len(c) for c in CLASSES) + 2
    lines = ["confusion matrix (rows: true class, columns: verdict)",
             " " * w + "".join(f"{c[:12]:>13}" for c in CLASSES)]
    for c, row in zip(CLASSES, s["matrix"]):
        lines.append(f"{c:<{w}}" + "".join(f"{v:>13}" for v in row))
    lines.append("")
    lines.append(f"{'class':<{w}}{'precision':>10}{'recall':>10}{'clips':>7}")
    for c in CLASSES:
        v = s["per_class"][c]
        lines.append(f"{c:<{w}}{v['precision']:>10.3f}{v['recall']:>10.3f}{v['n']:>7}")
    lines.append(f"accuracy {s['accuracy']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(HERE / "corpus"))
    ap.add_argument("--tune", action="store_true", help="choose thresholds on the tuning set, write them")
    ap.add_argument("--out", default=str(HERE / "results" / "line.json"))
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    if not (corpus / "manifest.jsonl").exists():
        print(f"no corpus in {corpus}: generating it (python bench/line_corpus.py)")
        generate(corpus, COUNTS)
    thresholds = Thresholds.load()
    result = {}
    if args.tune:
        tune_rows = load_manifest(corpus, "tune")
        items, _ = measure(tune_rows, thresholds)
        thresholds = tune(items, thresholds)
        thresholds.save(THRESHOLDS_FILE, comment=(
            "Line analyser thresholds (ivr/media/analyser.py: Thresholds).\n"
            f"Tuned by `python bench/bench_line.py --tune` on the TUNING set only ({len(items)} clips)."))
        s = scores([it["cls"] for it in items], predict(items, thresholds))
        print(f"tuned on {len(items)} tuning clips -> {THRESHOLDS_FILE}")
        print(json.dumps(asdict(thresholds)))
        print(table(s) + "\n")
        result["tuning_set"] = s
    test_rows = load_manifest(corpus, "test")
    items, cost = measure(test_rows, thresholds)
    s = scores([it["cls"] for it in items], [it["predicted"] for it in items])
    print(f"TEST set: {len(items)} clips (voices, seeds and noise colours not used in tuning)")
    print(table(s))
    print(f"\nreal-time factor {cost['rtf']:.5f} ({cost['cpu_s']:.2f} s CPU for {cost['audio_s']:.0f} s of audio, "
          f"20 ms frames)")
    print(f"verdict latency after a window's last frame: p50 {cost['latency_p50_ms']:.2f} ms, "
          f"p99 {cost['latency_p99_ms']:.2f} ms")
    wrong = [it for it in items if it["predicted"] != it["cls"]]
    for it in wrong[:20]:
        print(f"  miss: {Path(it['path']).name} {it['cls']} -> {it['predicted']} "
              + " ".join(f"{k}={it[k]:.2f}" for k in FEATURES[1:]))
    result.update(test_set=s, cost=cost, thresholds=asdict(thresholds),
                  misses=[dict(clip=Path(it["path"]).name, true=it["cls"], verdict=it["predicted"]) for it in wrong])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    ok = all(v["precision"] >= 0.9 and v["recall"] >= 0.9 for v in s["per_class"].values())
    print("target per-class precision and recall >= 0.9:", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
