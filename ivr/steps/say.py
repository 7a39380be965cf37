"""`say`: speak a sentence and go on."""
from __future__ import annotations

from ivr.flow.types import Text
from ivr.steps.base import Kind, register


@register
class SayKind(Kind):
    goes_on = True
    name, spec, icon = "say", Text, "💬"
    description = "words the caller hears, then the step in `next:`"

    def texts(self, spec, step, flow):
        return [(("say",), spec)]

    def enter(self, run, spec):
        run.say(spec)
        run.goto(run.step.next)
