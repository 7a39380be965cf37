"""`goodbye`: thank, say goodbye, pause so the caller hangs up first, then hang up (E11)."""
from __future__ import annotations

from statemachine import State

from ivr.call import facts
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.machines import CallMachine, fire
from ivr.steps.base import Kind, Way, register


class EndingMachine(CallMachine):
    idle = State(initial=True)
    saying_goodbye = State()

    begin = idle.to(saying_goodbye, on="say_goodbye")
    pause_over = saying_goodbye.to(idle, on="hang_up")  # the call is over: nothing is left to decide

    def say_goodbye(self) -> None:
        run = self.run
        run.say(run.step.goodbye or run.etiquette.goodbye.say)
        run.note(facts.Goodbye())
        run.act(act.Pause(run.etiquette.goodbye.wait))

    def hang_up(self) -> None:
        self.run.hang_up(facts.HungUp("engine", after_goodbye=True))


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
        fire(EndingMachine, run, "begin")

    def handle(self, run, spec, event):
        if not isinstance(event, ev.PauseOver):
            return super().handle(run, spec, event)
        fire(EndingMachine, run, "pause_over")
