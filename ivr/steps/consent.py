"""What holds and transfers share: the consent question (E9, E10) and the built-in offers
(a call back, a message) a caller is given when a hold or transfer cannot go ahead."""
from __future__ import annotations

import functools
import re

from ivr.call import facts
from ivr.engine.machines import CallMachine
from ivr.steps.base import Choice

OFFER_STEPS = {"call_back": "call_back", "message": "leave_message"}  # offer -> field of the flow's `offers:`
YES, NO, REPEAT, UNSURE = "yes", "no", "repeat", "unsure"
_LATIN = re.compile(r"[A-Za-z]")
_GAP = "|"  # what a phrase already understood is replaced by: nothing reads across it
NEGATION_REACH = {"latin": 3, "cjk": 3}  # words (English) or characters (Chinese) a negator reaches forward


def understand(said: str, consent) -> str:
    """What a spoken answer to a consent question means: yes, no, repeat (the caller asks to hear the
    question again) or unsure. Never "no" for an answer that is not clearly one.

    The language's data (its pack's `consent:`) is read in this order:
    1. idioms first, longest first, each blanked out once read: yes idioms that hold a negator
       ("no problem", "I don't mind", 没关系, 不介意), no idioms ("I'd rather not", 还是算了),
       unsure ("I'm not sure", 不知道), politeness that answers nothing ("sorry", 不好意思 —
       which holds 不好) and requests to repeat ("sorry, what?", 您说什么);
    2. yes phrases: one with a negator just before it is a no ("not ok", 不可以, 不太方便);
    3. no phrases.
    Only yes → yes; only no → no; both → unsure; neither → repeat if the caller asked for it, else unsure.
    """
    text = _normalise(said)
    yes = no = 0
    asked_repeat = False
    idioms, yes_phrases, no_phrases = consent.reading_order
    for phrase, meaning in idioms:
        text, found = _take(text, phrase)
        yes += found * (meaning == YES)
        no += found * (meaning == NO)
        asked_repeat |= bool(found) and meaning == REPEAT
    for phrase in yes_phrases:
        for start in reversed(_find(text, phrase)):
            if _negated(text[:start], consent.negators, phrase):
                no += 1
            else:
                yes += 1
            text = text[:start] + _GAP + text[start + len(_span(text, start, phrase)):]
    for phrase in no_phrases:
        text, found = _take(text, phrase)
        no += found
    if yes and not no:
        return YES
    if no and not yes:
        return NO
    if not yes and not no and asked_repeat:
        return REPEAT
    return UNSURE


def _normalise(said: str) -> str:
    """Lower case; punctuation of either script becomes a clause mark ";" (a negator does not reach
    across it: in "不用了,可以" the 不 is not about 可以)."""
    text = said.lower().replace("’", "'")
    text = re.sub(r"[^\w'\s]+", " ; ", text)
    return " " + re.sub(r"\s+", " ", text).strip() + " "


@functools.lru_cache(maxsize=4096)  # the phrases are the packs' data: a few hundred
def _pattern(phrase: str) -> re.Pattern:
    phrase = _normalise(phrase).strip()
    if _LATIN.search(phrase):  # whole words: "no" is not in "know", "ok" not in "okay"
        return re.compile(rf"(?<![a-z0-9']){re.escape(phrase)}(?![a-z0-9'])")  # "ok吧" still holds "ok"
    return re.compile(re.escape(phrase))


def _find(text: str, phrase: str) -> list[int]:
    return [m.start() for m in _pattern(phrase).finditer(text)] if phrase.strip() else []


def _span(text: str, start: int, phrase: str) -> str:
    return _pattern(phrase).match(text, start).group(0)


def _take(text: str, phrase: str) -> tuple[str, int]:
    if not phrase.strip():
        return text, 0
    return _pattern(phrase).subn(_GAP, text)


def _negated(before: str, negators, phrase: str) -> bool:
    """A negator within reach just before the phrase, in the same clause, not across a phrase already read."""
    clause = re.split(r"[;|]", before)[-1]
    latin = bool(_LATIN.search(phrase))
    if latin:
        window = " " + " ".join(clause.split()[-NEGATION_REACH["latin"]:]) + " "
    else:
        window = clause.replace(" ", "")[-NEGATION_REACH["cjk"]:]
    return any(_find(window, n) for n in negators if bool(_LATIN.search(n)) == latin)


def consent_choices(run) -> list[Choice]:
    consent = run.etiquette.consent
    return [Choice(consent.yes_keys, tuple(consent.yes_words), True),
            Choice(consent.no_keys, tuple(consent.no_words), False)]


def offer_choices(offers) -> list[Choice]:
    """The language pack's keys and words for each offer, in the order its wording says them."""
    return [Choice(o.keys, tuple(o.words), o.offer) for o in offers]


def spoken_consent(run, said: str, choices: list[Choice]) -> Choice | str:
    """The yes or no choice the caller's words mean, or REPEAT / UNSURE."""
    meaning = understand(said, run.etiquette.consent)
    if meaning in (YES, NO):
        return next(c for c in choices if c.value is (meaning == YES))
    return meaning


def unsure_again(run) -> list[str]:
    """What an unsure answer hears instead of the ladder's retry: not understood, then the keypad hint."""
    consent = run.etiquette.consent
    return [run.text(consent.unsure), run.text(consent.hint)]


def note_consent(run, about: str, given: bool) -> None:
    run.note(facts.Chose("consent", step=run.state.step, about=about, given=given))


def take_offer(run, offer: str) -> None:
    """A call back or a message: where the flow's `offers:` lead."""
    run.note(facts.Chose("offer", step=run.state.step, offer=offer))
    run.goto(getattr(run.flow.offers, OFFER_STEPS[offer]))


def offer_ways(flow, label: str, offers) -> list:
    from ivr.steps.base import Way

    return [Way(getattr(flow.offers, OFFER_STEPS[o.offer]), f"{label}, {o.keys}: {o.offer.replace('_', ' ')}")
            for o in offers if o.offer in OFFER_STEPS]


class AskingMachine(CallMachine):
    """What the hold's and the transfer's machines share: the consent guard, going on to `next:`,
    and taking one of the offers (their states and transitions are their own)."""

    def yes(self, yes: bool) -> bool:
        return yes

    def ask(self) -> None:
        """The reason, the question, then how to answer by keypad (E9, E10)."""
        run = self.run
        run.ask(run.spec.reason, run.spec.ask, run.etiquette.consent.hint)

    def offer(self, phase: str, wording: str) -> None:
        """Say the choices of `phase` and listen: the listening offers that phase's keys and hints."""
        self.run.state.phase = phase
        self.run.ask(wording)

    def go_next(self) -> None:
        self.run.goto(self.run.step.next)

    def take_offer(self, offer: str) -> None:
        take_offer(self.run, offer)
