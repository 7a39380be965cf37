"""Perceive the line from the caller's audio (issue 11): silent, quiet, noisy, speakerphone or clear.

The etiquette rules script each kind of bad line differently (``../shared/ETIQUETTE.md``:
E2 silent, E3 quiet, E4 speakerphone, E5 noisy). :class:`LineAnalyser` tells them apart
from the audio itself, fed 20 ms frames of 8 kHz 16-bit mono PCM (what a Twilio Media
Stream carries once its μ-law is decoded with :func:`ulaw_decode`).

Per frame (cheap: one numpy reduction and one webrtcvad call) it keeps only a few
numbers: the energy of four 5 ms blocks, the VAD decision, whether the frame is digital
zero, and the frame's timestamp. They live in a ring of fixed size (``max_seconds``), so
memory is bounded however long the call. :meth:`LineAnalyser.verdict` computes the
figures for the window so far (or since a timestamp) from those numbers:

- ``speech_dbfs``: active speech level, the power mean of the frames the VAD calls voiced
  that stand at least 6 dB above the noise floor (an approximation of ITU-T P.56 active
  level), in dBFS (RMS relative to full scale, 32768; a full-scale sine is -3 dBFS);
- ``noise_dbfs``: noise floor, the 10th percentile of the 20 ms frame energies;
- ``snr_db``: speech level minus noise floor;
- ``reverb_s``: a blind reverberation index, in seconds on an RT60-like scale (60 dB times
  how long the energy takes to fall after speech, divided by the fall): a handset in a
  dry room falls 20 dB within 10-30 ms at the end of syllables (index well under 0.5 s);
  a speakerphone's room reverberation cannot fall faster than the room decays (index
  above 1 s). It is not a calibrated RT60 measurement: use it as a threshold feature;
- ``voiced_ratio``: share of frames the VAD calls speech;
- ``digital_silence``: share of frames that are exactly zero (a muted or DTX line) as
  opposed to comfort noise (a low, steady hiss with no speech).

The verdict applies :class:`Thresholds` in a fixed order (silent, noisy, speakerphone,
quiet, clear). The thresholds live in ``line_thresholds.yaml`` beside this module; they
are written by ``bench/bench_line.py --tune`` from the corpus's TUNING set only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import webrtcvad
import yaml

RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000  # 160
BLOCKS_PER_FRAME = 4  # 5 ms energy blocks, for the decay (reverberation) estimate
FLOOR_DB = -100.0  # energies below this (digital zero) are clamped here
CONDITIONS = ("silent", "quiet", "noisy", "speakerphone", "clear")
THRESHOLDS_FILE = Path(__file__).with_name("line_thresholds.yaml")


def _ulaw_table() -> np.ndarray:
    """G.711 μ-law byte -> 16-bit linear sample (the same values the removed audioop gave)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign, -magnitude, magnitude).astype(np.int16)


ULAW_TO_PCM = _ulaw_table()


