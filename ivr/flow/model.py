"""The typed model of a call flow, and the JSON Schema editors get from it.

Durations are written the way people say them ("5s", "1m", "1m30s"); a bare
number means seconds. Step names are the keys under `steps:`; every `next`,
`go` and `if_...` names another step.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)\s*s(?:ec)?)?\s*$")


def parse_duration(value) -> float:
    if isinstance(value, bool):
        raise ValueError("a duration, like 5s, 30s or 1m, is expected here")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise ValueError(f"'{value}' is not a duration; write it like 5s, 30s, 1m or 1m30s")
        minutes, secs = match.groups()
        seconds = float(minutes or 0) * 60 + float(secs or 0)
    if seconds < 0 or seconds > 4 * 3600:
        raise ValueError(f"{seconds:g} s is out of range; a duration is between 0s and 4h")
    return seconds


# What editors see: a duration is a number of seconds or text like "1m30s"; keys may be written bare (1) or quoted ("*").
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema({
    "anyOf": [{"type": "number", "minimum": 0},
              {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*m(in)?)?\s*(\d+(\.\d+)?\s*s(ec)?)?\s*$"}],
    "examples": ["5s", "30s", "1m"]})]
KEYS_PATTERN = r"^[0-9*#]{1,4}$"
Keys = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
                 Field(pattern=KEYS_PATTERN),
                 WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0, "maximum": 9999},
                                           {"type": "string", "pattern": KEYS_PATTERN}]})]
StepName = Annotated[str, Field(min_length=1)]
Text = Annotated[str, Field(min_length=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- etiquette settings: flow-wide defaults, overridable per step -----------

class Ladder(Strict):
    """What is said on each miss of one kind, then the last words and window (E2, E3, E5, E6)."""

    retries: list[Text] = Field(default_factory=list, description="said on the 1st, 2nd... miss")
    final: Text | None = Field(None, description="last words before hanging up (they say goodbye)")
    final_listen: Duration = Field(5, description="still listening after the last words (E2 step 4)")
    then: StepName | None = Field(None, description="instead of hanging up, go to this step")


class SilenceLadder(Ladder):
    listen: Duration = Field(5, description="how long to listen after each prompt (E2)")


class ConfidenceLadder(Ladder):
    below: float = Field(0.5, ge=0, le=1, description="speech confidence under this is a miss")


class RepeatLouder(Strict):
    """E7: the caller cannot hear us."""

    keys: Keys = "*"
    words: list[Text] = Field(default_factory=list)
    apology: Text = "Sorry."
    rate: str = "85%"
    volume: str = "loud"


class Consent(Strict):
    yes_keys: Keys = "1"
    no_keys: Keys = "2"
    yes_words: list[Text] = Field(default_factory=list)
    no_words: list[Text] = Field(default_factory=list)
    hint: Text | None = None


class Goodbye(Strict):
    say: Text = "Thank you for calling. Goodbye."
    wait: Duration = Field(3, description="pause so the caller hangs up first (E11)")


class HoldDefaults(Strict):
    start: Text = "Thank you. One moment, please."
    check_in_every: Duration = 30
    check_in: Text = "Thank you for your patience; we are working on it."
    returning: Text = "Thank you for waiting."
    at_limit: Text = ("Thank you for waiting. To keep waiting, press 1. For a call back, press 2. "
                      "To leave a message, press 3.")
    declined: Text = "No problem. To have us call you back, press 2. To leave a message, press 3."
    music: str | None = Field(None, description="URL of hold music; default is the built-in tone")


class TransferDefaults(Strict):
    ring_limit: Duration = 30
    unanswered: Text = ("We are very sorry, nobody is free to take your call right now. To try again, "
                        "press 1. To leave a message, press 2. For a call back, press 3.")
    unanswered_apology: Text = "We are very sorry, nobody is free to take your call right now."
    whisper_accept: Text = "Press 1 to accept this call."
    connecting: Text = "Connecting you now. Please hold the line."


class Etiquette(Strict):
    silence: SilenceLadder = SilenceLadder()
    quiet: ConfidenceLadder = ConfidenceLadder(below=0.2)
    noisy: ConfidenceLadder = ConfidenceLadder(below=0.5)
    not_understood: Ladder = Ladder()
    repeat_louder: RepeatLouder = RepeatLouder()
    menu_repeat_keys: Keys = "9"
    consent: Consent = Consent()
    goodbye: Goodbye = Goodbye()
    hold: HoldDefaults = HoldDefaults()
    transfer: TransferDefaults = TransferDefaults()
    apology: Text = "We are sorry, something went wrong on our side."


# --- steps -------------------------------------------------------------------

class Option(Strict):
    keys: Keys | None = Field(None, description="DTMF key(s) that choose this option")
    words: list[Text] = Field(default_factory=list, description="spoken keywords that choose it")
    go: StepName

    @model_validator(mode="after")
    def _has_a_trigger(self):
        if not self.keys and not self.words:
            raise ValueError("an option needs keys, words or both")
        return self


class Menu(Strict):
    prompt: Text
    options: list[Option] = Field(min_length=1)


class Hold(Strict):
    reason: Text | None = Field(None, description="why the caller must wait, and for how long (E9)")
    ask: Text | None = Field(None, description="the consent question (E9)")
    limit: Duration | None = Field(None, description="the promised longest wait (E9)")
    queue: str = "hold"
    check_in_every: Duration | None = None
    check_in: Text | None = None
    music: str | None = None
    if_declined: StepName | None = None
    if_limit: StepName | None = Field(
        None, description="at the limit, after 'thank you for waiting', go here instead of the built-in choice")


class Transfer(Strict):
    to: Annotated[str, Field(pattern=r"^\+?[0-9]{3,15}$")]
    reason: Text | None = Field(None, description="why the transfer is needed (E10)")
    ask: Text | None = Field(None, description="the consent question (E10)")
    ring_limit: Duration | None = None
    whisper: Text | None = Field(None, description="what the agent hears before accepting")
    if_declined: StepName | None = None
    if_unanswered: StepName | None = Field(
        None, description="after the apology, go here instead of offering try again / message / call back")


class Record(Strict):
    empathy: Text | None = Field(None, description="E15: said first, e.g. 我非常理解您现在的心情")
    prompt: Text
    max_length: Duration = 120
    finish_keys: Keys = "#"
    reply_promise: Text | None = Field(None, description="when the caller will hear back (E15)")


class Lookup(Strict):
    directory: str = Field(description="YAML file next to the flow: phone number -> fields")
    key: Literal["caller"] = "caller"
    set: dict[str, str] = Field(description="variable name -> field of the directory entry")


class Branch(Strict):
    variable: str
    cases: dict[str, StepName] = Field(default_factory=dict)
    otherwise: StepName


class CallBack(Strict):
    say: Text


STEP_KINDS = ("say", "menu", "hold", "transfer", "record", "lookup", "set", "branch", "callback", "goodbye")


class Step(Strict):
    say: Text | None = None
    menu: Menu | None = None
    hold: Hold | None = None
    transfer: Transfer | None = None
    record: Record | None = None
    lookup: Lookup | None = None
    set: dict[str, str] | None = None
    branch: Branch | None = None
    callback: CallBack | None = None
    goodbye: str | None = Field(None, description="goodbye words; left empty, the flow's goodbye")
    next: StepName | None = Field(None, description="the step after this one")
    etiquette: Etiquette | None = Field(None, description="overrides of the flow's etiquette for this step")

    @model_validator(mode="after")
    def _exactly_one_kind(self):
        kinds = [k for k in STEP_KINDS if k in self.model_fields_set]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            raise ValueError(f"a step does exactly one thing: one of {', '.join(STEP_KINDS)} (found: {found})")
        needs_next = kinds[0] in ("say", "lookup", "set", "hold", "transfer", "record", "callback")
        if needs_next and not self.next:
            raise ValueError(f"a '{kinds[0]}' step needs 'next:' naming the step that follows")
        if not needs_next and self.next:
            raise ValueError(f"a '{kinds[0]}' step chooses its own way on; remove 'next:'")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if k in self.model_fields_set)


class Offers(Strict):
    """Where the engine sends a caller who chooses a call back or a message (E9, E10)."""

    call_back: StepName
    leave_message: StepName


class Fallback(Strict):
    """What a caller hears when something breaks on our side."""

    say: Text | None = None
    transfer_to: Annotated[str, Field(pattern=r"^\+?[0-9]{3,15}$")] | None = None


class Flow(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    version: str = Field("1", description="bumped by ops on every edit; calls pin the exact text anyway")
    language: Literal["cmn-CN", "en-US"]
    voice: str | None = Field(None, description="Twilio voice, e.g. Polly.Zhiyu-Neural")
    speech_language: str | None = Field(None, description="speech recognition language, e.g. cmn-Hans-CN")
    numbers: list[Annotated[str, Field(pattern=r"^\+?[0-9]{3,15}$")]] = Field(
        default_factory=list, description="called numbers this flow answers (ivr serve --flows-dir)")
    variables: dict[str, str] = Field(default_factory=dict)
    jargon: list[Text] = Field(default_factory=list, description="words callers should not hear (E13)")
    start: StepName
    offers: Offers
    fallback: Fallback = Fallback()
    etiquette: Etiquette = Field(Etiquette(), description="overrides of the language's etiquette defaults")
    steps: dict[StepName, Step] = Field(min_length=1)
