"""The call engine: walks a flow's steps, runs the etiquette machines, turns events into actions.

Platform-neutral: events in (ivr.engine.events), actions out (ivr.engine.actions).
One `Engine` per loaded flow version; `start` and `handle` mutate a CallState.
"""
from __future__ import annotations

import re
import string
from pathlib import Path

import yaml

from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.actions import Turn
from ivr.engine.speech import speech_seconds
from ivr.engine.machines import MACHINES, EndingMachine, HoldMachine, ListenLadder, TransferMachine
from ivr.engine.state import CallState
from ivr.flow.load import LoadedFlow
from ivr.flow.model import Etiquette, Step

CHECK_IN_MIN_REMAINING = 8  # seconds: closer to the limit, the at-limit words come instead
MAX_STEPS_PER_TURN = 50  # a say->say loop with no listening would otherwise spin forever
LISTENING_PHASES = {"menu": {None}, "hold": {"asking", "at_limit", "declined"},
                    "transfer": {"asking", "unanswered"}}


class EngineError(Exception):
    """A flow or state the engine cannot go on with; the platform plays the fallback."""


def mentions(said: str, keyword: str) -> bool:
    """Chinese keywords match anywhere; English ones as whole words ("no" is not in "know")."""
    if _LATIN.search(keyword):
        return re.search(rf"(?<![a-z']){re.escape(keyword.lower())}(?![a-z'])", said.lower()) is not None
    return keyword in said


_LATIN = re.compile(r"[A-Za-z]")


class _Formatter(string.Formatter):
    def get_value(self, key, args, kwargs):
        return kwargs.get(key, "") if isinstance(key, str) else ""


_format = _Formatter().vformat


class Engine:
    def __init__(self, loaded: LoadedFlow):
        self.loaded = loaded
        self.flow = loaded.flow
        self._directories: dict[str, dict] = {}

    # --- public API ---------------------------------------------------------
    def new_call(self, caller: str = "", called: str = "") -> CallState:
        return CallState(flow=self.flow.name, flow_version=self.loaded.version, caller=caller, called=called,
                         variables=dict(self.flow.variables))

    def start(self, state: CallState) -> Turn:
        turn = Turn()
        turn.note("call_started", flow=self.flow.name, version=self.loaded.version)
        _Run(self, state, turn).enter(self.flow.start)
        first = next((a for a in turn.actions if isinstance(a, act.Say)), None)
        turn.note("greeted", text=first.text if first else "")
        return turn

    def handle(self, state: CallState, event) -> Turn:
        turn = Turn()
        if state.ended:
            turn.actions.append(act.Hangup())
            return turn
        state.turn += 1
        if isinstance(event, ev.CallerHungUp):
            self._caller_hung_up(state, turn)
            return turn
        if state.step not in self.flow.steps:
            raise EngineError(f"call is at unknown step '{state.step}'")
        run = _Run(self, state, turn)
        run.handle(event)
        return turn

    def hold_wait(self, state: CallState, queue_time: float) -> list:
        """What a caller on hold hears next (Twilio asks again when it ends): music up to
        the next check-in, a check-in every interval, and leaving the queue at the limit."""
        step = self.flow.steps[state.step]
        hold, defaults = step.hold, self.etiquette(step).hold
        limit = hold.limit  # required: the loader refuses a hold without one (E9)
        every = hold.check_in_every or defaults.check_in_every
        remaining = limit - queue_time
        if remaining < 1:
            return [act.LeaveHold()]
        out, talk = [], 0.0
        if queue_time >= 1 and remaining > CHECK_IN_MIN_REMAINING:
            check_in = self.render(hold.check_in or defaults.check_in, state)
            out.append(act.Say(check_in))
            talk = speech_seconds(check_in)
        # music fills the time to the next check-in, so the caller hears a voice at least every interval
        out.append(act.Play(hold.music or defaults.music, max(1.0, min(every, remaining) - talk)))
        return out

    def hold_returning(self, state: CallState) -> str:
        """Said to the caller the moment someone takes them off hold (E9)."""
        step = self.flow.steps.get(state.step)
        return self.render(self.etiquette(step).hold.returning, state)

    def whisper(self, state: CallState) -> str:
        """What the receiving agent hears before accepting (E10)."""
        step = self.flow.steps[state.step]
        defaults = self.etiquette(step).transfer
        text = step.transfer.whisper or step.transfer.reason or ""
        return " ".join(t for t in (self.render(text, state), defaults.whisper_accept) if t)

    def apology(self, state: CallState | None = None) -> str:
        fb = self.flow.fallback
        return self.render(fb.say or self.flow.etiquette.apology, state)

    # --- helpers shared with _Run ---------------------------------------------
    def etiquette(self, step: Step | None) -> Etiquette:
        return step.etiquette if step is not None and step.etiquette is not None else self.flow.etiquette

    def render(self, text: str, state: CallState | None) -> str:
        values = {**(state.variables if state else {}), "caller": state.caller if state else ""}
        return _format(text, (), values).strip()

    def directory(self, name: str) -> dict:
        if name not in self._directories:
            path = Path(self.loaded.path).parent / name
            data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
            self._directories[name] = {str(k): v for k, v in (data or {}).items()}
        return self._directories[name]

    def _caller_hung_up(self, state: CallState, turn: Turn) -> None:
        step = self.flow.steps.get(state.step)
        in_service = step is not None and step.kind in ("hold", "transfer") and state.phase in ("holding", "ringing")
        # a goodbye step, or the last words of a ladder (which end with goodbye), came first
        after_goodbye = (step is not None and step.kind == "goodbye") or state.listen_phase == "last_chance"
        turn.note("hung_up", by="caller", after_goodbye=after_goodbye, step=state.step)
        if in_service:
            turn.note("dropped", step=state.step, during=step.kind, caller=state.caller)
        state.ended = True