def ulaw_decode(data: bytes) -> np.ndarray:
    """μ-law bytes (Twilio's ``audio/x-mulaw``) -> int16 samples, via a 256-entry lookup table."""
    return ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples -> μ-law bytes (G.711 on the top 14 bits, as audioop.lin2ulaw did)."""
    v = np.asarray(samples, dtype=np.int32) >> 2
    neg = v < 0
    mag = np.minimum(np.where(neg, -v, v), 8159) + 33
    seg = np.clip(np.floor(np.log2(mag)).astype(np.int32) - 5, 0, 7)
    uval = np.where(mag > 0x1FFF, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))  # full scale
    return (uval ^ np.where(neg, 0x7F, 0xFF)).astype(np.uint8).tobytes()


@dataclass(frozen=True)
class Thresholds:
    """Every number the verdict depends on, in one place (loaded from line_thresholds.yaml)."""

    silent_max_voiced_ratio: float = 0.08   # fewer voiced frames than this: nobody is talking
    silent_max_speech_dbfs: float = -58.0   # or what is "voiced" is this faint: comfort noise
    silent_min_dynamics_db: float = 12.0    # or the level barely moves (steady hiss, no syllables)
    noisy_max_snr_db: float = 15.0          # speech stands less than this above the floor
    speaker_min_reverb_s: float = 1.0         # energy decays at least this slowly after speech
    quiet_max_speech_dbfs: float = -36.0    # active speech level below this: too quiet
    vad_mode: int = 2                       # webrtcvad aggressiveness 0..3

    @classmethod
    def load(cls, path: Path | str = THRESHOLDS_FILE) -> "Thresholds":
        path = Path(path)
        if not path.exists():
            return cls()
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path | str = THRESHOLDS_FILE, comment: str = "") -> None:
        head = "".join(f"# {line}\n" for line in comment.splitlines())
        Path(path).write_text(head + yaml.safe_dump(asdict(self), sort_keys=False), encoding="utf-8")


@dataclass(frozen=True)
class LineReport:
    """The verdict for one listening window and the figures behind it."""

    condition: str            # silent | quiet | noisy | speakerphone | clear
    reason: str               # which threshold decided, in words
    seconds: float            # audio in the window
    speech_dbfs: float        # active speech level
    noise_dbfs: float         # noise floor (10th percentile of 20 ms frame energies)
    snr_db: float
    reverb_s: float           # blind reverberation index (see module doc)
    dynamics_db: float        # spread of block energies (95th - 10th percentile)
    voiced_ratio: float       # share of frames webrtcvad calls speech
    digital_silence: float    # share of frames that are exact digital zero

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _db(power: np.ndarray | float) -> np.ndarray | float:
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-12)), FLOOR_DB)


class LineAnalyser:
    """Incremental line analysis of one call's inbound audio.

    ``feed(pcm, t_ms=None)`` accepts int16 samples (any length; buffered into 20 ms frames);
    ``feed_frame`` one 20 ms frame; ``verdict(since_ms=None)`` the window so far.
    ``reset()`` starts a new window. Memory: ``max_seconds`` of per-frame figures (no audio).
    """

    def __init__(self, thresholds: Thresholds | None = None, max_seconds: float = 30.0):
        self.thresholds = thresholds or Thresholds.load()
        self._vad = webrtcvad.Vad(int(self.thresholds.vad_mode))
        self.capacity = max(1, int(max_seconds * 1000 / FRAME_MS))
        self._energy = np.zeros((self.capacity, BLOCKS_PER_FRAME), dtype=np.float32)
        self._voiced = np.zeros(self.capacity, dtype=bool)
        self._zero = np.zeros(self.capacity, dtype=bool)
        self._t_ms = np.zeros(self.capacity, dtype=np.int64)
        self._pending = np.zeros(0, dtype=np.int16)
        self.reset()

    def reset(self) -> None:
        self._count = 0           # frames ever fed since reset (ring index = count % capacity)
        self._next_t = 0
        self._pending = np.zeros(0, dtype=np.int16)

    @property
    def frames(self) -> int:
        return min(self._count, self.capacity)

    def feed(self, pcm: np.ndarray, t_ms: int | None = None) -> None:
        """Any number of int16 samples; whole 20 ms frames are analysed, the rest kept."""
        pcm = np.asarray(pcm, dtype=np.int16)
        if self._pending.size:
            pcm = np.concatenate([self._pending, pcm])
        if t_ms is not None:
            self._next_t = int(t_ms) - (self._pending.size * 1000) // RATE
        whole = pcm.size - pcm.size % FRAME_SAMPLES
        for start in range(0, whole, FRAME_SAMPLES):
            self.feed_frame(pcm[start:start + FRAME_SAMPLES])
        self._pending = pcm[whole:].copy()

    def feed_frame(self, frame: np.ndarray, t_ms: int | None = None) -> None:
        """One 20 ms frame (160 int16 samples)."""
        frame = np.asarray(frame, dtype=np.int16)
        if frame.size != FRAME_SAMPLES:
            raise ValueError(f"a frame is {FRAME_SAMPLES} samples (20 ms at 8 kHz), got {frame.size}")
        i = self._count % self.capacity
        x = frame.astype(np.float32) * (1.0 / 32768.0)
        self._energy[i] = np.einsum("ij,ij->i", x.reshape(BLOCKS_PER_FRAME, -1),
                                    x.reshape(BLOCKS_PER_FRAME, -1)) / (FRAME_SAMPLES // BLOCKS_PER_FRAME)
        zero = not frame.any()
        self._zero[i] = zero
        self._voiced[i] = False if zero else self._vad.is_speech(frame.tobytes(), RATE)
        self._t_ms[i] = self._next_t if t_ms is None else int(t_ms)
        self._next_t = int(self._t_ms[i]) + FRAME_MS
        self._count += 1

    def _window(self, since_ms: int | None):
        n = self.frames
        order = (np.arange(self._count - n, self._count) % self.capacity) if n else np.zeros(0, dtype=int)
        if since_ms is not None and n:
            order = order[self._t_ms[order] >= since_ms]
        return self._energy[order], self._voiced[order], self._zero[order]

    def verdict(self, since_ms: int | None = None) -> LineReport:
        """The condition of the line over the window so far (or the frames at/after ``since_ms``)."""
        energy, voiced, zero = self._window(since_ms)
        return classify(features(energy, voiced, zero), self.thresholds)


def features(energy: np.ndarray, voiced: np.ndarray, zero: np.ndarray) -> dict:
    """The window's figures from per-frame block energies, VAD flags and zero flags."""
    n = len(voiced)
    if n == 0:
        return dict(seconds=0.0, speech_dbfs=FLOOR_DB, noise_dbfs=FLOOR_DB, snr_db=0.0, reverb_s=0.0,
                    dynamics_db=0.0, voiced_ratio=0.0, digital_silence=0.0)
    blocks = _db(energy.reshape(-1).astype(np.float64))
    frame_db = _db(energy.mean(axis=1).astype(np.float64))
    noise = float(np.percentile(frame_db, 10))
    high = float(np.percentile(frame_db, 95))
    active = voiced & (frame_db > noise + 6.0)
    if active.any():
        speech = float(_db(energy[active].mean()))
    else:
        speech = float(np.percentile(frame_db, 95))
    reverb = _reverb_index(blocks, speech, noise)
    return dict(seconds=n * FRAME_MS / 1000.0, speech_dbfs=speech, noise_dbfs=noise, snr_db=speech - noise,
                reverb_s=reverb, dynamics_db=high - noise, voiced_ratio=float(voiced.mean()),
                digital_silence=float(zero.mean()))


