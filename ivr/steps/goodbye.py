"""`goodbye`: thank, say goodbye, pause so the caller hangs up first, then hang up (E11).

No state machine: nothing is decided here (the pause ends, we hang up; a caller who hangs
up first is handled for every step alike by the engine), and firing a machine costs
about 0.1 ms of a webhook for no decision.
"""
from __future__ import annotations

from ivr.call import facts
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.steps.base import Kind, register

SAYING_GOODBYE = "saying_goodbye"


@register
class GoodbyeKind(Kind):
    name, spec, icon, fill = "goodbye", str | None, "👋", "#d9f2d9"
    description = "goodbye words (left empty: the flow's goodbye); then a pause and hang-up"
    needs_next = False

    def texts(self, spec, step, flow):
        return [(("goodbye",), spec)] if spec else []

    def ways_out(self, step, flow):
        return []

    def enter(self, run, spec):
        run.say(spec or run.etiquette.goodbye.say)
        run.note(facts.Goodbye())
        run.act(act.Pause(run.etiquette.goodbye.wait))
        run.state.phase = SAYING_GOODBYE

    def handle(self, run, spec, event):
        if not isinstance(event, ev.PauseOver) or run.state.phase != SAYING_GOODBYE:
            return super().handle(run, spec, event)
        run.hang_up(facts.HungUp("engine", after_goodbye=True))
