"""What the caller hears from <Say> and <Play>, and how long it takes on the virtual clock."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from ivr.engine.speech import speech_seconds
from ivr.twilio.music import wav_seconds

# SSML rate keywords as fractions of the normal rate (Amazon Polly's steps, approximately)
RATE_WORDS = {"x-slow": 0.6, "slow": 0.8, "medium": 1.0, "fast": 1.25, "x-fast": 1.5}
LOUDER_VOLUMES = {"loud", "x-loud"}


def say_text(el: ET.Element) -> str:
    return "".join(el.itertext()).strip()


def say_rate(el: ET.Element) -> float:
    """The speaking rate of a <Say>: from <prosody rate="85%"> when present (E7's slower repeat)."""
    for prosody in el.iter("prosody"):
        rate = (prosody.get("rate") or "").strip()
        if rate.endswith("%"):
            try:
                return max(float(rate[:-1]) / 100, 0.2)
            except ValueError:
                continue
        if rate in RATE_WORDS:
            return RATE_WORDS[rate]
    return 1.0


def say_is_louder(el: ET.Element) -> bool:
    for prosody in el.iter("prosody"):
        volume = (prosody.get("volume") or "").strip()
        if volume in LOUDER_VOLUMES or volume.startswith("+"):
            return True
    return False


def say_seconds(el: ET.Element) -> float:
    return speech_seconds(say_text(el), say_rate(el))


def media_seconds(reply_body: bytes) -> float | None:
    """Length of a WAV file; None when it is not a WAV (the simulator cannot tell how long it plays)."""
    try:
        return wav_seconds(reply_body)
    except Exception:  # noqa: BLE001 - wave raises several kinds for non-WAV data
        return None


def loop_count(el: ET.Element) -> int:
    """Twilio's loop: how many times to play; 0 means until something else happens."""
    try:
        return max(int(el.get("loop", "1")), 0)
    except ValueError:
        return 1
