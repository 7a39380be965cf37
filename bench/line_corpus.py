"""Generate the labelled line corpus for the line analyser (issue 11).

    python bench/line_corpus.py [--out bench/corpus] [--small] [--sets tune,test] [--jobs N]

Each clip is a caller on a telephone line, as the hotline hears it: espeak-ng speech
(Mandarin ``cmn`` and English voices, variants, speeds, pitches), mixed with a background,
then sox band-limits it to 300-3400 Hz at 8 kHz and round-trips it through G.711 μ-law.
Five classes:

- ``clear``: speech at -26..-16 dBFS active level, a faint hiss 32-45 dB below it;
- ``quiet``: the same speech turned down to -52..-42 dBFS (a weak handset / far mouth);
- ``noisy``: speech at normal level with noise at a low SNR (see ``SNRS``): coloured noise
  or babble (a mix of four other espeak voices speaking other sentences);
- ``speakerphone``: speech through sox ``reverb`` (room reverberation), a few dB of
  distance loss (-34..-24 dBFS) and a hiss 28-40 dB below;
- ``silent``: no speech: digital zero, or low comfort noise (-72..-52 dBFS).

The TUNING set and the TEST set never share a voice, a seed or a noise colour
(see ``SETS``): tuning speaks with en-us / en-gb / cmn (+m1, +f2, +m3 ...) over white and
brown noise and babble of tuning voices; the test set speaks with en-gb-scotland, en-029,
en-us-nyc, en-gb-x-rp and cmn (+f4, +m5, +m6 ...) over pink noise and babble of test voices,
with seeds from a disjoint range and different reverberation settings.
Noise is generated in numpy from the clip's seed (white; pink by 1/f spectral shaping;
brown by leaky integration), so every clip is reproducible.

Writes ``OUT/<set>/<class>/<name>.wav`` and ``OUT/manifest.jsonl`` (one JSON per clip).
``--small`` makes 8 test clips per class (40 clips, the CI corpus).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ivr.simulator.line_audio import active_level_db  # noqa: E402  (one definition of the speech level)

RATE = 8000
CLASSES = ("silent", "quiet", "noisy", "speakerphone", "clear")
HERE = Path(__file__).resolve().parent

TEXT_EN = [
    "Hello, I would like to check the balance of my savings account, please.",
    "I lost my bank card yesterday and I need to report it as soon as possible.",
    "Could you tell me why there is a charge of forty dollars on my statement?",
    "My name is David Chen, and I am calling about a transfer that has not arrived.",
    "Yes, that is right. The card ends in four five seven two.",
    "I want to set up a standing order for my rent on the first of every month.",
    "Can I speak to someone about a mortgage? We are thinking of buying a flat.",
    "Sorry, I did not catch that. Could you say it again more slowly?",
]
TEXT_CMN = [
    "您好,我想查询一下我的储蓄账户余额,谢谢。",
    "我的银行卡昨天丢了,想办理挂失,请问应该怎么做?",
    "请问我的账单上为什么多了一笔四十元的手续费?",
    "我姓陈,我上个星期转的一笔钱到现在还没有到账。",
    "对,没错,卡号最后四位是四五七二。",
    "我想办一个每个月一号自动还房租的业务。",
    "我想咨询一下房贷的事情,我们打算买一套房子。",
    "不好意思,我没听清楚,您能再说一遍吗?",
]
# short answers: a caller who says only a word or two in the listening window
SHORT_EN = ["Yes.", "Balance, please.", "Lost card.", "No, thank you.", "Operator.", "Two."]
SHORT_CMN = ["是的。", "查余额。", "挂失。", "不用了,谢谢。", "人工服务。", "二。"]
SHORT_SHARE = 0.25

SETS = {
    "tune": dict(
        en_voices=["en-us", "en-gb", "en-us+f2", "en-gb+m3", "en-us+m1", "en-gb+f1"],
        cmn_voices=["cmn", "cmn+f2", "cmn+m3", "cmn+f1"],
        noise_colours=["white", "brown", "babble"],
        comfort_colours=["white", "brown"],
        snrs=[0, 4, 8, 12],
        reverb=dict(reverberance=(55, 95), room=(70, 100), wet_only=0.5),
        seed_base=1_000,
    ),
    "test": dict(
        en_voices=["en-gb-scotland", "en-029", "en-us-nyc+f3", "en-gb-x-rp+m6", "en-gb-scotland+f4"],
        cmn_voices=["cmn+f4", "cmn+m5", "cmn+m6", "cmn+f5"],
        noise_colours=["pink", "babble"],
        comfort_colours=["pink"],
        snrs=[0, 5, 10],
        reverb=dict(reverberance=(50, 100), room=(60, 100), wet_only=0.4),
        seed_base=900_000,
    ),
}
COUNTS = {"tune": 32, "test": 36}   # per class: 5 * (32 + 36) = 340 clips
SMALL_COUNTS = {"test": 8}          # 40 clips for CI


def espeak(voice: str, text: str, speed: int, pitch: int, path: Path) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
                   check=True, capture_output=True)


def sox(*args) -> None:
    subprocess.run(["sox", "-q", "-D", *map(str, args)], check=True, capture_output=True)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768.0


def write_wav(path: Path, x: np.ndarray, rate: int = RATE) -> None:
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def set_level(x: np.ndarray, target_db: float) -> np.ndarray:
    return x * 10 ** ((target_db - active_level_db(x)) / 20)


def noise(colour: str, n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if colour == "white":
        y = white
    elif colour == "pink":
        spec = np.fft.rfft(white)
        f = np.arange(spec.size, dtype=float)
        f[0] = 1.0
        y = np.fft.irfft(spec / np.sqrt(f), n)
    elif colour == "brown":
        y = np.zeros(n)
        acc = 0.0
        for i, v in enumerate(white):  # leaky integrator (1/f^2 above a few Hz)
            acc = 0.995 * acc + v
            y[i] = acc
        y -= y.mean()
    else:
        raise ValueError(colour)
    return telephone_band(y)


def telephone_band(y: np.ndarray) -> np.ndarray:
    """Keep 300-3400 Hz (what survives the telephone channel), normalised to unit RMS, so a
    noise's SNR is the SNR the caller's line really has (brown noise is mostly below 300 Hz)."""
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(len(y), 1 / RATE)
    spec[(f < 300) | (f > 3400)] = 0
    y = np.fft.irfft(spec, len(y))
    return y / (np.sqrt((y ** 2).mean()) + 1e-12)


def speech(voice: str, rng: random.Random, tmp: Path, name: str, reverb: tuple | None = None,
           short: bool = False) -> np.ndarray:
    """One or two caller sentences (or a short answer) in ``voice`` at 8 kHz (float, unscaled)."""
    if short:
        text = rng.choice(SHORT_CMN if voice.startswith("cmn") else SHORT_EN)
    else:
        texts = TEXT_CMN if voice.startswith("cmn") else TEXT_EN
        text = " ".join(rng.sample(texts, rng.choice([1, 2])))
    raw, out = tmp / f"{name}.raw.wav", tmp / f"{name}.8k.wav"
    espeak(voice, text, rng.randint(130, 190), rng.randint(30, 70), raw)
    effects = ["rate", RATE]
    if reverb:
        rev, room, wet_only = reverb
        effects = ["pad", 0, 0.8, "reverb", *(["-w"] if wet_only else []), rev, 50, room, 100, 20] + effects
    sox(raw, "-c", 1, out, *effects)
    x = read_wav(out)
    return x[: int(RATE * 6.5)]  # keep clips within a listening window or so


def babble(voices: list[str], exclude: str, n: int, rng: random.Random, tmp: Path) -> np.ndarray:
    talkers = [v for v in voices if v != exclude]
    mix = np.zeros(n)
    for k, voice in enumerate(rng.sample(talkers, min(4, len(talkers)))):
        x = set_level(speech(voice, rng, tmp, f"babble{k}"), -20)
        x = np.tile(x, n // max(1, len(x)) + 2)
        off = rng.randrange(len(x) - n) if len(x) > n else 0
        mix += x[off: off + n]
    return telephone_band(mix)


def make_clip(spec: dict) -> dict:
    """Render one clip described by ``spec`` (set, cls, index, seed, out) and return its manifest row."""
    cfg = SETS[spec["set"]]
    seed = spec["seed"]
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    cls = spec["cls"]
    voices = cfg["en_voices"] + cfg["cmn_voices"]
    voice = rng.choice(cfg["en_voices"] if rng.random() < 0.5 else cfg["cmn_voices"])
    row = dict(set=spec["set"], cls=cls, seed=seed)
    with tempfile.TemporaryDirectory(prefix="linecorpus") as tmpdir:
        tmp = Path(tmpdir)
        lead, tail = rng.uniform(0.2, 0.8), rng.uniform(0.3, 1.0)
        if cls == "silent":
            n = int(RATE * rng.uniform(3.0, 6.0))
            if rng.random() < 1 / 3:
                x = np.zeros(n)
                row.update(kind="digital zero")
            else:
                colour = rng.choice(cfg["comfort_colours"])
                level = rng.uniform(-72, -52)
                x = noise(colour, n, nrng) * 10 ** (level / 20)
                row.update(kind="comfort noise", colour=colour, level_dbfs=round(level, 1))
        else:
            reverb = None
            if cls == "speakerphone":
                r = cfg["reverb"]
                reverb = (rng.randint(*r["reverberance"]), rng.randint(*r["room"]), rng.random() < r["wet_only"])
            short = rng.random() < SHORT_SHARE
            s = speech(voice, rng, tmp, "talker", reverb, short=short)
            if short:  # a short answer somewhere in a 3-5 s listening window
                lead = rng.uniform(0.3, 2.0)
                tail = max(0.3, rng.uniform(3.0, 5.0) - lead - len(s) / RATE)
            level = {"clear": (-26, -16), "quiet": (-52, -42), "noisy": (-28, -16),
                     "speakerphone": (-34, -24)}[cls]
            level = rng.uniform(*level)
            s = set_level(telephone_band(s), level)
            s = np.concatenate([np.zeros(int(lead * RATE)), s, np.zeros(int(tail * RATE))])
            if cls == "noisy":
                colour = rng.choice(cfg["noise_colours"])
                snr = rng.choice(cfg["snrs"])
            else:
                colour = rng.choice([c for c in cfg["noise_colours"] if c != "babble"])
                snr = {"clear": rng.uniform(32, 45), "quiet": rng.uniform(22, 32),
                       "speakerphone": rng.uniform(28, 40)}[cls]
            if colour == "babble":
                bg = babble(voices, voice, len(s), rng, tmp)
            else:
                bg = noise(colour, len(s), nrng)
            x = s + bg * 10 ** ((level - snr) / 20)
            row.update(voice=voice, short=short, level_dbfs=round(level, 1), colour=colour, snr_db=round(snr, 1))
            if reverb:
                row.update(reverberance=reverb[0], room_scale=reverb[1], wet_only=reverb[2])
        mix, ulaw = tmp / "mix.wav", tmp / "ulaw.wav"
        write_wav(mix, x)
        out = Path(spec["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        # the telephone channel: 300-3400 Hz band, G.711 mu-law at 8 kHz, back to 16-bit PCM
        sox(mix, "-r", RATE, "-e", "u-law", ulaw, "sinc", "300-3400")
        sox(ulaw, "-e", "signed-integer", "-b", 16, out)
    row["path"] = str(out)
    return row


def plan(out: Path, counts: dict[str, int]) -> list[dict]:
    specs = []
    for set_name, per_class in counts.items():
        base = SETS[set_name]["seed_base"]
        for c, cls in enumerate(CLASSES):
            for i in range(per_class):
                seed = base + c * 10_000 + i
                specs.append(dict(set=set_name, cls=cls, seed=seed,
                                  out=str(out / set_name / cls / f"{cls}-{seed}.wav")))
    return specs


def generate(out: Path, counts: dict[str, int], jobs: int | None = None) -> list[dict]:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"line_corpus: {tool} is not installed (apt-get install espeak-ng sox)")
    out.mkdir(parents=True, exist_ok=True)
    specs = plan(out, counts)
    with multiprocessing.Pool(jobs or os.cpu_count() or 2) as pool:
        rows = pool.map(make_clip, specs, chunksize=2)
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows


def load_manifest(out: Path, set_name: str | None = None) -> list[dict]:
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if set_name is None or r["set"] == set_name]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(HERE / "corpus"))
    ap.add_argument("--small", action="store_true", help="8 test clips per class (CI)")
    ap.add_argument("--sets", default="tune,test")
    ap.add_argument("--jobs", type=int)
    args = ap.parse_args(argv)
    counts = SMALL_COUNTS if args.small else {s: COUNTS[s] for s in args.sets.split(",")}
    t0 = time.monotonic()
    rows = generate(Path(args.out), counts, args.jobs)
    print(f"wrote {len(rows)} clips to {args.out} in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
