"""`transfer`: say why, ask first, ring with a limit; the agent hears who and why and must
accept before the caller is handed over; if nobody does, apologise and offer a choice (E10)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field
from statemachine import State

from ivr.call import facts
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.machines import fire
from ivr.flow.types import PositiveDuration, StepName, Strict, Text, duration_text
from ivr.steps.base import Kind, Way, register
from ivr.steps.consent import (AskingMachine, consent_choices, note_consent, offer_choices, offer_ways,
                               spoken_consent)
from ivr.steps.hold import required

PHONE_PATTERN = r"^\+?[0-9]{3,15}$"
SIP_PATTERN = r"^sips?:[^@\s<>]{1,64}@[A-Za-z0-9.-]{1,190}(:[0-9]{1,5})?(;[^\s<>]*)?$"
CLIENT_PATTERN = r"^client:[A-Za-z0-9_.@-]{1,121}$"
TARGET_PATTERN = f"({PHONE_PATTERN})|({SIP_PATTERN})|({CLIENT_PATTERN})"
# Where a transfer (or the flow's fallback) rings: a phone number (E.164), a SIP URI (the bank's PBX:
# <Dial><Sip>, https://www.twilio.com/docs/voice/twiml/sip) or a Twilio Client identity
# (<Dial><Client>, https://www.twilio.com/docs/voice/twiml/client). Twilio does not carry calls to
# every country's phone network (mainland China among them): ring the PBX over SIP there.
TARGET = Annotated[str, Field(pattern=TARGET_PATTERN, description="+E.164 number, sip:user@host or client:identity")]
PHONE = Annotated[str, Field(pattern=PHONE_PATTERN)]


class Transfer(Strict):
    to: TARGET
    caller_id: PHONE | None = Field(None, description="the number the agent sees calling (a Twilio number of yours); "
                                    "for a phone-number target Twilio needs one it accepts")
    reason: Text | None = Field(None, description="why the transfer is needed (E10)")
    ask: Text | None = Field(None, description="the consent question (E10)")
    ring_limit: PositiveDuration | None = None
    whisper: Text | None = Field(None, description="what the agent hears before accepting")
    if_declined: StepName | None = None
    if_unanswered: StepName | None = Field(
        None, description="after the apology, go here instead of offering try again / message / call back")


class TransferMachine(AskingMachine):
    """asking -> ringing (yes) | the flow's if_declined or next (no);
    ringing -> next (connected) | the flow's if_unanswered | unanswered (the offers);
    unanswered -> ringing (try again) | an offer."""

    idle = State(initial=True)
    asking = State()
    ringing = State()
    unanswered = State()

    begin = idle.to(asking, on="ask")
    answer = asking.to(ringing, cond="yes", on="ring") | asking.to(idle, on="go_declined")
    ended = (ringing.to(idle, cond="connected", on="go_next")
             | ringing.to(idle, cond="has_if_unanswered", on="apologise_and_go")
             | ringing.to(unanswered, on="offer_after_no_answer"))
    choose = unanswered.to(ringing, cond="tries_again", on="ring") | unanswered.to(idle, on="take_offer")

    def connected(self, outcome: str) -> bool:
        return outcome == "connected"

    def has_if_unanswered(self) -> bool:
        return bool(self.run.spec.if_unanswered)

    def tries_again(self, offer: str) -> bool:
        return offer == "try_again"

    def ring(self) -> None:
        run, spec = self.run, self.run.spec
        run.say(run.etiquette.transfer.connecting)
        limit = spec.ring_limit or run.etiquette.transfer.ring_limit
        run.note(facts.Transfer("started", step=run.state.step, to=spec.to, ring_limit=limit))
        run.state.accepted_by = None
        run.act(act.Transfer(spec.to, limit, spec.caller_id))

    def go_declined(self) -> None:
        self.run.goto(self.run.spec.if_declined or self.run.step.next)

    def apologise_and_go(self) -> None:  # the flow chose its own way on, after the apology (E10)
        self.run.say(self.run.etiquette.transfer.unanswered_apology)
        self.run.goto(self.run.spec.if_unanswered)

    def offer_after_no_answer(self) -> None:
        self.offer("unanswered", self.run.etiquette.transfer.unanswered)


@register
class TransferKind(Kind):
    name, spec, icon, fill = "transfer", Transfer, "📞", "#fff2cc"
    description = "a warm transfer: reason and consent question are required (E10)"
    listens = True

    def texts(self, spec, step, flow):
        return [(("transfer", f), getattr(spec, f)) for f in ("reason", "ask") if getattr(spec, f)]

    def ways_out(self, step, flow):
        spec, et = step.transfer, step.etiquette or flow.etiquette
        yes, no = f"yes ({et.consent.yes_keys})", f"no ({et.consent.no_keys})"
        out = [Way(step.next, f"{yes}, after the call", ("next",)),
               Way(spec.if_declined or step.next, no, ("transfer", "if_declined") if spec.if_declined else None)]
        if spec.if_unanswered:
            out.append(Way(spec.if_unanswered, "no answer (after an apology)", ("transfer", "if_unanswered")))
        else:
            out += offer_ways(flow, "no answer", et.transfer.unanswered_offers)
        return out

    def facts(self, spec, step, flow):
        et = step.etiquette or flow.etiquette
        return f"to {spec.to}, rings ≤ {duration_text(spec.ring_limit or et.transfer.ring_limit)}"

    def check(self, spec, step, flow, source, at):
        from ivr.twilio import limits

        problems = required(source, at + ("transfer",), spec, "E10 transfer", reason="why the transfer is needed",
                            ask="a question asking if they mind being transferred")
        et = step.etiquette or flow.etiquette
        message = limits.ring_limit(spec.ring_limit or et.transfer.ring_limit)
        if message:
            path = ("transfer", "ring_limit") if spec.ring_limit else ("transfer",)
            problems.append(source.problem(at + path, message))
        return problems

    def listening(self, run):
        return run.state.phase in ("asking", "unanswered")

    def enter(self, run, spec):
        fire(TransferMachine, run, "begin")

    def choices(self, run, spec):
        if run.state.phase == "asking":
            return consent_choices(run)
        return offer_choices(run.etiquette.transfer.unanswered_offers)

    def understand(self, run, spec, said, choices):
        return spoken_consent(run, said, choices) if run.state.phase == "asking" else None

    def chose(self, run, spec, choice):
        if run.state.phase == "asking":
            note_consent(run, "transfer", choice.value)
            return fire(TransferMachine, run, "answer", yes=choice.value)
        fire(TransferMachine, run, "choose", offer=choice.value)

    def handle(self, run, spec, event):
        if not isinstance(event, ev.TransferEnded) or run.state.phase != "ringing":
            return super().handle(run, spec, event)
        run.note(facts.Transfer("ended", step=run.state.step, outcome=event.outcome))
        fire(TransferMachine, run, "ended", outcome=event.outcome)
