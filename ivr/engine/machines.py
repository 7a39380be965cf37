"""Running the small fixed python-statemachine machines of a call, cheaply.

The flow graph is data the engine walks; the machines are the etiquette inside
one step (the listening ladder, the hold, the transfer, the ending), and their
guards and transitions make the decisions. They never grow with a flow.

Cost (DESIGN.md, issue 8): building a machine costs several times firing one,
so each machine class is built once per worker thread and re-bound to the
call at hand before each event: its state is read from, and written back to,
the call's state. python-statemachine is pinned to 2.x: its engine fires an
event in ~0.016 ms here, 3.x's SCXML processing loop in ~0.08 ms, and these
flat machines use nothing 3.x added. Unlike 3.x's StateChart, 2.x's
StateMachine raises TransitionNotAllowed for an event with no transition. No machine has a final state: python-statemachine stops an
instance that reaches one, and these instances live on for the next call.
"""
from __future__ import annotations

import threading

from statemachine import StateMachine
from statemachine.exceptions import TransitionNotAllowed

from ivr.engine.errors import EngineError


class Slot:
    """What a machine instance is bound to: the state value and the run of the event at hand."""

    __slots__ = ("value", "run")

    def __init__(self):
        self.value, self.run = None, None


class CallMachine(StateMachine):
    """Base of the call's machines: callbacks reach the current run through `self.run`."""

    state_field = "phase"  # which attribute of CallState holds this machine's state

    @property
    def run(self):
        return self.model.run


_local = threading.local()


def fire(machine: type[CallMachine], run, event: str, **data) -> None:
    """Send `event` (with `data` for the guards and actions) to `machine` bound to `run`'s call.

    The stored value None is the machine's initial state. An unknown stored value, or an
    event the current state has no transition for, is an EngineError (the caller hears the
    apology and the fallback) rather than a silent no-op."""
    instances = _local.__dict__.setdefault("machines", {})
    instance = instances.get(machine)
    if instance is None:
        instance = instances[machine] = machine(model=Slot(), state_field="value")
    slot, field = instance.model, machine.state_field
    value = getattr(run.state, field) or machine.initial_state.value
    if value not in machine.states_map:
        raise EngineError(f"stored state '{value}' is not a state of {machine.__name__}")
    slot.value, slot.run = value, run
    try:
        instance.send(event, **data)
    except TransitionNotAllowed as exc:
        raise EngineError(f"step '{run.state.step}': {machine.__name__} cannot '{event}' in state '{value}'") from exc
    finally:
        setattr(run.state, field, None if slot.value == machine.initial_state.value else slot.value)
        slot.run = None
