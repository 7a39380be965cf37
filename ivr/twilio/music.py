"""Built-in hold music: a soft arpeggio, cut to the requested length.

Hold music must end when the next check-in is due (E9: at least every 30 s), so the
wait URL asks for a clip of the right length rather than a track of unknown length.

`/twilio/music` is unsigned (media caches and Twilio fetch it without a signature),
so anyone can ask it for any `seconds`: nothing here may cost more than a copy.
The music is one 3-second loop (6 notes of 0.5 s, 48 KB of PCM) rendered once per
process; a clip is a WAV header and that loop repeated, cut to whole seconds
clamped to 1..MAX_SECONDS *before* anything is cached. Finished clips are kept in
a small LRU bounded in bytes (CACHE_BYTES), so a worker's memory for music is
bounded whatever is asked. Clips never change for a given length: the route serves
them with an ETag and a long Cache-Control, so Twilio's media cache and any proxy
fetch each length once.
"""
from __future__ import annotations

import hashlib
import io
import math
import struct
import threading
import wave
from collections import OrderedDict
from functools import lru_cache

RATE = 8000
NOTES = (261.63, 329.63, 392.00, 523.25, 392.00, 329.63)  # C major, up and down
NOTE_FRAMES = RATE // 2
MAX_SECONDS = 30  # E9: the caller hears a voice at least every 30 s, so no clip is ever longer
CACHE_BYTES = 2 * 1024 * 1024  # all finished clips kept in one worker, in bytes


@lru_cache(maxsize=1)
def _loop() -> bytes:
    """One pass of the arpeggio (3 s of 16-bit PCM); each note fades to silence, so it loops without a click."""
    frames = bytearray()
    for i in range(len(NOTES) * NOTE_FRAMES):
        freq = NOTES[i // NOTE_FRAMES]
        pos = (i % NOTE_FRAMES) / NOTE_FRAMES
        envelope = min(1.0, pos * 20) * (1 - pos) ** 2  # soft attack, gentle decay
        frames += struct.pack("<h", int(6000 * envelope * math.sin(2 * math.pi * freq * i / RATE)))
    return bytes(frames)


def clamp(seconds) -> int:
    """The length actually served: a whole number of seconds in 1..MAX_SECONDS."""
    try:
        value = int(seconds)
    except (TypeError, ValueError, OverflowError):
        return MAX_SECONDS
    return max(1, min(value, MAX_SECONDS))


class _ByteBoundedCache:
    def __init__(self, limit: int):
        self.limit, self.size = limit, 0
        self._items: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: int) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: int, value: bytes) -> None:
        if len(value) > self.limit:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self.size += len(value)
            while self.size > self.limit:
                _, dropped = self._items.popitem(last=False)
                self.size -= len(dropped)


_cache = _ByteBoundedCache(CACHE_BYTES)


def hold_music_wav(seconds) -> bytes:
    """A WAV of the hold music lasting clamp(seconds) seconds."""
    seconds = clamp(seconds)
    clip = _cache.get(seconds)
    if clip is None:
        loop, size = _loop(), seconds * RATE * 2
        pcm = (loop * (size // len(loop) + 1))[:size]
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(pcm)
        clip = out.getvalue()
        _cache.put(seconds, clip)
    return clip


def etag(seconds) -> str:
    """Changes only when the music itself (or the length) changes."""
    return f"{hashlib.sha256(_loop()).hexdigest()[:16]}-{clamp(seconds)}"


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnframes() / wav.getframerate()
