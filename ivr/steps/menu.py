"""`menu`: ask, and go where the caller's key or words lead (9 repeats the menu)."""
from __future__ import annotations

from pydantic import Field, model_validator

from ivr.call import facts
from ivr.flow.types import Keys, StepName, Strict, Text
from ivr.twilio import limits
from ivr.steps.base import Choice, Kind, Way, register

REPEAT = "repeat the menu"


class Option(Strict):
    keys: Keys | None = Field(None, description="DTMF key(s) that choose this option")
    words: list[Text] = Field(default_factory=list, description="spoken keywords that choose it")
    go: StepName

    @model_validator(mode="after")
    def _has_a_trigger(self):
        if not self.keys and not self.words:
            raise ValueError("an option needs keys, words or both; add keys: \"1\" or words: [...]")
        return self


class Menu(Strict):
    prompt: Text
    options: list[Option] = Field(min_length=1)


def option_label(option: Option) -> str:
    words = ", ".join(option.words[:3]) + (", …" if len(option.words) > 3 else "")
    return " / ".join(part for part in (option.keys or "", words) if part)


@register
class MenuKind(Kind):
    name, spec, icon, fill = "menu", Menu, "☰", "#dbe9ff"
    description = "a question with options chosen by key or by words"
    needs_next, listens = False, True

    def texts(self, spec, step, flow):
        return [(("menu", "prompt"), spec.prompt)]

    def ways_out(self, step, flow):
        return [Way(o.go, option_label(o), ("menu", "options", i, "go")) for i, o in enumerate(step.menu.options)]

    def check(self, spec, step, flow, source, at):
        """Keys and words the caller could never use to reach an option (see ivr.engine.listening:
        the etiquette's keys are taken first, the first option with a key wins, and of two options
        with the same word the later one wins)."""
        et = step.etiquette or flow.etiquette
        reserved = {et.repeat_louder.keys: "repeats the last words louder (E7)",
                    et.menu_repeat_keys: "repeats the menu"}
        out, keys, words = [], {}, {}
        usable = [False] * len(spec.options)
        for i, option in enumerate(spec.options):
            where = at + ("menu", "options", i)
            if option.keys in reserved:
                out.append(source.problem(where + ("keys",), f"key '{option.keys}' is taken by the etiquette: it "
                                          f"{reserved[option.keys]}; choose another key for option {i + 1}"))
            elif option.keys in keys:
                out.append(source.problem(where + ("keys",), f"key '{option.keys}' is used twice (option "
                                          f"{keys[option.keys] + 1} has it too), so option {i + 1} can never be "
                                          f"chosen by key; give each option its own key"))
            elif option.keys:
                keys[option.keys] = i
                usable[i] = True
            for j, word in enumerate(option.words):
                said = word.strip().lower()
                if said in words and words[said][0] != i:
                    first = words[said][0]
                    out.append(source.problem(where + ("words", j), f"'{word}' is a word of option {first + 1} "
                                              f"too; a caller who says it always gets option {i + 1}; keep the "
                                              f"word in one option"))
                words[said] = (i, j)
        for said, (i, _) in words.items():
            usable[i] = True  # the last option with a word gets it
        for i, ok in enumerate(usable):
            if not ok:
                out.append(source.problem(at + ("menu", "options", i), f"option {i + 1} can never be chosen: "
                                          f"its keys and words all belong to something else; give it a key or a "
                                          f"word of its own"))
        message = limits.hints([w for o in spec.options for w in o.words])
        if message:
            out.append(source.problem(at + ("menu", "options"), message))
        return out

    def listening(self, run):
        return True

    def enter(self, run, spec):
        run.ask(spec.prompt)

    def choices(self, run, spec):
        options = [Choice(o.keys, tuple(o.words), o) for o in spec.options]
        return options + [Choice(run.etiquette.menu_repeat_keys, (), REPEAT)]

    def chose(self, run, spec, choice):
        if choice.value == REPEAT:
            run.note(facts.Chose("repeat_menu", step=run.state.step))
            return run.ask(spec.prompt)
        run.note(facts.Chose("option", step=run.state.step, go=choice.value.go))
        run.goto(choice.value.go)