def _reverb_index(blocks: np.ndarray, speech: float, noise: float, horizon: int = 80) -> float:
    """Blind reverberation estimate from the 5 ms block envelope.

    From every loud block (within 10 dB of the speech level) measure how long the energy
    takes to fall ``drop`` dB (20 dB, less when the floor leaves less headroom), looking at
    most ``horizon`` blocks (400 ms) ahead. Dry speech falls that far within 10-30 ms at the
    end of many syllables; in a reverberant room no fall is faster than the room's decay
    (60 dB per RT60). The 30th percentile of the fall times (the faster falls) gives the
    index 60 dB * time / drop, capped at 2 s. Zero when there is too little speech.
    """
    drop = min(20.0, (speech - noise) - 6.0)
    if blocks.size <= horizon + 1 or drop < 8.0:
        return 0.0
    start = blocks[:-horizon]
    loud = np.flatnonzero((start > speech - 10.0) & (start >= blocks[1:start.size + 1]))
    if loud.size < 5:
        return 0.0
    ahead = np.lib.stride_tricks.sliding_window_view(blocks[1:], horizon)[loud]
    fell = ahead <= (start[loud] - drop)[:, None]
    steps = np.where(fell.any(axis=1), fell.argmax(axis=1) + 1, horizon * 2)
    seconds = float(np.percentile(steps, 30)) * 0.005
    return float(min(2.0, 60.0 * seconds / drop))


def classify(f: dict, t: Thresholds) -> LineReport:
    """Apply the thresholds in order: silent, noisy, speakerphone, quiet, clear."""
    if f["voiced_ratio"] < t.silent_max_voiced_ratio:
        cond, why = "silent", f"voiced {f['voiced_ratio']:.2f} < {t.silent_max_voiced_ratio}"
    elif f["speech_dbfs"] < t.silent_max_speech_dbfs:
        cond, why = "silent", f"speech {f['speech_dbfs']:.1f} dBFS < {t.silent_max_speech_dbfs}"
    elif f["dynamics_db"] < t.silent_min_dynamics_db:
        cond, why = "silent", f"level steady ({f['dynamics_db']:.1f} dB < {t.silent_min_dynamics_db}): no syllables"
    elif f["snr_db"] < t.noisy_max_snr_db:
        cond, why = "noisy", f"SNR {f['snr_db']:.1f} dB < {t.noisy_max_snr_db}"
    elif f["reverb_s"] >= t.speaker_min_reverb_s:
        cond, why = "speakerphone", f"reverberant (decay index {f['reverb_s']:.2f} s >= {t.speaker_min_reverb_s})"
    elif f["speech_dbfs"] < t.quiet_max_speech_dbfs:
        cond, why = "quiet", f"speech {f['speech_dbfs']:.1f} dBFS < {t.quiet_max_speech_dbfs}"
    else:
        cond, why = "clear", "speech loud, dry and well above the noise"
    return LineReport(condition=cond, reason=why, **{k: float(v) for k, v in f.items()})


def analyse_pcm(pcm: np.ndarray, thresholds: Thresholds | None = None) -> LineReport:
    """Whole-recording verdict for 8 kHz int16 mono samples."""
    analyser = LineAnalyser(thresholds, max_seconds=max(1.0, len(pcm) / RATE + 1))
    analyser.feed(pcm)
    return analyser.verdict()
