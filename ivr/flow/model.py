"""The typed model of a call flow, and the JSON Schema editors get from it.

Step names are the keys under `steps:`; every `next`, `go` and `if_...` names
another step. What each step kind holds is in its module under ivr/steps/; the
`Step` model here is assembled from that registry: exactly one kind per step.
"""
from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, create_model, model_validator

from ivr.flow.types import Duration, Keys, PositiveDuration, StepName, Strict, Text, parse_duration  # noqa: F401 (re-exported)
from ivr.steps import KINDS
from ivr.steps.transfer import TARGET

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
    """Keys for yes and no, the words given to the recogniser as hints, and the data the consent
    understanding reads (ivr.steps.consent.understand): phrases, negators and idioms, per language."""

    yes_keys: Keys = "1"
    no_keys: Keys = "2"
    yes_words: list[Text] = Field(default_factory=list, description="speech hints for yes")
    no_words: list[Text] = Field(default_factory=list, description="speech hints for no")
    hint: Text | None = None
    unsure: Text = Field("Sorry, I didn't quite understand.",
                         description="said (then the hint) when an answer is neither clearly yes nor no")
    yes_phrases: list[Text] = Field(default_factory=list, description="words that agree (a negator before one "
                                    "turns it into a no: 'not ok', 不可以)")
    no_phrases: list[Text] = Field(default_factory=list, description="words that refuse")
    negators: list[Text] = Field(default_factory=list, description="not, don't, 不, 没...")
    yes_idioms: list[Text] = Field(default_factory=list, description="agreeing though they hold a negator: "
                                   "no problem, I don't mind, 没关系, 不介意")
    no_idioms: list[Text] = Field(default_factory=list, description="refusing whatever their words: rather not")
    unsure_idioms: list[Text] = Field(default_factory=list, description="neither: I'm not sure, 不知道")
    neutral: list[Text] = Field(default_factory=list, description="politeness that carries no answer: "
                                "sorry, 不好意思 (which holds 不好)")
    repeat: list[Text] = Field(default_factory=list, description="asking to hear the question again")

    @cached_property
    def reading_order(self) -> tuple[list[tuple[str, str | None]], list[str], list[str]]:
        """The phrases in the order ivr.steps.consent.understand reads them, longest first (sorted once per
        pack, not per answer): idioms with what each means, then yes phrases, then no phrases."""
        idioms = ([(p, "yes") for p in self.yes_idioms] + [(p, "no") for p in self.no_idioms]
                  + [(p, "unsure") for p in self.unsure_idioms] + [(p, None) for p in self.neutral]
                  + [(p, "repeat") for p in self.repeat])
        return (sorted(idioms, key=lambda item: -len(item[0])), sorted(self.yes_phrases, key=len, reverse=True),
                sorted(self.no_phrases, key=len, reverse=True))


class Offer(Strict):
    """One of the built-in choices after a hold limit, a declined hold or an unanswered transfer:
    its keys and spoken words, which the wording before it must announce."""

    offer: Literal["keep_waiting", "try_again", "call_back", "message"]
    keys: Keys
    words: list[Text] = Field(default_factory=list)


def _offers(*items: tuple[str, str]) -> list[Offer]:
    return [Offer(offer=offer, keys=keys) for offer, keys in items]


class Goodbye(Strict):
    say: Text = "Thank you for calling. Goodbye."
    wait: Duration = Field(3, description="pause so the caller hangs up first (E11)")


class HoldDefaults(Strict):
    start: Text = "Thank you. One moment, please."
    check_in_every: PositiveDuration = 30
    check_in: Text = "Thank you for your patience; we are working on it."
    returning: Text = "Thank you for waiting."
    at_limit: Text = ("Thank you for waiting. To keep waiting, press 1. For a call back, press 2. "
                      "To leave a message, press 3.")
    declined: Text = "No problem. To have us call you back, press 2. To leave a message, press 3."
    at_limit_offers: list[Offer] = _offers(("keep_waiting", "1"), ("call_back", "2"), ("message", "3"))
    declined_offers: list[Offer] = _offers(("call_back", "2"), ("message", "3"))
    music: str | None = Field(None, description="URL of hold music; default is the built-in tone")


