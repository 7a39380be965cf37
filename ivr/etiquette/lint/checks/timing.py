"""Timing: each prompt's spoken length (ivr.engine.speech.speech_seconds, the estimate the
engine and the simulator use) against the time the caller is given.

- A prompt the caller must answer that is longer than its listening window allows (E2: the
  caller who has to remember a long list needs time to answer; rules data `timing:`).
- A hold check-in that fills too much of the check-in interval (E9: music between check-ins)."""
from __future__ import annotations

import re

from ivr.engine.speech import speech_seconds
from ivr.etiquette.lint.engine import Lint, changed, check, etiquettes, step_etiquette, step_texts
from ivr.steps import KINDS

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _spoken(lint: Lint, text: str) -> float:
    variables = lint.flow.variables
    return speech_seconds(_VARIABLE.sub(lambda m: variables.get(m.group(1)) or "xx", text))


@check
def prompt_length(lint: Lint) -> None:
    per_listen = lint.rules.number("timing", "prompt_seconds_per_listen_second", 4.0)
    for name, step in lint.flow.steps.items():
        if not KINDS[step.kind].listens:
            continue
        et = step_etiquette(lint.flow, step)
        texts = step_texts(name, step, lint.flow, opening=True)
        if not texts:
            continue
        heard = " ".join(t for _, t in texts)
        if step.kind in ("hold", "transfer") and et.consent.hint:
            heard += " " + et.consent.hint
        seconds, window = _spoken(lint, heard), et.silence.listen
        allowed = window * per_listen
        if seconds > allowed:
            lint.report("E2", "prompt-too-long", "warning", texts[-1][0],
                        f"step '{name}' takes about {seconds:.0f} s to say before the caller answers; a "
                        f"{window:g} s listening window allows about {allowed:.0f} s "
                        f"({per_listen:g} s of prompt per second of listening)",
                        "shorten the prompt or split the menu, or listen longer (etiquette: silence: listen:)")


@check
def check_in_length(lint: Lint) -> None:
    share = lint.rules.number("timing", "check_in_share", 0.5)

    def judge(path, text, every):
        seconds = _spoken(lint, text)
        if seconds > every * share:
            lint.report("E9", "check-in-too-long", "warning", path,
                        f"the check-in takes about {seconds:.0f} s to say, more than {share:.0%} of the "
                        f"{every:g} s between check-ins (the caller hears music the rest of the time)",
                        "shorten the check-in (e.g. 感谢您的耐心等待,我们正在为您处理。 / Thank you for waiting.)")

    for name, step in lint.flow.steps.items():
        if step.hold is not None and (step.hold.check_in or step.hold.check_in_every):
            et = step_etiquette(lint.flow, step)
            every = step.hold.check_in_every or et.hold.check_in_every
            path = ("steps", name, "hold", "check_in" if step.hold.check_in else "check_in_every")
            judge(path, step.hold.check_in or et.hold.check_in, every)
    for at, et, parent in etiquettes(lint.flow):
        if changed(et, parent, ("hold", "check_in"), ("hold", "check_in_every")):
            judge(at + ("hold", "check_in"), et.hold.check_in, et.hold.check_in_every)
