"""What holds and transfers share: the consent question (E9, E10) and the built-in offers
(a call back, a message) a caller is given when a hold or transfer cannot go ahead."""
from __future__ import annotations

from ivr.call import facts
from ivr.steps.base import Choice

OFFER_STEPS = {"call_back": "call_back", "message": "leave_message"}  # offer -> field of the flow's `offers:`


def consent_choices(run) -> list[Choice]:
    consent = run.etiquette.consent
    return [Choice(consent.yes_keys, tuple(consent.yes_words), True),
            Choice(consent.no_keys, tuple(consent.no_words), False)]


def offer_choices(offers) -> list[Choice]:
    """The language pack's keys and words for each offer, in the order its wording says them."""
    return [Choice(o.keys, tuple(o.words), o.offer) for o in offers]


def ask_consent(run, spec) -> None:
    run.ask(spec.reason, spec.ask, run.etiquette.consent.hint)


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
