"""What happens on the caller's side, as the engine sees it: no platform types here."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Line:
    """What the caller's line sounded like over the listening window just heard (issue 11), from
    the audio itself: silent | quiet | noisy | speakerphone | clear, and the figures behind it."""

    condition: str
    figures: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Speech:
    """Words the caller said. `confidence` is the recogniser's estimate of its transcription's accuracy
    (0..1), or None when the platform did not say (Twilio may omit it): then only the words count.
    It says nothing about the caller's volume. `line` is the line's condition as measured from the
    audio (quiet, speakerphone, noisy...), None when nobody measured it: only that evidence may lead to
    the too-quiet (E3) or speakerphone (E4) words."""

    text: str
    confidence: float | None = None  # None: Twilio sent no Confidence (unknown, not zero)
    line: Line | None = None  # None: no audio for this window (transcription only)


@dataclass(frozen=True)
class Digits:
    digits: str
    line: Line | None = None


@dataclass(frozen=True)
class Silence:
    """The listening window closed with nothing said and no key pressed."""

    line: Line | None = None


@dataclass(frozen=True)
class HoldEnded:
    result: str  # served (someone took the caller) | limit (the promised limit) | failed
    waited: float = 0.0


@dataclass(frozen=True)
class TransferEnded:
    outcome: str  # connected (the agent accepted) | declined | no_answer | busy | failed


@dataclass(frozen=True)
class Recorded:
    url: str
    seconds: float


@dataclass(frozen=True)
class PauseOver:
    """The pause after a goodbye ran out and the caller is still on the line."""


@dataclass(frozen=True)
class CallerHungUp:
    recording: Recorded | None = None  # what they had recorded when they hung up (a complaint is still kept, E15)


Event = Speech | Digits | Silence | HoldEnded | TransferEnded | Recorded | PauseOver | CallerHungUp
