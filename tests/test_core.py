"""The call core on a small fixture flow (tests/flows/core/desk.yaml): the machines' decisions,
the ways out a flow can choose, per-step etiquette at run time, and the call session's
one-transaction turns, duplicates and races. The shipped flows' wording is not assumed here."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from ivr.call.registry import FlowRegistry
from ivr.call.session import CallProblem, CallSession
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.engine import Engine, EngineError
from ivr.engine.state import CallState
from ivr.flow import load_flow
from ivr.store import MemoryStore

DESK = Path(__file__).resolve().parent / "flows" / "core" / "desk.yaml"
ENGINE = Engine(load_flow(DESK))


class Call:
    def __init__(self):
        self.state = ENGINE.new_call(caller="+15550100999")
        self.facts = []
        self._take(ENGINE.start(self.state))

    def _take(self, turn):
        self.actions, self.facts = turn.actions, self.facts + [f.to_dict() for f in turn.notes]
        self.said = [a.text for a in turn.actions if isinstance(a, act.Say)]
        return self

    def send(self, event):
        self.state = CallState.from_dict(json.loads(json.dumps(self.state.to_dict())))  # as between webhooks
        return self._take(ENGINE.handle(self.state, event))

    def press(self, keys):
        return self.send(ev.Digits(keys))

    def fact(self, name):
        return [f for f in self.facts if f["fact"] == name]

    @property
    def last(self):
        return self.actions[-1]


def test_the_walk_says_and_listens_with_the_flow_timing():
    call = Call()
    assert call.said == ["Hello from Test Org.", call.said[1]] and call.said[1].startswith("Press 1 to wait")
    assert isinstance(call.last, act.Listen) and call.last.timeout == 4
    assert call.fact("greeted")[0]["text"] == "Hello from Test Org."


def test_silence_ladder_retry_then_final_words_then_hang_up():
    call = Call()
    call.send(ev.Silence())
    assert call.said == ["Still there?"] and call.last.timeout == 4
    call.send(ev.Silence())
    assert call.said == ["No sound. Goodbye."] and call.last.timeout == 3, "the last window still listens (E2)"
    call.send(ev.Silence())
    assert isinstance(call.last, act.Hangup) and call.state.ended
    assert call.fact("hung_up")[-1] == {"fact": "hung_up", "by": "engine", "after_goodbye": True, "ladder": "silence"}


def test_an_answer_understood_starts_the_ladder_again():
    call = Call()
    call.send(ev.Silence())
    call.press("9")  # repeat the menu: understood
    assert call.state.listen_phase is None and call.state.misses == {}
    call.send(ev.Silence())
    assert call.said == ["Still there?"], "the retry comes again, not the final words"


def test_a_ladders_then_step_takes_over_instead_of_hanging_up():
    call = Call()
    call.press("4")
    assert call.state.step == "patient" and call.last.timeout == 9, "the step's own etiquette: listen 9 s"
    call.send(ev.Silence())
    assert call.said == ["Take your time."], "the step's own retry wording"
    call.send(ev.Silence())
    assert call.state.step == "message" and isinstance(call.last, act.Record)
    assert call.said == ["Leave a message after the tone."]


def test_hold_asks_first_and_holds_on_yes():
    call = Call()
    call.press("1")
    assert call.said[:2] == ["I must check, about one minute.", "May I put you on hold?"]
    call.press("1")
    assert call.state.phase == "holding" and call.last == act.Hold("q1", 60)
    assert call.fact("consent")[-1]["given"] is True and call.fact("hold_started")


def test_hold_declined_without_if_declined_offers_a_call_back_or_a_message():
    call = Call()
    call.press("1")
    call.press("2")
    assert call.state.phase == "declined" and call.fact("consent")[-1]["given"] is False
    call.press("2")
    assert call.said == ["We will call you back.", "Thanks, bye."] and call.state.step == "bye"
    assert call.fact("offer_taken")[-1]["offer"] == "call_back"


def test_hold_declined_with_if_declined_goes_there():
    call = Call()
    call.press("3")
    call.press("2")
    assert call.state.step == "menu" and call.said[0].startswith("Press 1 to wait")


def test_hold_served_goes_on_and_at_limit_offers_to_keep_waiting():
    call = Call()
    call.press("1")
    call.press("1")
    call.send(ev.HoldEnded("limit", waited=60))
    assert call.state.phase == "at_limit" and "press 1" in call.said[0].lower()
    call.press("1")
    assert call.state.phase == "holding" and isinstance(call.last, act.Hold), "keep waiting holds again"
    call.send(ev.HoldEnded("served", waited=20))
    assert call.state.step == "after"
    assert [h["breach"] for h in call.fact("hold_ended")] == [False, False]


def test_hold_at_limit_with_if_limit_thanks_and_goes_there():
    call = Call()
    call.press("3")
    call.press("1")
    call.send(ev.HoldEnded("limit", waited=61))
    assert call.said[0] == ENGINE.flow.etiquette.hold.returning and call.state.step == "message"
    assert call.fact("hold_ended")[-1]["breach"] is True


def test_a_failed_hold_is_an_engine_error_for_the_apology():
    call = Call()
    call.press("1")
    call.press("1")
    with pytest.raises(EngineError):
        call.send(ev.HoldEnded("failed", waited=3))


def test_transfer_connected_goes_on():
    call = Call()
    call.press("2")
    call.press("1")
    assert call.last == act.Transfer("+15550100000", 20)
    call.send(ev.TransferEnded("connected"))
    assert call.state.step == "after" and call.fact("transfer_ended")[-1]["outcome"] == "connected"


@pytest.mark.parametrize("outcome", ["no_answer", "busy", "declined", "failed"])
def test_transfer_not_connected_apologises_and_offers_to_try_again(outcome):
    call = Call()
    call.press("2")
    call.press("1")
    call.send(ev.TransferEnded(outcome))
    assert call.state.phase == "unanswered" and "sorry" in call.said[0].lower()
    call.press("1")
    assert isinstance(call.last, act.Transfer), "try again rings again"


def test_transfer_declined_by_the_caller_goes_to_next():
    call = Call()
    call.press("2")
    call.press("2")
    assert call.state.step == "after"


def test_offer_words_are_understood_as_well_as_keys():
    call = Call()
    call.press("2")
    call.press("1")
    call.send(ev.TransferEnded("no_answer"))
    assert "try again" in call.actions[-1].hints, "the Gather hints the offers' words"
    call.send(ev.Speech("please call me back", 0.9))
    assert call.fact("offer_taken")[-1]["offer"] == "call_back"


def test_goodbye_pauses_so_the_caller_hangs_up_first():
    call = Call()
    call.press("5")
    assert call.said == ["Thanks, bye."] and call.last == act.Pause(2)
    call.send(ev.PauseOver())
    assert isinstance(call.last, act.Hangup) and call.fact("hung_up")[-1]["by"] == "engine"


def test_caller_hanging_up_during_the_goodbye_pause_hung_up_first():
    call = Call()
    call.press("5")
    call.send(ev.CallerHungUp())
    assert call.fact("hung_up")[-1] == {"fact": "hung_up", "by": "caller", "after_goodbye": True, "step": "bye"}


def test_a_stored_state_that_is_no_state_of_the_machine_is_an_engine_error():
    call = Call()
    call.press("1")
    call.state.phase = "teleporting"
    with pytest.raises(EngineError):
        call.press("1")


def test_machines_are_shared_by_threads_without_mixing_calls():
    """One machine instance per thread, re-bound to each call: concurrent calls stay apart."""
    results, errors = {}, []

    def caller(n):
        try:
            for _ in range(30):
                call = Call()
                call.press("1" if n % 2 else "2")
                call.press("1")
                results[n] = type(call.last).__name__
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == {n: "Hold" if n % 2 else "Transfer" for n in range(6)}


# --- the call session ------------------------------------------------------------------------

def render(engine, actions, call_id, state):
    return json.dumps([type(a).__name__ for a in actions] + [state.turn])


@pytest.fixture()
def session():
    store = MemoryStore()
    return CallSession(FlowRegistry([DESK], store), store, render)


def request(n):
    return {"kind": "request", "path": "/test", "query": {}, "params": {"n": n}}


def test_session_turns_are_one_write_each_with_the_log(session):
    first = session.start("CA1", None, "+15550100999", "+15550100001", request(0))
    assert json.loads(first)[-1] == 0
    answer = session.handle("CA1", 0, ev.Digits("1"), request(1))
    stored = session.store.load("CA1")
    assert stored.turn == 1 and stored.answer == answer and stored.state["step"] == "wait"
    log = session.store.call_log("CA1")
    assert [e["kind"] for e in log][:2] == ["request", "note"] and log[-1] == {**log[-1], "kind": "response",
                                                                              "twiml": answer}


def test_session_answers_a_duplicate_from_what_was_saved(session):
    session.start("CA1", None, "", "", request(0))
    answer = session.handle("CA1", 0, ev.Digits("1"), request(1))
    again = session.handle("CA1", 0, ev.Digits("2"), request(1))  # Twilio retried: the first answer stands
    assert again == answer and session.store.load("CA1").turn == 1


def test_session_refuses_a_turn_from_the_future_and_unknown_calls(session):
    session.start("CA1", None, "", "", request(0))
    with pytest.raises(CallProblem):
        session.handle("CA1", 5, ev.Digits("1"), request(1))
    with pytest.raises(CallProblem):
        session.handle("CA-nobody", 0, ev.Digits("1"), request(1))
    assert session.store.load("CA1").turn == 0


def test_session_racing_duplicates_advance_the_call_once(session):
    session.start("CA1", None, "", "", request(0))
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(session.handle("CA1", 0, ev.Digits("1"), request(1))))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(answers)) == 1 and session.store.load("CA1").turn == 1
    assert sum(e.get("fact") == "chose" for e in session.store.call_log("CA1")) == 1


def test_a_late_request_for_an_ended_call_changes_nothing(session):
    session.start("CA1", None, "", "", request(0))
    session.handle("CA1", 0, ev.Digits("5"), request(1))  # goodbye
    session.handle("CA1", 1, ev.PauseOver(), request(2))  # we hang up: the call is over
    with pytest.raises(CallProblem):  # Misdirected: the adapter answers with a hang-up, the call stays as it is
        session.handle("CA1", 2, ev.Digits("1"), request(3))
    assert session.store.load("CA1").turn == 2


def test_agent_acceptance_is_call_state_at_the_ringing_turn(session):
    session.start("CA1", None, "", "", request(0))
    session.handle("CA1", 0, ev.Digits("2"), request(1))
    assert not session.accept_transfer("CA1", 1, "CAagent"), "not ringing yet: still asking"
    session.handle("CA1", 1, ev.Digits("1"), request(2))
    assert not session.accept_transfer("CA1", 1, "CAagent"), "a stale turn"
    assert session.accept_transfer("CA1", 2, "CAagent")
    assert session.store.load("CA1").state["accepted_by"] == "CAagent"
    assert session.store.load("CA1").turn == 2, "acceptance does not advance the call"


def test_session_fail_ends_the_call_with_the_apology_saved(session):
    session.start("CA1", None, "", "", request(0))
    apology = session.fail("CA1", "boom", request(1), lambda engine, state: "<Response>sorry</Response>")
    stored = session.store.load("CA1")
    assert apology == "<Response>sorry</Response>" and stored.state["ended"] and stored.answer == apology
    assert any(e.get("fact") == "fallback" and e.get("reason") == "boom" for e in session.store.call_log("CA1"))
