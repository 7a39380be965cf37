"""What a caller (or, in a transfer, the agent) does at each moment the fake Twilio asks.

Moments: `prompt` (a <Gather> is listening), `record` (a <Record> is recording), `hold`
(queued by <Enqueue>), `transfer` (a <Dial> rings an agent: how the agent behaves),
`pause` (a <Pause>: the caller may hang up) and `between` (after any other verb).
"""
from __future__ import annotations

from dataclasses import dataclass, field

PROMPT, RECORD, HOLD, TRANSFER, PAUSE, BETWEEN = "prompt", "record", "hold", "transfer", "pause", "between"


@dataclass(frozen=True)
class Moment:
    kind: str
    now: float
    timeout: float = 0.0  # prompt: listening window after the prompts; record: silence that ends it
    prompt_seconds: float = 0.0  # prompt: how long the nested prompts took (a barge-in must fall inside)
    number: str = ""  # transfer: who is rung
    queue: str = ""  # hold: the queue's name
    queue_time: float = 0.0
    details: dict = field(default_factory=dict)


# --- the caller ------------------------------------------------------------------

@dataclass(frozen=True)
class Press:
    keys: str
    after: float = 0.0  # seconds of silence after the prompts before the first key
    barge_in: float | None = None  # seconds into the prompts: cuts them off (Twilio stops the prompt)


@dataclass(frozen=True)
class Speak:
    text: str
    confidence: float | None = None  # None: Twilio sends no Confidence at all (it may omit it)
    after: float = 0.0
    barge_in: float | None = None
    line: str | None = None  # audio: speak on a line of this kind (synthesised: ivr.simulator.line_audio)
    audio: str | None = None  # audio: play this file as what the caller says (text = its transcription, or "")


@dataclass(frozen=True)
class Silence:
    """Nothing said, no key pressed, for the whole listening window."""


@dataclass(frozen=True)
class Wait:
    """The caller does nothing for this long, whatever comes (prompts time out, the hold goes on)."""

    seconds: float


@dataclass(frozen=True)
class HangUp:
    after: float = 0.0


@dataclass(frozen=True)
class StayOnHold:
    seconds: float | None = None  # stay this much longer, then decide again
    until: str = "end"  # without seconds: "end" (until the hold ends by itself) or "voice" (until the next words)


@dataclass(frozen=True)
class AgentTakes:
    """An agent takes the queued caller (<Dial><Queue url=...>) after `after` s, and talks `talk` s."""

    after: float = 0.0
    talk: float = 30.0
    url: str = "/twilio/hold/return"  # the <Queue url> of the agent's <Dial>: runs on the caller's end


@dataclass(frozen=True)
class RecordSpeech:
    seconds: float
    then: str | None = "#"  # a finish key, "hangup", or None (silence ends the recording)


# --- the agent, when a <Dial> rings them ------------------------------------------

@dataclass(frozen=True)
class AgentAnswers:
    ring: float = 5.0
    talk: float = 60.0
    press: str = "1"  # the key the whisper asks for


@dataclass(frozen=True)
class AgentDeclines:
    """The agent answers, hears the whisper and does not accept (silent, or another key)."""

    ring: float = 5.0
    press: str | None = None


@dataclass(frozen=True)
class NoAnswer:
    pass


@dataclass(frozen=True)
class Busy:
    pass


@dataclass(frozen=True)
class Failed:
    pass


class AbortCall(Exception):
    """The caller cannot go on (a script expected something else): the caller hangs up and says why."""
