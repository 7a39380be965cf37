"""What the engine asks the platform to do. A turn is a list of these that ends
with one that waits for the caller (Listen, Hold, Transfer, Record, Pause) or ends the call."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Say:
    text: str
    louder: bool = False  # E7: repeated louder and a little slower


@dataclass(frozen=True)
class Listen:
    timeout: float
    hints: tuple[str, ...] = ()
    num_digits: int | None = None


@dataclass(frozen=True)
class Pause:
    """Wait, then report PauseOver (the goodbye pause of E11: the caller hangs up first)."""

    seconds: float


@dataclass(frozen=True)
class Hold:
    queue: str
    limit: float


@dataclass(frozen=True)
class Play:
    """Hold music for a given time (only inside a hold)."""

    url: str | None
    seconds: float


@dataclass(frozen=True)
class LeaveHold:
    pass


@dataclass(frozen=True)
class Transfer:
    to: str  # +E.164, sip:user@host or client:identity
    ring_limit: float  # what the caller was promised: the longest they wait for an answer
    caller_id: str | None = None


@dataclass(frozen=True)
class Record:
    max_length: float
    finish_keys: str = "#"


@dataclass(frozen=True)
class Hangup:
    pass


Action = Say | Listen | Pause | Hold | Play | LeaveHold | Transfer | Record | Hangup


@dataclass
class Turn:
    """The engine's answer to one event: what to do, and what to note for the scorecard."""

    actions: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # typed facts (ivr.call.facts) for the call log

    def say(self, *texts: str, louder: bool = False) -> None:
        self.actions += [Say(t, louder) for t in texts if t]

    def note(self, fact) -> None:
        self.notes.append(fact)

    @property
    def waits_with(self):
        return self.actions[-1] if self.actions else None
