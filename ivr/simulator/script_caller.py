"""A caller who follows a script: checks what they heard before each step, then does it."""
from __future__ import annotations

from ivr.simulator.actions import (BETWEEN, HOLD, PAUSE, PROMPT, RECORD, TRANSFER, AbortCall, HangUp, Moment, Silence,
                                   StayOnHold)
from ivr.simulator.callers import Caller
from ivr.simulator.expect import Matcher
from ivr.simulator.script import CallerScript, Step
from ivr.simulator.transcript import Transcript

WHERE = {PROMPT: "at a prompt", RECORD: "recording", HOLD: "on hold", TRANSFER: "while a transfer rings",
         PAUSE: "in a pause", BETWEEN: "listening"}


class ScriptMismatch(AbortCall):
    """The call did not go the way the script says."""


class ScriptedCaller(Caller):
    def __init__(self, script: CallerScript, transcript: Transcript):
        super().__init__()
        self.script = script
        self.matcher = Matcher(transcript)
        self.position = 0  # the next step to check or do

    def choose(self, moment: Moment):
        steps = self.script.steps
        index = self._next_action()
        if moment.kind in (BETWEEN, PAUSE):
            # the caller may hang up between prompts only once they heard what the script says comes first
            if index is not None and isinstance(steps[index].action, HangUp) and self._heard_up_to(index) is None:
                self.position = index + 1
                return steps[index].action
            return None
        if index is None:  # no step left to do: the caller listens for what the script still expects to hear
            if self._heard_up_to(len(steps)) is None:
                return HangUp()  # all of it heard: the script is over, the caller hangs up
            if moment.kind in (PROMPT, RECORD):
                return Silence()
            if moment.kind == HOLD:
                return StayOnHold(until="voice")
            return HangUp()  # a transfer ringing: the script says nothing of it; judge() names what was not heard
        problem = self._heard_up_to(index)
        if problem:
            raise ScriptMismatch(f"{problem} (before the caller's next step, at t={moment.now:g}s)")
        step = steps[index]
        if moment.kind not in step.moments:
            allowed = " or ".join(WHERE[m] for m in step.moments)
            raise ScriptMismatch(f"{step.where()} happens {allowed}, but at t={moment.now:g}s the caller is "
                                 f"{WHERE[moment.kind]}{_what(moment)}")
        self.position = index + 1
        return step.action

    def _next_action(self) -> int | None:
        return next((i for i in range(self.position, len(self.script.steps))
                     if self.script.steps[i].action is not None), None)

    def _heard_up_to(self, index: int) -> str | None:
        """Check the `hear` steps before step `index`; stop at the first that is not met."""
        for i in range(self.position, index):
            problem = self.matcher.check(self.script.steps[i])
            if problem:
                return problem
            self.position = i + 1
        return None

    def remaining(self) -> list[Step]:
        return self.script.steps[self.position:]


def _what(moment: Moment) -> str:
    if moment.kind == TRANSFER:
        return f" ({moment.number} is ringing: add `- transfer: answers` or another agent behaviour)"
    if moment.kind == HOLD:
        return f" (queue '{moment.queue}': add `- hold: wait` or `- hold: {{agent_takes_after: 30s}}`)"
    if moment.kind == RECORD:
        return " (add `- record: {speak: 20s}`)"
    return ""
