"""Built-in hold music: a soft arpeggio of exactly the requested length.

Hold music must end when the next check-in is due (E9: at least every 30 s),
so the wait URL asks for a clip of the right length rather than a track of
unknown length.
"""
from __future__ import annotations

import io
import math
import struct
import wave
from functools import lru_cache

RATE = 8000
NOTES = (261.63, 329.63, 392.00, 523.25, 392.00, 329.63)  # C major, up and down


@lru_cache(maxsize=64)
def hold_music_wav(seconds: int) -> bytes:
    seconds = max(1, min(int(seconds), 300))
    frames = bytearray()
    note_len = RATE // 2
    for i in range(seconds * RATE):
        freq = NOTES[(i // note_len) % len(NOTES)]
        pos = (i % note_len) / note_len
        envelope = min(1.0, pos * 20) * (1 - pos) ** 2  # soft attack, gentle decay
        frames += struct.pack("<h", int(6000 * envelope * math.sin(2 * math.pi * freq * i / RATE)))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(bytes(frames))
    return out.getvalue()


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnframes() / wav.getframerate()
