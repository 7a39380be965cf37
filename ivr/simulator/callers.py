"""The caller's side of a simulated call: a base class that every kind of caller shares.

A concrete caller (a script, a person typing) implements `choose(moment)`. The base class
keeps the one piece of state every caller needs: `wait 30s` means doing nothing for 30 s of
virtual time, across prompts that time out and holds that go on.
"""
from __future__ import annotations

from dataclasses import replace

from ivr.simulator.actions import (BETWEEN, HOLD, PAUSE, PROMPT, RECORD, Moment, Press, Silence, Speak,
                                   StayOnHold, Wait)


class Caller:
    def __init__(self):
        self.quiet_until = 0.0

    def choose(self, moment: Moment):
        raise NotImplementedError

    def decide(self, moment: Moment):
        quiet = round(self.quiet_until - moment.now, 3)
        if quiet > 0:
            if moment.kind == PROMPT and quiet >= moment.timeout:
                return Silence()  # the whole listening window passes in silence
            if moment.kind == RECORD:
                return Silence()
            if moment.kind == HOLD:
                return StayOnHold(seconds=quiet)
            if moment.kind in (PAUSE, BETWEEN):
                return None
        action = self.choose(moment)
        if isinstance(action, Wait):
            self.quiet_until = moment.now + action.seconds
            return self.decide(moment)
        if quiet > 0 and isinstance(action, (Press, Speak)) and action.barge_in is None:
            action = replace(action, after=max(action.after, quiet))  # still quiet for part of this window
        return action
