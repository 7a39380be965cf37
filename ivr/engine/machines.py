"""The small, fixed state machines of a call (python-statemachine).

The flow graph is data the engine walks; these machines are the etiquette
inside one step: the listening ladder, the hold, the transfer and the ending.
They never grow with a flow, so a webhook costs the same for any flow size
(DESIGN.md: building one machine per flow per webhook is too slow).

A machine is built per event around a `StepContext` whose `phase` is the
stored state: restoring does not re-run entry actions. Entry actions call back
into the context, which knows the flow and the turn being built.
"""
from __future__ import annotations

from statemachine import State, StateMachine


class _Machine(StateMachine):
    state_field = "phase"

    def __init__(self, ctx):
        super().__init__(model=ctx, state_field=self.state_field)


class ListenLadder(_Machine):
    """One listening window with the retries of E2/E3/E5/E6 and the last chance before hang-up."""

    state_field = "listen_phase"  # a listening step also has its own phase (hold, transfer)

    listening = State(initial=True)
    retrying = State()
    last_chance = State()  # final words said; still listening (E2 step 4)
    moved_on = State(final=True)  # the ladder's `then` step takes over
    given_up = State(final=True)

    miss = (
        listening.to(retrying, cond="retry_left")
        | listening.to(moved_on, cond="has_then")
        | listening.to(last_chance, cond="has_final")
        | listening.to(given_up)
        | retrying.to(retrying, cond="retry_left")
        | retrying.to(moved_on, cond="has_then")
        | retrying.to(last_chance, cond="has_final")
        | retrying.to(given_up)
        | last_chance.to(given_up)
    )
    heard = listening.to(listening) | retrying.to(listening) | last_chance.to(listening)

    def on_enter_retrying(self):
        self.model.say_retry()

    def on_enter_last_chance(self):
        self.model.say_final()

    def on_enter_moved_on(self):
        self.model.move_on()

    def on_enter_given_up(self):
        self.model.give_up()


class HoldMachine(_Machine):
    """E9: ask first, hold with check-ins and a limit, return politely, or offer another way."""

    asking = State(initial=True)
    holding = State()
    at_limit = State()
    declined = State()
    done = State(final=True)

    agree = asking.to(holding)
    refuse = asking.to(declined)
    limit_reached = holding.to(at_limit)
    keep_waiting = at_limit.to(holding)
    served = holding.to(done)
    leave = asking.to(done) | holding.to(done) | at_limit.to(done) | declined.to(done)

    def on_enter_asking(self):
        self.model.ask_hold()

    def on_enter_holding(self):
        self.model.start_hold()

    def on_enter_at_limit(self):
        self.model.offer_at_limit()

    def on_enter_declined(self):
        self.model.offer_instead_of_hold()


class TransferMachine(_Machine):
    """E10: ask first, ring with a limit, hand over only when the agent accepts, else apologise and offer."""

    asking = State(initial=True)
    ringing = State()
    unanswered = State()
    done = State(final=True)

    agree = asking.to(ringing)
    retry = unanswered.to(ringing)
    connected = ringing.to(done)
    not_connected = ringing.to(unanswered)
    leave = asking.to(done) | ringing.to(done) | unanswered.to(done)

    def on_enter_asking(self):
        self.model.ask_transfer()

    def on_enter_ringing(self):
        self.model.ring()

    def on_enter_unanswered(self):
        self.model.offer_after_no_answer()


class EndingMachine(_Machine):
    """E11: thank, say goodbye, pause so the caller hangs up first, then hang up."""

    saying_goodbye = State(initial=True)
    caller_hung_up = State(final=True)
    we_hung_up = State(final=True)

    pause_over = saying_goodbye.to(we_hung_up)
    hung_up = saying_goodbye.to(caller_hung_up)

    def on_enter_saying_goodbye(self):
        self.model.say_goodbye()

    def on_enter_we_hung_up(self):
        self.model.hang_up()


MACHINES = {"hold": HoldMachine, "transfer": TransferMachine, "goodbye": EndingMachine}
