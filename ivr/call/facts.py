"""The call log's vocabulary: what happened on a call, as typed facts any adapter can write.

A fact is platform-neutral (no Twilio parameter names): the engine and the call
session write them; the scorecard and replay read them back with `parse`.

The JSON form keeps one `fact` name per event (`hold_started`, `check_in`, ...),
exactly as logs written before this vocabulary existed, so calls already in a
store stay readable. Fields that are None are left out to keep the log small.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from typing import ClassVar


@dataclass(frozen=True)
class Fact:
    names: ClassVar[dict[str, str]] = {}  # value of `what` -> the fact's JSON name; {} = one name

    def to_dict(self) -> dict:
        out = {"fact": self.json_name}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @property
    def json_name(self) -> str:
        return self.names[getattr(self, "what")] if self.names else _snake(type(self).__name__)


@lru_cache(maxsize=None)
def _field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name != "what")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


# --- the call as a whole -----------------------------------------------------------

@dataclass(frozen=True)
class CallStarted(Fact):
    flow: str
    version: str


@dataclass(frozen=True)
class Greeted(Fact):
    text: str  # the first words the caller heard (E1)


@dataclass(frozen=True)
class CallEnded(Fact):
    status: str  # our words: completed | busy | no_answer | failed | canceled
    duration: float = 0.0


@dataclass(frozen=True)
class HungUp(Fact):
    by: str  # caller | engine
    after_goodbye: bool
    step: str | None = None
    ladder: str | None = None


@dataclass(frozen=True)
class Dropped(Fact):
    """The caller hung up in the middle of being served (E12)."""

    step: str
    during: str  # hold | transfer
    caller: str = ""


@dataclass(frozen=True)
class Fallback(Fact):
    """Something broke on our side: the caller heard the apology and the flow's fallback."""

    to: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Lost(Fact):
    """No webhook for longer than any step lasts: closed by the reconciler (the status callback never came)."""

    idle_seconds: float


# --- listening -----------------------------------------------------------------------

@dataclass(frozen=True)
class Listening(Fact):
    """A step of a listening ladder (E2, E3, E5, E6): a miss, the retry said, the final words, or the
    caller resuming the call in the last window after them."""

    names: ClassVar = {"miss": "miss", "retry": "retry", "final": "final_words", "resumed": "resumed"}
    what: str
    ladder: str
    step: str | None = None
    count: int | None = None


@dataclass(frozen=True)
class LineHeard(Fact):
    """What the caller's audio said about the line over a listening window (issue 11), and the ladder
    it chose (None: the audio chose nothing; the answer was understood, or the words decided)."""

    condition: str  # silent | quiet | noisy | speakerphone | clear
    ladder: str | None = None
    step: str | None = None
    figures: dict | None = None


@dataclass(frozen=True)
class Chose(Fact):
    """The caller chose something: a menu option, consent, one of the offers, or a repeat."""

    names: ClassVar = {"option": "chose", "consent": "consent", "offer": "offer_taken",
                       "repeat_menu": "menu_repeated", "repeat_louder": "repeated_louder"}
    what: str
    step: str | None = None
    go: str | None = None  # option: where it leads
    about: str | None = None  # consent: hold | transfer
    given: bool | None = None  # consent
    offer: str | None = None  # offer: call_back | message | keep_waiting | try_again


@dataclass(frozen=True)
class LookedUp(Fact):
    names: ClassVar = {"caller": "caller_lookup"}
    what: str
    known: bool


# --- holds, transfers, recordings, endings ---------------------------------------------

@dataclass(frozen=True)
class Hold(Fact):
    names: ClassVar = {"started": "hold_started", "check_in": "check_in", "ended": "hold_ended",
                       "returned": "hold_returned"}
    what: str
    step: str | None = None
    promised: float | None = None
    waited: float | None = None
    result: str | None = None  # served | limit | error
    breach: bool | None = None
    queue_time: float | None = None
    delivery: str | None = None  # check_in: the platform's id of the request (a retry has the same id)


@dataclass(frozen=True)
class Transfer(Fact):
    names: ClassVar = {"started": "transfer_started", "accepted": "agent_accepted", "ended": "transfer_ended"}
    what: str
    step: str | None = None
    to: str | None = None
    ring_limit: float | None = None
    outcome: str | None = None  # connected | declined | no_answer | busy | failed
    agent_call: str | None = None


@dataclass(frozen=True)
class Recording(Fact):
    names: ClassVar = {"kept": "recorded", "empty": "nothing_recorded"}
    what: str
    step: str | None = None
    url: str | None = None
    seconds: float | None = None
    hung_up: bool | None = None


@dataclass(frozen=True)
class CallBackRequested(Fact):
    caller: str = ""


@dataclass(frozen=True)
class Goodbye(Fact):
    pass


FACTS = (CallStarted, Greeted, CallEnded, HungUp, Dropped, Fallback, Lost, Listening, LineHeard, Chose, LookedUp, Hold,
         Transfer, Recording, CallBackRequested, Goodbye)
_BY_NAME: dict[str, tuple[type, str | None]] = {}
for _cls in FACTS:
    if _cls.names:
        _BY_NAME.update({json_name: (_cls, what) for what, json_name in _cls.names.items()})
    else:
        _BY_NAME[_snake(_cls.__name__)] = (_cls, None)


def parse(entry: dict) -> Fact | None:
    """A logged fact back as its dataclass (None for request/response entries and unknown names)."""
    found = _BY_NAME.get(entry.get("fact", "")) if isinstance(entry, dict) else None
    if found is None:
        return None
    cls, what = found
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in entry.items() if k in known}
    if what is not None:
        values["what"] = what
    try:
        return cls(**values)
    except TypeError:  # a required field missing in a hand-edited or truncated log
        return None
