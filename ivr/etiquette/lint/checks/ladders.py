"""E2, E3, E4, E5, E6: the listening ladders (retries, last words, last chance); E11: their last
words say goodbye."""
from __future__ import annotations

from ivr.etiquette.lint.engine import Lint, changed, check, etiquettes
from ivr.flow.load import LADDERS

LADDER_RULES = {"silence": "E2", "quiet": "E3", "speakerphone": "E4", "noisy": "E5", "not_understood": "E6"}
LADDER_WHAT = {"silence": "silent line", "quiet": "caller too quiet", "speakerphone": "caller on speakerphone",
               "noisy": "noisy line", "not_understood": "speech not understood"}


@check
def ladders(lint: Lint) -> None:
    rules = lint.rules
    farewell = rules.words("goodbye", "farewell")
    for at, et, parent in etiquettes(lint.flow):
        silence = et.silence
        if not silence.retries and changed(et, parent, ("silence", "retries")):
            lint.report("E2", "silence-no-retry", "error", at + ("silence", "retries"),
                        "a silent line is not prompted again before the call ends",
                        "add a retry, e.g. retries: [\"您好,请问有什么可以帮助您?\"] / [\"Hello, how may I help you?\"]")
        if silence.listen < 5 and changed(et, parent, ("silence", "listen")):
            lint.report("E2", "silence-short-listen", "warning", at + ("silence", "listen"),
                        f"listening only {silence.listen:g} s after a prompt", "listen at least 5s")
        for ladder in LADDERS:
            rule, lad = LADDER_RULES[ladder], getattr(et, ladder)
            here = at + (ladder,)
            if lad.then:
                continue  # the `then` step takes over; the last words are never said
            if not lad.final and changed(et, parent, (ladder, "final"), (ladder, "then")):
                lint.report(rule, "hang-up-without-words", "error", here + ("final",),
                            f"{LADDER_WHAT[ladder]}: the call is hung up with no last words and no `then`",
                            "add final: words that explain, apologise and say goodbye, or then: a step")
            if lad.final and lad.final_listen < 5 and changed(et, parent, (ladder, "final_listen"), (ladder, "final")):
                lint.report(rule, "short-last-chance", "warning", here + ("final_listen",),
                            f"{LADDER_WHAT[ladder]}: listening only {lad.final_listen:g} s after the last words",
                            "final_listen: 5s (the caller may still answer)")
            if lad.final and not rules.has_any(lad.final, farewell) and changed(et, parent, (ladder, "final")):
                lint.report("E11", "final-without-goodbye", "error", here + ("final",),
                            f"{LADDER_WHAT[ladder]}: the last words before hanging up do not say goodbye "
                            f"({' / '.join(farewell)})", f"end the final words with {farewell[0] if farewell else 'goodbye'}")
        noisy = et.noisy
        if not noisy.then and changed(et, parent, ("noisy", "retries")):
            first = noisy.retries[0] if noisy.retries else ""
            if not rules.has_any(first, rules.words("keypad")):
                lint.report("E5", "noisy-no-keypad", "warning", at + ("noisy", "retries", 0),
                            "on a noisy line the first retry does not offer the keypad",
                            "add e.g. 您也可以按键选择 / You can also use your keypad")
