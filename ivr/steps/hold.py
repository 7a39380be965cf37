"""`hold`: say why, ask first, promise a limit; music with check-ins; at the limit, thank and
offer a choice; coming back, thank for waiting (E9)."""
from __future__ import annotations

from pydantic import Field
from statemachine import State

from ivr.call import facts
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.machines import fire
from ivr.engine.speech import speech_seconds
from ivr.flow.types import PositiveDuration, StepName, Strict, Text, duration_text
from ivr.steps.base import Kind, Way, register
from ivr.steps.consent import (AskingMachine, consent_choices, note_consent, offer_choices, offer_ways,
                               spoken_consent)

CHECK_IN_MIN_REMAINING = 8  # seconds: closer to the limit, the at-limit words come instead


class Hold(Strict):
    reason: Text | None = Field(None, description="why the caller must wait, and for how long (E9)")
    ask: Text | None = Field(None, description="the consent question (E9)")
    limit: PositiveDuration | None = Field(None, description="the promised longest wait (E9)")
    queue: str = "hold"
    check_in_every: PositiveDuration | None = None
    check_in: Text | None = None
    music: str | None = None
    if_declined: StepName | None = None
    if_limit: StepName | None = Field(
        None, description="at the limit, after 'thank you for waiting', go here instead of the built-in choice")


class HoldMachine(AskingMachine):
    """asking -> holding (yes) | the flow's if_declined | declined (the offers);
    holding -> next (served) | the flow's if_limit | at_limit (the offers) when the limit is reached;
    at_limit -> holding (keep waiting) | an offer."""

    idle = State(initial=True)
    asking = State()
    holding = State()
    at_limit = State()
    declined = State()

    begin = idle.to(asking, on="ask")
    answer = (asking.to(holding, cond="yes", on="start_hold")
              | asking.to(idle, cond="has_if_declined", on="go_if_declined")
              | asking.to(declined, on="offer_instead"))
    ended = (holding.to(idle, cond="served", on="go_next")
             | holding.to(idle, cond=["at_the_limit", "has_if_limit"], on="thank_and_go_if_limit")
             | holding.to(at_limit, cond="at_the_limit", on="offer_at_limit"))
    choose = (at_limit.to(holding, cond="keeps_waiting", on="start_hold")
              | at_limit.to(idle, on="take_offer")
              | declined.to(idle, on="take_offer"))

    # guards, on the event's data
    def has_if_declined(self) -> bool:
        return bool(self.run.spec.if_declined)

    def served(self, result: str) -> bool:
        return result == "served"

    def at_the_limit(self, result: str) -> bool:
        return result == "limit"

    def has_if_limit(self) -> bool:
        return bool(self.run.spec.if_limit)

    def keeps_waiting(self, offer: str) -> bool:
        return offer == "keep_waiting"

    # actions
    def start_hold(self) -> None:
        run, spec = self.run, self.run.spec
        run.say(run.etiquette.hold.start)
        run.note(facts.Hold("started", step=run.state.step, promised=spec.limit))
        run.act(act.Hold(spec.queue, spec.limit))

    def go_if_declined(self) -> None:
        self.run.goto(self.run.spec.if_declined)

    def offer_instead(self) -> None:
        self.offer("declined", self.run.etiquette.hold.declined)

    def thank_and_go_if_limit(self) -> None:  # the flow's own way on, after the thanks (E9)
        self.run.say(self.run.etiquette.hold.returning)
        self.run.goto(self.run.spec.if_limit)

    def offer_at_limit(self) -> None:
        self.offer("at_limit", self.run.etiquette.hold.at_limit)


