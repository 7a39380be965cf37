"""`callback`: book a call back to the caller's number (E12) and tell them so."""
from __future__ import annotations

from ivr.call import facts
from ivr.flow.types import Strict, Text
from ivr.steps.base import Kind, register


class CallBack(Strict):
    say: Text


@register
class CallBackKind(Kind):
    goes_on = True
    name, spec, icon = "callback", CallBack, "📅"
    description = "book a call back to the caller's number and say when"

    def texts(self, spec, step, flow):
        return [(("callback", "say"), spec.say)]

    def enter(self, run, spec):
        run.say(spec.say)
        run.note(facts.CallBackRequested(run.state.caller))
        run.goto(run.step.next)
