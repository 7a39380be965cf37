"""One event's work on one call: what step kinds and machines use to speak, listen and move on."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.engine import actions as act
from ivr.engine.state import CallState
from ivr.flow.model import Etiquette, Step
from ivr.flow.template import render as render_template
from ivr.steps import KINDS

if TYPE_CHECKING:
    from ivr.engine.engine import Engine


def render(text: str, state: CallState | None, spell_numbers: bool = False) -> str:
    """A template with the call's variables: bare {name} fields only, never str.format (see ivr.flow.template).
    `spell_numbers`: the caller's number digit by digit ("1 3 8 0 0..."), so a voice reads it as a phone
    number and not as one big number (the whisper, E10)."""
    caller = state.caller if state else ""
    if spell_numbers:
        caller = " ".join(ch for ch in caller if ch.isdigit())
    values = {**(state.variables if state else {}), "caller": caller}
    return render_template(text, values).strip()


class Run:
    def __init__(self, engine: Engine, state: CallState, turn: act.Turn):
        self.engine, self.state, self.turn = engine, state, turn
        self.flow = engine.flow
        self.pending: str | None = None  # the step to enter once the current machine has decided

    # --- where the call is --------------------------------------------------------
    @property
    def step(self) -> Step:
        return self.flow.steps[self.state.step]

    @property
    def kind(self):
        return KINDS[self.step.kind]

    @property
    def spec(self):
        return getattr(self.step, self.step.kind)

    @property
    def etiquette(self) -> Etiquette:
        return self.engine.etiquette(self.step)

    # --- what the caller hears ------------------------------------------------------
    def text(self, template: str | None) -> str:
        return render(template or "", self.state)

    def say(self, *templates: str | None) -> None:
        self.turn.say(*(self.text(t) for t in templates))

    def act(self, action) -> None:
        self.turn.actions.append(action)

    def note(self, fact) -> None:
        self.turn.notes.append(fact)

    def ask(self, *templates: str | None) -> None:
        """Say, remember it (E7 repeats it louder), and listen for this step's choices."""
        texts = [self.text(t) for t in templates]
        self.turn.say(*texts)
        self.state.last_said = [t for t in texts if t]
        self.listen()

    def listen(self, timeout: float | None = None) -> None:
        """Listen for the choices offered here: speech hints are their words; with keys all of one
        length, Twilio can answer as soon as they are pressed."""
        choices = self.kind.choices(self, self.spec)
        lengths = {len(c.keys) for c in choices if c.keys}
        self.act(act.Listen(timeout or self.etiquette.silence.listen, tuple(w for c in choices for w in c.words),
                            lengths.pop() if len(lengths) == 1 else None))

    # --- moving on ---------------------------------------------------------------------
    def goto(self, name: str | None) -> None:
        self.pending = name

    def hang_up(self, fact) -> None:
        self.note(fact)
        self.act(act.Hangup())
        self.state.ended = True