@register
class HoldKind(Kind):
    name, spec, icon, fill = "hold", Hold, "⏳", "#fff2cc"
    description = "put the caller on hold: reason, consent question and limit are required (E9)"
    listens = True

    def texts(self, spec, step, flow):
        return [(("hold", f), getattr(spec, f)) for f in ("reason", "ask", "check_in") if getattr(spec, f)]

    def opening(self, spec, step, flow):
        return [(path, text) for path, text in self.texts(spec, step, flow) if path[-1] != "check_in"]

    def ways_out(self, step, flow):
        spec, et = step.hold, step.etiquette or flow.etiquette
        yes, no = f"yes ({et.consent.yes_keys})", f"no ({et.consent.no_keys})"
        out = [Way(step.next, f"{yes}, after the wait", ("next",))]
        if spec.if_declined:
            out.append(Way(spec.if_declined, no, ("hold", "if_declined")))
        else:
            out += offer_ways(flow, f"{no}, then", et.hold.declined_offers)
        if spec.if_limit:
            out.append(Way(spec.if_limit, "at limit (after the thanks)", ("hold", "if_limit")))
        else:
            out += offer_ways(flow, "at limit", et.hold.at_limit_offers)
        return out

    def facts(self, spec, step, flow):
        et = step.etiquette or flow.etiquette
        limit = f"waits ≤ {duration_text(spec.limit)}, " if spec.limit is not None else ""
        return f"{limit}check-in every {duration_text(spec.check_in_every or et.hold.check_in_every)}"

    def check(self, spec, step, flow, source, at):
        from ivr.twilio import limits

        problems = required(source, at + ("hold",), spec, "E9 hold", reason="why the caller must wait",
                            ask="a question asking if they mind waiting", limit="the promised longest wait, e.g. 1m")
        message = limits.queue_name(spec.queue)
        if message:
            problems.append(source.problem(at + ("hold", "queue"), message))
        return problems

    def listening(self, run):
        return run.state.phase in ("asking", "at_limit", "declined")

    def enter(self, run, spec):
        fire(HoldMachine, run, "begin")

    def choices(self, run, spec):
        phase, et = run.state.phase, run.etiquette
        if phase == "asking":
            return consent_choices(run)
        return offer_choices(et.hold.at_limit_offers if phase == "at_limit" else et.hold.declined_offers)

    def understand(self, run, spec, said, choices):
        return spoken_consent(run, said, choices) if run.state.phase == "asking" else None

    def chose(self, run, spec, choice):
        if run.state.phase == "asking":
            note_consent(run, "hold", choice.value)
            return fire(HoldMachine, run, "answer", yes=choice.value)
        fire(HoldMachine, run, "choose", offer=choice.value)

    def handle(self, run, spec, event):
        if not isinstance(event, ev.HoldEnded) or run.state.phase != "holding":
            return super().handle(run, spec, event)
        run.note(facts.Hold("ended", step=run.state.step, promised=spec.limit, waited=event.waited,
                            result=event.result, breach=event.waited > spec.limit))
        fire(HoldMachine, run, "ended", result=event.result)


def wait(run, queue_time: float) -> list:
    """What a caller on hold hears next (Twilio asks again when it ends): music up to the next
    check-in, a check-in every interval, and leaving the queue at the limit."""
    spec, defaults = run.spec, run.etiquette.hold
    every = spec.check_in_every or defaults.check_in_every
    remaining = spec.limit - queue_time  # the loader refuses a hold without a limit (E9)
    if remaining < 1:
        return [act.LeaveHold()]
    out, talk = [], 0.0
    if queue_time >= 1 and remaining > CHECK_IN_MIN_REMAINING:
        check_in = run.text(spec.check_in or defaults.check_in)
        out.append(act.Say(check_in))
        talk = speech_seconds(check_in)
    # music fills the time to the next check-in, so the caller hears a voice at least every interval
    out.append(act.Play(spec.music or defaults.music, max(1.0, min(every, remaining) - talk)))
    return out


def required(source, at, spec, rule, **fields) -> list:
    return [source.problem(at, f"{rule}: '{field}' is missing: add {what}")
            for field, what in fields.items() if getattr(spec, field) is None]
