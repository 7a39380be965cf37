"""Listening to the caller where a step asks something: what was heard, and the ladders
of E2 (silent line), E3 (too quiet), E5 (noisy line), E6 (not understood) and E7
(the caller cannot hear us)."""
from __future__ import annotations

import re

from statemachine import State

from ivr.call import facts
from ivr.engine import events as ev
from ivr.engine.machines import CallMachine, fire
from ivr.steps.base import Choice

_LATIN = re.compile(r"[A-Za-z]")


def mentions(said: str, keyword: str) -> bool:
    """Chinese keywords match anywhere; English ones as whole words ("no" is not in "know")."""
    if _LATIN.search(keyword):
        return re.search(rf"(?<![a-z']){re.escape(keyword.lower())}(?![a-z'])", said.lower()) is not None
    return keyword in said


class ListenLadder(CallMachine):
    """One listening window with the retries of a ladder, then its `then` step, or the last words
    (still listening, E2 step 4), then hanging up. `miss` carries which ladder missed; an answer
    understood puts the ladder back at `listening` (nothing to decide, so no event)."""

    state_field = "listen_phase"  # a listening step also has its own phase (hold, transfer)

    listening = State(initial=True)
    retrying = State()
    last_chance = State()
    # moving on to the ladder's `then` step, or hanging up, leaves the ladder: back to `listening`

    miss = (
        listening.to(retrying, cond="retry_left", on="say_retry")
        | listening.to(listening, cond="has_then", on="move_on")
        | listening.to(last_chance, cond="has_final", on="say_final")
        | listening.to(listening, on="give_up")
        | retrying.to(retrying, cond="retry_left", on="say_retry")
        | retrying.to(listening, cond="has_then", on="move_on")
        | retrying.to(last_chance, cond="has_final", on="say_final")
        | retrying.to(listening, on="give_up")
        | last_chance.to(listening, on="give_up")
    )

    # guards: `ladder` is the name of the ladder that missed (silence, quiet, noisy, not_understood)
    def retry_left(self, ladder: str) -> bool:
        return self.run.state.misses[ladder] <= len(_ladder(self.run, ladder).retries)

    def has_then(self, ladder: str) -> bool:
        return bool(_ladder(self.run, ladder).then)

    def has_final(self, ladder: str) -> bool:
        return bool(_ladder(self.run, ladder).final)

    # actions
    def say_retry(self, ladder: str) -> None:
        run, count = self.run, self.run.state.misses[ladder]
        run.say(_ladder(run, ladder).retries[count - 1])
        run.note(facts.Listening("retry", ladder, count=count))
        run.listen()

    def say_final(self, ladder: str) -> None:
        run, spec = self.run, _ladder(self.run, ladder)
        run.say(spec.final)
        run.note(facts.Listening("final", ladder))
        run.listen(timeout=spec.final_listen)

    def move_on(self, ladder: str) -> None:
        self.run.goto(_ladder(self.run, ladder).then)

    def give_up(self, ladder: str) -> None:
        self.run.hang_up(facts.HungUp("engine", after_goodbye=bool(_ladder(self.run, ladder).final), ladder=ladder))


def _ladder(run, name: str):
    return getattr(run.etiquette, name)


def heard(run, event) -> None:
    """The caller's answer where the current step listens: a choice, a repeat, or a miss."""
    ladder = line_ladder(run, event)  # issue 11: the line's audio picks the ladder of a miss first
    if ladder is not None:
        return miss(run, ladder)
    et = run.etiquette
    if isinstance(event, ev.Silence) or (isinstance(event, ev.Speech) and not event.text.strip()):
        return miss(run, "silence")
    choices = run.kind.choices(run, run.spec)
    if isinstance(event, ev.Speech):
        if event.confidence < et.quiet.below:
            return miss(run, "quiet")
        if event.confidence < et.noisy.below:
            return miss(run, "noisy")
        choice = match_words(choices, event.text)
        if choice is None and any(mentions(event.text, w) for w in et.repeat_louder.words):
            return repeat_louder(run)
    elif isinstance(event, ev.Digits):
        if event.digits == et.repeat_louder.keys:
            return repeat_louder(run)
        choice = next((c for c in choices if c.keys and c.keys == event.digits), None)
    else:
        raise TypeError(f"a listening step does not expect {type(event).__name__}")
    if choice is None:
        return miss(run, "not_understood")
    run.state.listen_phase, run.state.misses = None, {}  # understood: the ladder starts again from the top
    run.kind.chose(run, run.spec, choice)


def match_words(choices: list[Choice], said: str) -> Choice | None:
    """The choice whose longest keyword the caller said: "不可以" is a no though it contains "可以"."""
    best = max(((len(w), i) for i, c in enumerate(choices) for w in c.words if mentions(said, w)), default=None)
    return choices[best[1]] if best else None


def repeat_louder(run) -> None:
    """E7: sorry, then the last prompt again, louder and slower; go on listening."""
    run.note(facts.Chose("repeat_louder", step=run.state.step))
    run.say(run.etiquette.repeat_louder.apology)
    run.turn.say(*run.state.last_said, louder=True)
    run.listen()


def miss(run, ladder: str) -> None:
    run.state.misses[ladder] = run.state.misses.get(ladder, 0) + 1
    run.note(facts.Listening("miss", ladder, step=run.state.step, count=run.state.misses[ladder]))
    fire(ListenLadder, run, "miss", ladder=ladder)


# --- issue 11: the line's audio picks the ladder ------------------------------------------------
# Kept apart from `heard` on purpose: it only decides WHICH ladder a miss climbs when the window's
# audio says something about the line; everything else (confidence, consent, matching) is `heard`'s.

LINE_LADDERS = {"silent": "silence", "quiet": "quiet", "speakerphone": "speakerphone", "noisy": "noisy"}


def line_ladder(run, event) -> str | None:
    """The ladder the window's audio chooses for this answer, or None to decide from the words alone.

    - no audio for the window (no stream, the WebSocket down or late): None, today's behaviour;
    - keys: None (the keypad is not affected by the line);
    - an answer understood (words that match a choice, or ask for a louder repeat): None, whatever
      the line: a caller who was understood is never asked to change phones;
    - otherwise a miss, and the audio names its kind: silent -> E2 (silence), quiet -> E3,
      speakerphone -> E4, noisy -> E5 (which offers the keypad), clear -> E6 (not understood)
      for words that match nothing or speech that gave no words, but None for words on a clear
      line with low confidence (the confidence rules decide those: E5, "did not catch that"). Words heard on a line the audio calls silent mean the audio
      missed part of the window: None.
    Every window with audio logs a LineHeard fact (the scorecard counts them)."""
    line = getattr(event, "line", None)
    if line is None or isinstance(event, ev.Digits):
        if line is not None:
            run.note(facts.LineHeard(line.condition, None, step=run.state.step))
        return None
    said = event.text.strip() if isinstance(event, ev.Speech) else ""
    ladder = LINE_LADDERS.get(line.condition)
    if said:
        et = run.etiquette
        understood = event.confidence >= et.noisy.below and (
            match_words(run.kind.choices(run, run.spec), said) is not None
            or any(mentions(said, w) for w in et.repeat_louder.words))
        if understood or line.condition == "silent":
            ladder = None
        elif line.condition == "clear":
            ladder = "not_understood" if event.confidence >= et.noisy.below else None
    elif line.condition == "clear":
        ladder = "not_understood"  # speech on a clear line, and no words came of it
    run.note(facts.LineHeard(line.condition, ladder, step=run.state.step, figures=dict(line.figures) or None))
    return ladder
