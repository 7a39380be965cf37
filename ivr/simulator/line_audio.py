"""The simulated caller's audio (issue 11): speech synthesised with espeak-ng and shaped with sox
into a telephone line of a given kind, as bench/line_corpus.py makes the analyser's corpus.

- ``clear``: speech at about -20 dBFS active level, a faint hiss 38 dB below;
- ``quiet``: the same speech at about -47 dBFS (a weak handset, a far mouth);
- ``noisy``: speech at about -22 dBFS in telephone-band noise 4 dB below it;
- ``speakerphone``: speech through sox ``reverb`` (a room) at about -29 dBFS, hiss 34 dB below;
- ``silent``: nothing: digital zero.

Everything is 8 kHz 16-bit mono, band-limited to 300-3400 Hz and round-tripped through G.711
μ-law: what a Twilio Media Stream carries. Deterministic: the noise is seeded by the text.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

from ivr.media.analyser import ulaw_decode, ulaw_encode

RATE = 8000
LINES = ("clear", "quiet", "noisy", "speakerphone", "silent")
SPEECH_DBFS = {"clear": -20.0, "quiet": -47.0, "noisy": -22.0, "speakerphone": -29.0}
NOISE_BELOW_DB = {"clear": 38.0, "quiet": 28.0, "noisy": 4.0, "speakerphone": 34.0}


class AudioUnavailable(Exception):
    """espeak-ng or sox is missing, or a file cannot be read as audio."""


def tools_missing() -> list[str]:
    return [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]


def _run(*args) -> None:
    try:
        subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=60)
    except FileNotFoundError as exc:
        raise AudioUnavailable(f"{args[0]} is not installed (apt-get install espeak-ng sox)") from exc
    except subprocess.CalledProcessError as exc:
        raise AudioUnavailable(f"{args[0]} failed: {exc.stderr.decode(errors='replace').strip()[:200]}") from exc


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768.0


def _band(y: np.ndarray) -> np.ndarray:
    if y.size < 2:
        return y
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(len(y), 1 / RATE)
    spec[(f < 300) | (f > 3400)] = 0
    return np.fft.irfft(spec, len(y))


def active_level_db(x: np.ndarray) -> float:
    """Power of the 20 ms frames within 30 dB of the loudest (a simple active speech level)."""
    n = len(x) // 160
    if n == 0:
        return -100.0
    p = (x[: n * 160].reshape(n, 160) ** 2).mean(axis=1) + 1e-12
    db = 10 * np.log10(p)
    return float(10 * np.log10(p[db > db.max() - 30].mean()))


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:4], "big")


def _noise(n: int, seed: int) -> np.ndarray:
    y = _band(np.random.default_rng(seed).standard_normal(n))
    return y / (np.sqrt((y ** 2).mean()) + 1e-12) if n else y


def _telephone(x: np.ndarray) -> np.ndarray:
    """float -> int16 through G.711 μ-law (the channel)."""
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    return ulaw_decode(ulaw_encode(pcm))


def voice_for(text: str) -> str:
    return "cmn" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en-us"


@lru_cache(maxsize=64)
def _speech(text: str, reverb: bool) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="ivrsay") as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "8k.wav"
        _run("espeak-ng", "-v", voice_for(text), "-s", 160, "-w", raw, text)
        effects = ["rate", RATE]
        if reverb:
            effects = ["pad", 0, 0.8, "reverb", 80, 50, 90, 100, 20] + effects
        _run("sox", "-q", "-D", raw, "-c", 1, out, *effects)
        return _read(out)


def speech(text: str, line: str) -> np.ndarray:
    """The caller saying ``text`` on a line of kind ``line``: int16 samples at 8 kHz."""
    if line not in LINES:
        raise ValueError(f"a line is one of {', '.join(LINES)} (got '{line}')")
    if line == "silent" or not text.strip():
        return np.zeros(int(RATE * 1.5), dtype=np.int16)
    missing = tools_missing()
    if missing:
        raise AudioUnavailable(f"{' and '.join(missing)} not installed: the simulator cannot make the caller's "
                               f"audio (apt-get install espeak-ng sox)")
    s = _band(_speech(text, line == "speakerphone"))
    s = s * 10 ** ((SPEECH_DBFS[line] - active_level_db(s)) / 20)
    s = np.concatenate([np.zeros(int(0.2 * RATE)), s, np.zeros(int(0.3 * RATE))])
    x = s + _noise(len(s), _seed(text, line)) * 10 ** ((SPEECH_DBFS[line] - NOISE_BELOW_DB[line]) / 20)
    return _telephone(x)


def background(line: str, seconds: float, seed: int = 0) -> np.ndarray:
    """What the line carries while the caller says nothing."""
    n = max(0, int(round(seconds * RATE)))
    if line == "silent" or n == 0:
        return np.zeros(n, dtype=np.int16)
    return _telephone(_noise(n, _seed("bg", line, seed, n)) * 10 ** ((SPEECH_DBFS[line] - NOISE_BELOW_DB[line]) / 20))


def read_audio(path: str | Path) -> np.ndarray:
    """Any WAV (or anything sox reads) as 8 kHz int16 mono; 8 kHz 16-bit mono WAVs need no sox."""
    path = Path(path)
    if not path.is_file():
        raise AudioUnavailable(f"no such audio file: {path}")
    try:
        with wave.open(str(path), "rb") as w:
            if w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2:
                return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()
    except (wave.Error, EOFError):
        pass
    with tempfile.TemporaryDirectory(prefix="ivrplay") as tmp:
        out = Path(tmp) / "8k.wav"
        _run("sox", "-q", "-D", path, "-c", 1, "-b", 16, "-e", "signed-integer", out, "rate", RATE)
        return (_read(out) * 32768).astype(np.int16)