class _Run:
    """One event's work on one call: the model the machines are bound to."""

    def __init__(self, engine: Engine, state: CallState, turn: Turn):
        self.engine, self.state, self.turn = engine, state, turn
        self.flow = engine.flow
        self.steps_taken = 0
        self.event = None
        self.ladder = "silence"

    # the machines read and write these
    @property
    def phase(self):
        return self.state.phase

    @phase.setter
    def phase(self, value):
        self.state.phase = value

    @property
    def listen_phase(self):
        return self.state.listen_phase

    @listen_phase.setter
    def listen_phase(self, value):
        self.state.listen_phase = value

    @property
    def step(self) -> Step:
        return self.flow.steps[self.state.step]

    @property
    def etiquette(self) -> Etiquette:
        return self.engine.etiquette(self.step)

    def text(self, template: str) -> str:
        return self.engine.render(template, self.state)

    # --- walking the flow ---------------------------------------------------
    def enter(self, name: str) -> None:
        """Run steps from `name` until one waits for the caller or the call ends."""
        while name:
            self.steps_taken += 1
            if self.steps_taken > MAX_STEPS_PER_TURN:
                raise EngineError(f"steps loop without listening to the caller (at '{name}')")
            if name not in self.flow.steps:
                raise EngineError(f"no step named '{name}'")
            self.state.step, self.state.phase, self.state.listen_phase = name, None, None
            self.state.misses = {}
            name = self._run_step(self.step)

    def _run_step(self, step: Step) -> str | None:
        kind = step.kind
        if kind == "say":
            self.turn.say(self.text(step.say))
            return step.next
        if kind == "set":
            self.state.variables.update({k: self.text(v) for k, v in step.set.items()})
            return step.next
        if kind == "lookup":
            entry = self.engine.directory(step.lookup.directory).get(self.state.caller) or {}
            for var, fld in step.lookup.set.items():
                self.state.variables[var] = str(entry.get(fld, ""))
            self.turn.note("caller_lookup", known=bool(entry))
            return step.next
        if kind == "branch":
            value = str(self.state.variables.get(step.branch.variable, ""))
            return step.branch.cases.get(value, step.branch.otherwise)
        if kind == "callback":
            self.turn.say(self.text(step.callback.say))
            self.turn.note("call_back_requested", caller=self.state.caller)
            return step.next
        if kind == "menu":
            self._prompt_and_listen(self.text(step.menu.prompt))
            return None
        if kind == "record":
            rec = step.record
            self.turn.say(self.text(rec.empathy or ""), self.text(rec.prompt))
            self.turn.actions.append(act.Record(rec.max_length, rec.finish_keys))
            self.state.phase = "recording"
            return None
        MACHINES[kind](self)  # runs the initial state's entry action
        return None

    def _prompt_and_listen(self, *texts: str) -> None:
        self.turn.say(*texts)
        self.state.last_said = [t for t in texts if t]  # what E7 repeats louder
        self._listen()

    def _listen(self, timeout=None) -> None:
        """Listen for the choices offered here: speech hints are their words; with keys all of one
        length, Twilio can answer as soon as they are pressed."""
        choices = self._choices()
        lengths = {len(keys) for keys, _ in choices if keys}
        self.turn.actions.append(act.Listen(timeout or self.etiquette.silence.listen,
                                            tuple(w for _, words in choices for w in words),
                                            lengths.pop() if len(lengths) == 1 else None))

    # --- choices offered at the current listening point -----------------------
    def _choices(self) -> list[tuple[str | None, list[str]]]:
        """(keys, words) per choice, in order; the result of a match is its index."""
        step, phase = self.step, self.state.phase
        et = self.etiquette
        if step.kind == "menu":
            return [(o.keys, o.words) for o in step.menu.options]
        if phase == "asking":
            return [(et.consent.yes_keys, et.consent.yes_words), (et.consent.no_keys, et.consent.no_words)]
        if step.kind == "hold" and phase == "at_limit":
            return [("1", []), ("2", []), ("3", [])]
        if step.kind == "hold" and phase == "declined":
            return [("2", []), ("3", [])]
        if step.kind == "transfer" and phase == "unanswered":
            return [("1", []), ("2", []), ("3", [])]
        return []

    def _match(self, event) -> int | None:
        choices = self._choices()
        if isinstance(event, ev.Digits):
            for i, (keys, _) in enumerate(choices):
                if keys and event.digits == keys:
                    return i
            return None
        # the longest keyword wins, so "不可以" is a no even though it contains "可以"
        best = max(((len(w), i) for i, (_, words) in enumerate(choices) for w in words if mentions(event.text, w)),
                   default=None)
        return best[1] if best else None

    # --- handling an event --------------------------------------------------
    def handle(self, event) -> None:
        self.event = event
        step, phase = self.step, self.state.phase
        if phase in LISTENING_PHASES.get(step.kind, ()):
            self._heard(event)
        elif step.kind == "hold" and phase == "holding":
            self._hold_ended(event)
        elif step.kind == "transfer" and phase == "ringing":
            self._transfer_ended(event)
        elif step.kind == "record" and phase == "recording":
            self._recorded(event)
        elif step.kind == "goodbye":
            self._expect(event, ev.PauseOver)
            EndingMachine(self).pause_over()
        else:
            raise EngineError(f"step '{self.state.step}' ({step.kind}, {phase}) does not expect {type(event).__name__}")

    def _expect(self, event, *kinds):
        if not isinstance(event, kinds):
            raise EngineError(f"step '{self.state.step}' expected {kinds[0].__name__}, got {type(event).__name__}")

    def _heard(self, event) -> None:
        self._expect(event, ev.Speech, ev.Digits, ev.Silence)
        et = self.etiquette
        if isinstance(event, ev.Silence):
            return self._miss("silence")
        if isinstance(event, ev.Speech):
            if not event.text.strip():
                return self._miss("silence")
            if event.confidence < et.quiet.below:
                return self._miss("quiet")
            if event.confidence < et.noisy.below:
                return self._miss("noisy")
            if any(mentions(event.text, w) for w in et.repeat_louder.words) and self._match(event) is None:
                return self._repeat_louder()
        if isinstance(event, ev.Digits):
            if event.digits == et.repeat_louder.keys:
                return self._repeat_louder()
            if self.step.kind == "menu" and event.digits == et.menu_repeat_keys:
                self.turn.note("menu_repeated")
                return self._prompt_and_listen(self.text(self.step.menu.prompt))
        choice = self._match(event)
        if choice is None:
            return self._miss("not_understood")
        ListenLadder(self).heard()
        self.state.misses = {}
        self._chose(choice)

    def _repeat_louder(self) -> None:
        """E7: sorry, then the last prompt again, louder and slower; go on listening."""
        self.turn.note("repeated_louder")
        self.turn.say(self.etiquette.repeat_louder.apology)
        self.turn.say(*self.state.last_said, louder=True)
        self._listen()

    def _miss(self, ladder: str) -> None:
        self.ladder = ladder
        self.state.misses[ladder] = self.state.misses.get(ladder, 0) + 1
        self.turn.note("miss", ladder=ladder, count=self.state.misses[ladder], step=self.state.step)
        ListenLadder(self).miss()

    # ListenLadder conditions and entry actions
    def _ladder(self):
        return getattr(self.etiquette, self.ladder)

    def retry_left(self) -> bool:
        return self.state.misses[self.ladder] <= len(self._ladder().retries)

    def has_then(self) -> bool:
        return bool(self._ladder().then)

    def has_final(self) -> bool:
        return bool(self._ladder().final)

    def say_retry(self) -> None:
        self.turn.say(self.text(self._ladder().retries[self.state.misses[self.ladder] - 1]))
        self.turn.note("retry", ladder=self.ladder, count=self.state.misses[self.ladder])
        self._listen()

    def say_final(self) -> None:
        ladder = self._ladder()
        self.turn.say(self.text(ladder.final))
        self.turn.note("final_words", ladder=self.ladder)
        self._listen(timeout=ladder.final_listen)

    def move_on(self) -> None:
        self.enter(self._ladder().then)

    def give_up(self) -> None:
        self.turn.note("hung_up", by="engine", after_goodbye=bool(self._ladder().final), ladder=self.ladder)
        self.turn.actions.append(act.Hangup())
        self.state.ended = True

    # --- after a valid choice -------------------------------------------------
    def _chose(self, choice: int) -> None:
        step, phase, offers = self.step, self.state.phase, self.flow.offers
        if step.kind == "menu":
            option = step.menu.options[choice]
            self.turn.note("chose", step=self.state.step, go=option.go)
            return self.enter(option.go)
        if phase == "asking":
            agreed = choice == 0
            self.turn.note("consent", step=self.state.step, about=step.kind, given=agreed)
            spec = getattr(step, step.kind)
            if agreed:
                return (HoldMachine if step.kind == "hold" else TransferMachine)(self).agree()
            if step.kind == "hold" and not spec.if_declined:
                return HoldMachine(self).refuse()
            return self.enter(spec.if_declined or step.next)
        # the offers after a hold limit, a declined hold, or an unanswered transfer
        key = self._choices()[choice][0]
        if step.kind == "hold" and key == "1":
            return HoldMachine(self).keep_waiting()
        if step.kind == "transfer" and key == "1":
            return TransferMachine(self).retry()
        wants_call_back = (key == "2") if step.kind == "hold" else (key == "3")
        self.turn.note("offer_taken", step=self.state.step, offer="call_back" if wants_call_back else "message")
        self.enter(offers.call_back if wants_call_back else offers.leave_message)

    # HoldMachine entry actions
    def ask_hold(self) -> None:
        hold = self.step.hold
        self._prompt_and_listen(self.text(hold.reason), self.text(hold.ask), self.etiquette.consent.hint)

    def start_hold(self) -> None:
        hold = self.step.hold
        self.turn.say(self.text(self.etiquette.hold.start))
        self.turn.note("hold_started", step=self.state.step, promised=hold.limit)
        self.turn.actions.append(act.Hold(hold.queue, hold.limit))

    def offer_at_limit(self) -> None:
        self._prompt_and_listen(self.text(self.etiquette.hold.at_limit))

    def offer_instead_of_hold(self) -> None:
        self._prompt_and_listen(self.text(self.etiquette.hold.declined))

    def _hold_ended(self, event) -> None:
        self._expect(event, ev.HoldEnded)
        hold = self.step.hold
        self.turn.note("hold_ended", step=self.state.step, promised=hold.limit, waited=event.waited,
                       result=event.result, breach=event.waited > hold.limit)
        if event.result == "served":
            HoldMachine(self).served()
            return self.enter(self.step.next)
        if event.result == "limit" and hold.if_limit:  # the flow's own way on, after the thanks (E9)
            self.turn.say(self.text(self.etiquette.hold.returning))
            HoldMachine(self).leave()
            return self.enter(hold.if_limit)
        if event.result == "limit":
            return HoldMachine(self).limit_reached()
        raise EngineError(f"hold in queue '{hold.queue}' failed ({event.result})")

    # TransferMachine entry actions
    def ask_transfer(self) -> None:
        tr = self.step.transfer
        self._prompt_and_listen(self.text(tr.reason), self.text(tr.ask), self.etiquette.consent.hint)

    def ring(self) -> None:
        tr = self.step.transfer
        self.turn.say(self.text(self.etiquette.transfer.connecting))
        limit = tr.ring_limit or self.etiquette.transfer.ring_limit
        self.turn.note("transfer_started", step=self.state.step, to=tr.to, ring_limit=limit)
        self.turn.actions.append(act.Transfer(tr.to, limit))

    def offer_after_no_answer(self) -> None:
        self._prompt_and_listen(self.text(self.etiquette.transfer.unanswered))

    def _transfer_ended(self, event) -> None:
        self._expect(event, ev.TransferEnded)
        ok = event.accepted and event.status in ("completed", "answered")
        outcome = "connected" if ok else ("declined" if event.status in ("completed", "answered") else event.status)
        self.turn.note("transfer_ended", step=self.state.step, outcome=outcome)
        if ok:
            TransferMachine(self).connected()
            return self.enter(self.step.next)
        if self.step.transfer.if_unanswered:  # the flow chose its own way on, after the apology (E10)
            self.turn.say(self.text(self.etiquette.transfer.unanswered_apology))
            TransferMachine(self).leave()
            return self.enter(self.step.transfer.if_unanswered)
        TransferMachine(self).not_connected()

    # recording (E15)
    def _recorded(self, event) -> None:
        self._expect(event, ev.Recorded)
        rec = self.step.record
        if event.url:
            self.turn.note("recorded", step=self.state.step, url=event.url, seconds=event.seconds)
            self.turn.say(self.text(rec.reply_promise or ""))
        else:  # nothing was said: no promise to reply to nothing
            self.turn.note("nothing_recorded", step=self.state.step)
        self.enter(self.step.next)

    # EndingMachine entry actions
    def say_goodbye(self) -> None:
        goodbye = self.etiquette.goodbye
        self.turn.say(self.text(self.step.goodbye or goodbye.say))
        self.turn.note("goodbye")
        self.turn.actions.append(act.Pause(goodbye.wait))

    def hang_up(self) -> None:
        self.turn.note("hung_up", by="engine", after_goodbye=True)
        self.turn.actions.append(act.Hangup())
        self.state.ended = True
