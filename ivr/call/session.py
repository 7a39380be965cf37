"""The call session: the one way to drive a call, whatever the entry point.

Webhooks, a media stream, a call-back worker or a console all do the same thing
through it: load the call (one store read), hand one event to the engine of the
flow version the call pinned, and save the new state, the answer and the call-log
entries in ONE store transaction with compare-and-set on the call's turn. A
duplicate delivery (the same turn again) is answered from what was saved and never
advances the call twice.

Platform-neutral: the adapter passes a `render(engine, actions, call_id, state)`
callable that turns actions into its answer (TwiML for Twilio), and log entries
describing the request it received; the session knows nothing of HTTP.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from ivr.call import facts
from ivr.call.registry import FlowRegistry
from ivr.engine import events as ev
from ivr.engine.engine import Engine
from ivr.engine.errors import EngineError
from ivr.engine.state import CallState
from ivr.store import CallStore, StoreError

log = logging.getLogger("ivr.call")

Render = Callable[[Engine, list, str, CallState], str]


class CallProblem(Exception):
    """A request that cannot be applied to the call as stored: unknown call, unknown flow,
    a turn from the future. The adapter answers it harmlessly for its endpoint."""


class Misdirected(CallProblem):
    """A request for a call that exists, but not for where the call is: a turn from the future or long past,
    an action the call was never given. Nothing in the call changes; the adapter answers it with the call's
    current answer (`call`), so a live call goes on as it was."""

    def __init__(self, message: str, call: "Loaded"):
        super().__init__(message)
        self.call = call


@dataclass(frozen=True)
class Loaded:
    engine: Engine
    state: CallState
    turn: int  # the stored turn
    answer: str | None  # the answer saved for that turn
    line: dict | None = None  # the line verdict of the listening window asked for, read with the call


class CallSession:
    def __init__(self, registry: FlowRegistry, store: CallStore, render: Render):
        self.registry, self.store, self.render = registry, store, render

    # --- reading ------------------------------------------------------------------
    def load(self, call_id: str, line_window: int | None = None) -> Loaded | None:
        """The call as stored, with the engine of the flow version it pinned (None: unknown call), and
        with `line_window` the line verdict of that listening window, in the same store read."""
        stored = self.store.load(call_id, line_window)
        if stored is None:
            return None
        state = CallState.from_dict(stored.state)
        engine = self.registry.for_version(state.flow_version)
        if engine is None:
            raise CallProblem(f"call {call_id} pinned flow version {state.flow_version}, which is in no store")
        return Loaded(engine, state, stored.turn, stored.answer, stored.line)

    # --- the call's turns ------------------------------------------------------------
    def start(self, call_id: str, flow: str | None, caller: str, called: str, received: dict) -> str:
        """A new call: the flow (by name, by the number called, or the default) greets the caller."""
        stored = self.store.load(call_id)
        if stored is not None:  # the platform retried the first webhook
            return self.store.answer_for(call_id, 0) or stored.answer or ""
        engine = self.registry.for_new_call(flow, called)
        if engine is None:
            raise CallProblem(f"call {call_id} asked for unknown flow '{flow}'; known: {self.registry.names()}")
        state = engine.new_call(caller=caller, called=called)
        turn = engine.start(state)
        answer = self.render(engine, turn.actions, call_id, state)
        if not self.store.start(call_id, state.to_dict(), answer, _entries(received, turn.notes, state.turn, answer)):
            return self.store.answer_for(call_id, 0) or answer
        return answer

    def handle(self, call_id: str, turn: int, event: Callable[[Loaded], object] | object, received: dict,
               line_window: int | None = None) -> str:
        """One event at the turn the platform's URL carried. `event` may be a function of the loaded
        call, for events whose meaning depends on its state (a transfer's acceptance, the window's line)."""
        call = self.load(call_id, line_window)
        if call is None:
            raise CallProblem(f"call {call_id} is not in the store")
        if call.turn > turn:  # a duplicate delivery: the same answer, no second step
            answer = self.store.answer_for(call_id, turn + 1)
            if answer is None:
                raise Misdirected(f"call {call_id}: turn {turn} is long past (the call is at turn {call.turn})", call)
            return answer
        if call.turn < turn:
            raise Misdirected(f"call {call_id}: an event for turn {turn}, but the call is at turn {call.turn}", call)
        if call.state.ended:  # a late request for a call that is over: nothing to advance
            raise Misdirected(f"call {call_id} has ended; a request at turn {turn} changes nothing", call)
        state = call.state
        out = call.engine.handle(state, event(call) if callable(event) else event)
        answer = self.render(call.engine, out.actions, call_id, state)
        if not self.store.commit(call_id, turn, state.to_dict(), answer, _entries(received, out.notes, state.turn,
                                                                                   answer)):
            return self.store.answer_for(call_id, turn + 1) or answer  # a concurrent duplicate won the race
        return answer

    def caller_gone(self, call_id: str, status: str, duration: float, received: dict) -> None:
        """The call ended (the platform's status report). If we had not hung up, the caller did."""
        ended = {**facts.CallEnded(status, duration).to_dict(), "kind": "note"}
        for _ in range(3):  # a webhook of the same call may be saving at this moment: try again
            call = self.load(call_id)
            if call is None or call.state.ended:
                break
            out = call.engine.handle(call.state, ev.CallerHungUp())
            if self.store.commit(call_id, call.turn, call.state.to_dict(), call.answer or "",
                                 _entries(received, out.notes, call.state.turn) + [ended]):
                return
        self.store.append_log(call_id, received, ended)

    def accept_transfer(self, call_id: str, turn: int, agent_call: str) -> bool:
        """The agent accepted the warm transfer ringing at `turn` (E10): recorded in the caller's state,
        where the transfer's outcome is decided. False if the call is no longer ringing there."""
        call = self.load(call_id)
        if call is None or call.turn != turn or call.state.phase != "ringing":
            return False
        call.state.accepted_by = agent_call
        fact = facts.Transfer("accepted", step=call.state.step, agent_call=agent_call)
        return self.store.update(call_id, turn, call.state.to_dict(), _entries({}, [fact], turn))

    def note(self, call_id: str, received: dict, answer: str, *notes: facts.Fact, turn: int | None = None) -> str:
        """A request that changes nothing in the call's state (a hold check-in, the agent taking a held
        caller, the agent's whisper): the request, its facts and the answer go to the log in one write."""
        self.store.append_log(call_id, *_entries(received, notes, turn, answer))
        return answer

    def fail(self, call_id: str, reason: str, received: dict | None,
             apology: Callable[[Engine, CallState | None], str]) -> str:
        """Something broke on our side: the caller hears `apology` (rendered from the call's flow, or the
        default flow's when the call cannot be read), the call is over for the engine, the fallback logged."""
        engine, call = self.registry.default, None
        try:
            call = self.load(call_id)
            if call is not None:
                engine = call.engine
        except StoreError as exc:  # the store is down or the row unreadable: the default flow's words
            log.warning("could not read call %s while apologising: %s", call_id, exc)
        except Exception:  # noqa: BLE001 - a broken row: apologise with the default flow's words
            log.exception("could not read call %s while apologising", call_id)
        state = call.state if call else None
        answer = apology(engine, state)
        fallback = facts.Fallback(to=engine.flow.fallback.transfer_to, reason=reason[:300])
        try:
            entries = ([received] if received else []) + [{**fallback.to_dict(), "kind": "note"}]
            if call is not None and not state.ended:
                state.ended, state.turn = True, call.turn + 1
                if not engine.flow.fallback.transfer_to:  # the apology ends with a goodbye and a hang-up
                    entries.append({**facts.HungUp("engine", after_goodbye=True).to_dict(), "kind": "note",
                                    "turn": state.turn})
                if self.store.commit(call_id, call.turn, state.to_dict(), answer, entries):
                    return answer
            self.store.append_log(call_id, *entries)
        except StoreError as exc:  # the store is what failed; the reconciler closes the call later
            log.warning("could not record the fallback of call %s: %s", call_id, exc)
        except Exception:  # noqa: BLE001 - the store may be what failed
            log.exception("could not record the fallback of call %s", call_id)
        return answer


def _entries(received: dict, notes, turn: int | None, answer: str | None = None) -> list[dict]:
    """The call-log entries of one turn: the request as received, the facts, the answer."""
    out = [received] if received else []
    out += [{**note.to_dict(), "kind": "note", **({"turn": turn} if turn is not None else {})} for note in notes]
    if answer is not None:
        out.append({"kind": "response", "path": received.get("path", "") if received else "", "twiml": answer})
    return out


__all__ = ["CallProblem", "CallSession", "EngineError", "Loaded", "Misdirected"]