class TransferDefaults(Strict):
    ring_limit: PositiveDuration = 30
    unanswered: Text = ("We are very sorry, nobody is free to take your call right now. To try again, "
                        "press 1. To leave a message, press 2. For a call back, press 3.")
    unanswered_apology: Text = "We are very sorry, nobody is free to take your call right now."
    whisper_accept: Text = "Press 1 to accept this call."
    connecting: Text = "Connecting you now. Please hold the line."
    unanswered_offers: list[Offer] = _offers(("try_again", "1"), ("message", "2"), ("call_back", "3"))


class Etiquette(Strict):
    silence: SilenceLadder = SilenceLadder()
    quiet: ConfidenceLadder = ConfidenceLadder(below=0.2)
    noisy: ConfidenceLadder = ConfidenceLadder(below=0.5)
    speakerphone: Ladder = Field(Ladder(), description="E4: the audio says the caller is on speakerphone")
    not_understood: Ladder = Ladder()
    repeat_louder: RepeatLouder = RepeatLouder()
    menu_repeat_keys: Keys = "9"
    consent: Consent = Consent()
    goodbye: Goodbye = Goodbye()
    hold: HoldDefaults = HoldDefaults()
    transfer: TransferDefaults = TransferDefaults()
    apology: Text = "We are sorry, something went wrong on our side."
    nothing_recorded: Text = Field("Sorry, we did not hear a message.",
                                   description="said when a recording holds nothing (0-1 s): no promise to reply")
    resume: Text = Field("Sorry, I'm still here.", description="said when the caller speaks or presses a key in "
                         "the last window after a ladder's final words (E2 step 4), before the last prompt again")


# --- steps -------------------------------------------------------------------

_EMPTY_KIND = {"say": "write the words the caller hears after 'say: '",
               "set": "write the variables to set, e.g. set: {surname: 王}"}


class _StepBase(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True,
                              json_schema_extra={"oneOf": [{"required": [name]} for name in KINDS]})

    @model_validator(mode="after")
    def _exactly_one_kind(self):
        found = [name for name in KINDS if name in self.model_fields_set]
        if len(found) != 1:
            raise ValueError(f"a step does exactly one thing (found: {', '.join(found) or 'none'}); "
                             f"keep one of {', '.join(KINDS)}")
        kind = KINDS[found[0]]
        if getattr(self, kind.name) is None and kind.name != "goodbye":  # `say:` left empty
            raise ValueError(f"'{kind.name}:' is empty; {_EMPTY_KIND.get(kind.name, 'write what this step does')}")
        if kind.needs_next and not self.next:
            raise ValueError(f"a '{kind.name}' step needs 'next:'; add next: naming the step that follows")
        if not kind.needs_next and self.next:
            raise ValueError(f"a '{kind.name}' step chooses its own way on; remove 'next:'")
        return self

    @cached_property
    def kind(self) -> str:
        return next(name for name in KINDS if name in self.model_fields_set)


# One optional field per registered kind, plus `next` and `etiquette`.
Step = create_model(
    "Step", __base__=_StepBase,
    next=(StepName | None, Field(None, description="the step after this one")),
    etiquette=(Etiquette | None, Field(None, description="overrides of the flow's etiquette for this step")),
    **{name: (kind.spec | None, Field(None, description=kind.description)) for name, kind in KINDS.items()})
STEP_KINDS = tuple(KINDS)


class Offers(Strict):
    """Where the engine sends a caller who chooses a call back or a message (E9, E10). Needed only
    by a hold or transfer that offers those choices (one without if_declined / if_limit /
    if_unanswered); the loader says so, with an example, when one does and this is missing."""

    call_back: StepName | None = Field(None, description="a step of kind callback, e.g. arrange_call_back")
    leave_message: StepName | None = Field(None, description="a step of kind record, e.g. take_message")


class Fallback(Strict):
    """What a caller hears when something breaks on our side."""

    say: Text | None = None
    transfer_to: TARGET | None = None
    caller_id: Annotated[str, Field(pattern=r"^\+?[0-9]{3,15}$")] | None = None


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
    offers: Offers = Field(Offers(), description="where a call back and a message lead (needed by holds and "
                                                 "transfers that offer them)")
    fallback: Fallback = Fallback()
    etiquette: Etiquette = Field(Etiquette(), description="overrides of the language's etiquette defaults")
    steps: dict[StepName, Step] = Field(min_length=1)
