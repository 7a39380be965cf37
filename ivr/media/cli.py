"""`ivr line analyse FILE.wav [--format json]`: the line verdict and its figures for a recording.

Any WAV (PCM 8/16/24/32-bit, float, μ-law or A-law; any rate, any channels): mixed to mono
and resampled to 8 kHz in numpy, then fed to the analyser 20 ms at a time, as a call's
Media Stream would be. Not a WAV: a one-line error and exit 1.
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

from ivr.media.analyser import RATE, analyse_pcm, ULAW_TO_PCM


class NotWav(Exception):
    pass


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0)))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(float samples in [-1, 1], mono; sample rate). Reads the RIFF chunks itself, so that
    WAVE_FORMAT_EXTENSIBLE, float and G.711 files work too (the wave module refuses them)."""
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise NotWav("not a WAV file (no RIFF/WAVE header)")
    fmt = body = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunk = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = chunk
        elif cid == b"data":
            body = chunk
        pos += 8 + size + (size & 1)
    if fmt is None or body is None or len(fmt) < 16:
        raise NotWav("a WAV file without a fmt or data chunk")
    tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag is the GUID's head
        tag = struct.unpack("<H", fmt[24:26])[0]
    if channels < 1 or rate < 1000:
        raise NotWav(f"a WAV file with {channels} channel(s) at {rate} Hz")
    width = bits // 8
    usable = len(body) - len(body) % max(1, width * channels)
    raw = body[:usable]
    if tag == 1 and width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128) / 128
    elif tag == 1 and width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float64) / 32768
    elif tag == 1 and width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8) / 8388608.0
    elif tag == 1 and width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0
    elif tag == 3 and width in (4, 8):
        x = np.frombuffer(raw, "<f4" if width == 4 else "<f8").astype(np.float64)
    elif tag == 7 and width == 1:
        x = ULAW_TO_PCM[np.frombuffer(raw, np.uint8)].astype(np.float64) / 32768
    elif tag == 6 and width == 1:
        x = _alaw_table()[np.frombuffer(raw, np.uint8)].astype(np.float64) / 32768
    else:
        raise NotWav(f"unsupported WAV encoding (format tag {tag}, {bits} bits)")
    return x.reshape(-1, channels).mean(axis=1), rate


def to_8k(x: np.ndarray, rate: int) -> np.ndarray:
    """Resample to 8 kHz (FFT low-pass at 3.6 kHz, then linear interpolation) as int16."""
    if rate != RATE and x.size:
        if rate > RATE:  # band-limit before decimating
            spec = np.fft.rfft(x)
            spec[np.fft.rfftfreq(x.size, 1 / rate) > 3600] = 0
            x = np.fft.irfft(spec, x.size)
        n = int(round(x.size * RATE / rate))
        x = np.interp(np.arange(n) * (rate / RATE), np.arange(x.size), x)
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="line_command", required=True)
    p = sub.add_parser("analyse", aliases=["analyze"], help="verdict and figures for a recording (WAV)")
    p.add_argument("file", metavar="FILE.wav")
    p.add_argument("--format", choices=["text", "json"], default="text")


def run(args) -> int:
    path = Path(args.file)
    try:
        x, rate = read_wav(path)
    except FileNotFoundError:
        print(f"ivr line analyse: {path}: no such file", file=sys.stderr)
        return 1
    except (NotWav, OSError, ValueError) as exc:
        print(f"ivr line analyse: {path}: {exc}", file=sys.stderr)
        return 1
    report = analyse_pcm(to_8k(x, rate))
    if args.format == "json":
        print(json.dumps(dict(file=str(path), **report.to_dict()), ensure_ascii=False))
        return 0
    d = report.to_dict()
    print(f"{path}: {report.condition} ({report.reason})")
    print(f"  audio           {d['seconds']:.2f} s (from {rate} Hz)")
    print(f"  speech level    {d['speech_dbfs']:.1f} dBFS (active, voiced frames)")
    print(f"  noise floor     {d['noise_dbfs']:.1f} dBFS   SNR {d['snr_db']:.1f} dB")
    print(f"  reverberation   {d['reverb_s']:.2f} s (blind decay index)")
    print(f"  dynamics        {d['dynamics_db']:.1f} dB")
    print(f"  voiced          {d['voiced_ratio'] * 100:.0f}% of frames (webrtcvad)")
    print(f"  digital silence {d['digital_silence'] * 100:.0f}% of frames")
    return 0
