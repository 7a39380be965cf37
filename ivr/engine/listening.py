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
from ivr.steps.consent import REPEAT, UNSURE, unsure_again

_LATIN = re.compile(r"[A-Za-z]")
_WORDS = re.compile(r"[^\W\d_]", re.UNICODE)  # a letter of any script: Latin, CJK...
NOISE_CONFIDENCE = 0.1  # a transcript the recogniser itself gives under 10%, in the last window: line noise
RESUMABLE = ("silence", "quiet", "noisy")  # ladders whose last window resumes on any words or key (E2 step 4)


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
    # E2 step 4 (and E3, E5): in the last window any words or any key resume the call where it was;
    # only silence and pure line noise end it. The not-understood ladder's last words followed speech
    # that matched nothing, so more of it does not resume (it would loop).
    late_input = (last_chance.to(listening, cond="resumable", on="resume")
                  | last_chance.to(listening, on="give_up"))

    # guards: `ladder` is the name of the ladder that missed (silence, quiet, noisy, not_understood)
    def retry_left(self, ladder: str) -> bool:
        return self.run.state.misses[ladder] <= len(_ladder(self.run, ladder).retries)

    def has_then(self, ladder: str) -> bool:
        return bool(_ladder(self.run, ladder).then)

    def has_final(self, ladder: str) -> bool:
        return bool(_ladder(self.run, ladder).final)

    def resumable(self, ladder: str, noise: bool) -> bool:
        return ladder in RESUMABLE and not noise

    # actions
    def say_retry(self, ladder: str, instead: list | None = None) -> None:
        run, count = self.run, self.run.state.misses[ladder]
        run.say(*(instead or [_ladder(run, ladder).retries[count - 1]]))
        run.note(facts.Listening("retry", ladder, count=count))
        run.listen()

    def say_final(self, ladder: str) -> None:
        run, spec = self.run, _ladder(self.run, ladder)
        run.say(spec.final)
        run.note(facts.Listening("final", ladder))
        run.listen(timeout=spec.final_listen)

    def resume(self, ladder: str) -> None:
        """A short apology, the last prompt again, and listening as before: the ladder starts over."""
        run = self.run
        run.note(facts.Listening("resumed", ladder, step=run.state.step))
        run.state.misses = {}
        run.say(run.etiquette.resume)
        run.turn.say(*run.state.last_said)
        run.listen()

    def move_on(self, ladder: str) -> None:
        self.run.goto(_ladder(self.run, ladder).then)

    def give_up(self, ladder: str) -> None:
        self.run.hang_up(facts.HungUp("engine", after_goodbye=bool(_ladder(self.run, ladder).final), ladder=ladder))


def _ladder(run, name: str):
    return getattr(run.etiquette, name)


def heard(run, event) -> None:
    """The caller's answer where the current step listens: a choice, a repeat, or a miss."""
    et = run.etiquette
    silent = isinstance(event, ev.Silence) or (isinstance(event, ev.Speech) and not event.text.strip())
    choices = run.kind.choices(run, run.spec)
    if run.state.listen_phase == "last_chance" and not silent:
        return heard_late(run, event, choices)  # E2 step 4: any words or key resume the call
    ladder = line_ladder(run, event, choices)  # the line's audio picks the ladder of a miss (issue 11)
    if ladder is not None:
        return miss(run, ladder)
    if silent:
        return miss(run, "silence")
    if isinstance(event, ev.Speech):
        if event.confidence is not None and event.confidence < et.noisy.below:
            return miss(run, "noisy")  # "I did not catch that", keypad offered (E5): never a claim about volume
        choice = understood(run, event.text, choices)
        if choice == UNSURE:  # neither yes nor no: ask again with the keypad hint; never taken as a no
            return miss(run, "not_understood", instead=unsure_again(run))
        if choice == REPEAT or (choice is None and any(mentions(event.text, w) for w in et.repeat_louder.words)):
            return repeat_louder(run)
    elif isinstance(event, ev.Digits):
        if event.digits == et.repeat_louder.keys:
            return repeat_louder(run)
        choice = next((c for c in choices if c.keys and c.keys == event.digits), None)
    else:
        raise TypeError(f"a listening step does not expect {type(event).__name__}")
    if choice is None:
        return miss(run, "not_understood")
    take(run, choice)


def take(run, choice: Choice) -> None:
    """Understood: the ladder starts again from the top (nothing to decide, so no event), the step acts."""
    run.state.listen_phase, run.state.misses = None, {}
    run.kind.chose(run, run.spec, choice)


def heard_late(run, event, choices) -> None:
    """Words or a key in the last listening window (E2 step 4): a choice is taken, `*` or "听不清" is
    repeated louder, anything else with words in it (a "hello?", a question) or any key resumes the
    call with a short apology and the last prompt. Confidence does not matter here: the words do."""
    et = run.etiquette
    if isinstance(event, ev.Speech):
        choice = understood(run, event.text, choices)
        if choice == REPEAT or (choice is None and any(mentions(event.text, w) for w in et.repeat_louder.words)):
            return repeat_louder(run)
        choice = None if choice == UNSURE else choice
        noise = _WORDS.search(event.text) is None or (event.confidence is not None
                                                       and event.confidence < NOISE_CONFIDENCE)
    else:
        if event.digits == et.repeat_louder.keys:
            return repeat_louder(run)
        choice = next((c for c in choices if c.keys and c.keys == event.digits), None)
        noise = False
    if choice is not None:
        return take(run, choice)
    fire(ListenLadder, run, "late_input", ladder=final_ladder(run), noise=noise)


def understood(run, said: str, choices: list[Choice]):
    """The step kind's understanding of the words (consent), else the choice whose words were said."""
    meaning = run.kind.understand(run, run.spec, said, choices)
    return match_words(choices, said) if meaning is None else meaning


def final_ladder(run) -> str:
    """The ladder whose last words were said: the one with more misses than retries."""
    for name, count in run.state.misses.items():
        if count > len(_ladder(run, name).retries):
            return name
    return "silence"


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


def miss(run, ladder: str, instead: list | None = None) -> None:
    """A miss on `ladder`; `instead` replaces the ladder's retry wording (an unsure consent answer)."""
    run.state.misses[ladder] = run.state.misses.get(ladder, 0) + 1
    run.note(facts.Listening("miss", ladder, step=run.state.step, count=run.state.misses[ladder]))
    fire(ListenLadder, run, "miss", ladder=ladder, instead=instead)


# --- issue 11: the line's audio picks the ladder ------------------------------------------------
# Kept apart from `heard` on purpose: it only decides WHICH ladder a miss climbs when the window's
# audio says something about the line; everything else (confidence, consent, matching) is `heard`'s.

LINE_LADDERS = {"silent": "silence", "quiet": "quiet", "speakerphone": "speakerphone", "noisy": "noisy"}


def line_ladder(run, event, choices: list[Choice]) -> str | None:
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
        clear_words = event.confidence is None or event.confidence >= et.noisy.below  # None: unknown, not low
        meaning = understood(run, said, choices)
        was_understood = clear_words and ((meaning is not None and meaning != UNSURE)
                                          or any(mentions(said, w) for w in et.repeat_louder.words))
        if was_understood or line.condition == "silent":
            ladder = None
        elif line.condition == "clear":
            ladder = "not_understood" if clear_words else None
    elif line.condition == "clear":
        ladder = "not_understood"  # speech on a clear line, and no words came of it
    run.note(facts.LineHeard(line.condition, ladder, step=run.state.step, figures=dict(line.figures) or None))
    return ladder
