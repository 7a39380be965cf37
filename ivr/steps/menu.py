"""`menu`: ask, and go where the caller's key or words lead (9 repeats the menu)."""
from __future__ import annotations

from pydantic import Field, model_validator

from ivr.call import facts
from ivr.flow.types import Keys, StepName, Strict, Text
from ivr.steps.base import Choice, Kind, Way, register

REPEAT = "repeat the menu"


class Option(Strict):
    keys: Keys | None = Field(None, description="DTMF key(s) that choose this option")
    words: list[Text] = Field(default_factory=list, description="spoken keywords that choose it")
    go: StepName

    @model_validator(mode="after")
    def _has_a_trigger(self):
        if not self.keys and not self.words:
            raise ValueError("an option needs keys, words or both")
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
        from ivr.twilio import limits

        message = limits.hints([w for o in spec.options for w in o.words])
        return [source.problem(at + ("menu", "options"), message)] if message else []

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
