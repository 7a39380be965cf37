"""The call engine: walks a flow's steps as data, lets each step kind and its machine decide,
and turns events into actions.

Platform-neutral: events in (ivr.engine.events), actions out (ivr.engine.actions), typed
log facts (ivr.call.facts) beside them. One `Engine` per loaded flow version; `start` and
`handle` mutate a CallState. What a step does is in its kind's module (ivr/steps/).
"""
from __future__ import annotations

from ivr.call import facts
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.actions import Turn
from ivr.engine.errors import EngineError
from ivr.engine.listening import heard, mentions
from ivr.engine.run import Run, render
from ivr.engine.state import CallState
from ivr.flow.load import MAX_STEPS_PER_TURN, LoadedFlow  # the loader refuses flows that loop or chain more
from ivr.flow.model import Etiquette, Step

# said when a flow's own apology cannot be rendered (the loader checks it, so this is a last resort)
LAST_RESORT = {"cmn-CN": "非常抱歉,系统暂时出现问题。", "en-US": "We are sorry, something went wrong on our side."}

__all__ = ["Engine", "EngineError", "mentions"]


class Engine:
    def __init__(self, loaded: LoadedFlow):
        self.loaded = loaded
        self.flow = loaded.flow

    # --- public API ---------------------------------------------------------
    def new_call(self, caller: str = "", called: str = "") -> CallState:
        return CallState(flow=self.flow.name, flow_version=self.loaded.version, caller=caller, called=called,
                         variables=dict(self.flow.variables))

    def start(self, state: CallState) -> Turn:
        turn = Turn()
        turn.note(facts.CallStarted(self.flow.name, self.loaded.version))
        run = Run(self, state, turn)
        run.goto(self.flow.start)
        self._walk(run)
        first = next((a for a in turn.actions if isinstance(a, act.Say)), None)
        turn.note(facts.Greeted(first.text if first else ""))
        return turn

    def handle(self, state: CallState, event) -> Turn:
        turn = Turn()
        if state.ended:
            turn.actions.append(act.Hangup())
            return turn
        state.turn += 1
        if isinstance(event, ev.CallerHungUp):
            self._caller_hung_up(state, turn, event)
            return turn
        if state.step not in self.flow.steps:
            raise EngineError(f"call is at unknown step '{state.step}'")
        run = Run(self, state, turn)
        kind = run.kind
        if kind.listening(run):
            if not isinstance(event, (ev.Speech, ev.Digits, ev.Silence)):
                raise EngineError(f"step '{state.step}' is listening; it does not expect {type(event).__name__}")
            heard(run, event)
        else:
            kind.handle(run, run.spec, event)
        self._walk(run)
        return turn

    def hold_wait(self, state: CallState, queue_time: float) -> list:
        """What a caller on hold hears next (see ivr.steps.hold.wait)."""
        from ivr.steps.hold import wait

        return wait(Run(self, state, Turn()), queue_time)

    def hold_returning(self, state: CallState) -> str:
        """Said to the caller the moment someone takes them off hold (E9)."""
        step = self.flow.steps.get(state.step)
        return self.render(self.etiquette(step).hold.returning, state)

    def whisper(self, state: CallState) -> str:
        """What the receiving agent hears before accepting (E10)."""
        step = self.flow.steps[state.step]
        defaults = self.etiquette(step).transfer
        text = step.transfer.whisper or step.transfer.reason or ""
        return " ".join(t for t in (render(text, state, spell_numbers=True), defaults.whisper_accept) if t)

    def apology(self, state: CallState | None = None) -> str:
        """The flow's apology; if even that cannot be rendered, a built-in one (the apology must never
        become the failure: issue 12, item 14)."""
        try:
            return self.render(self.flow.fallback.say or self.flow.etiquette.apology, state)
        except Exception:  # noqa: BLE001 - the last resort must not fail
            return LAST_RESORT.get(self.flow.language, LAST_RESORT["en-US"])

    def etiquette(self, step: Step | None) -> Etiquette:
        return step.etiquette if step is not None and step.etiquette is not None else self.flow.etiquette

    def render(self, text: str, state: CallState | None) -> str:
        return render(text, state)

    def directory(self, name: str) -> dict:
        """A caller directory as read and checked when the flow loaded: no file is opened during a call."""
        return self.loaded.directories.get(name, {})

    # --- walking the flow ---------------------------------------------------------
    def _walk(self, run: Run) -> None:
        """Enter steps while one asks to go on, until a step waits for the caller or the call ends."""
        steps_taken = 0
        while run.pending and not run.state.ended:
            name, run.pending = run.pending, None
            steps_taken += 1
            if steps_taken > MAX_STEPS_PER_TURN:
                raise EngineError(f"steps loop without listening to the caller (at '{name}')")
            if name not in self.flow.steps:
                raise EngineError(f"no step named '{name}'")
            state = run.state
            state.step, state.phase, state.listen_phase, state.misses = name, None, None, {}
            run.kind.enter(run, run.spec)

    def _caller_hung_up(self, state: CallState, turn: Turn, event: ev.CallerHungUp) -> None:
        step = self.flow.steps.get(state.step)
        if event.recording is not None and event.recording.url:
            turn.note(facts.Recording("kept", step=state.step, url=event.recording.url,
                                      seconds=event.recording.seconds, hung_up=True))
        in_service = step is not None and step.kind in ("hold", "transfer") and state.phase in ("holding", "ringing")
        # a goodbye step, or the last words of a ladder (which end with goodbye), came first
        after_goodbye = (step is not None and step.kind == "goodbye") or state.listen_phase == "last_chance"
        turn.note(facts.HungUp("caller", after_goodbye=after_goodbye, step=state.step))
        if in_service:
            turn.note(facts.Dropped(state.step, step.kind, caller=state.caller))
        state.ended = True
