"""The linter's engine: the context a check works in, the registry of checks, and what every
check needs to know about a flow (what the caller hears, where the etiquette is overridden).

A check is a small function registered with `@check`; it calls `lint.report(...)` for each
problem. Checks live one module per rule family in `ivr.etiquette.lint.checks`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Callable

from ivr.etiquette.lint.findings import Finding
from ivr.etiquette.lint.rules import Rules
from ivr.flow.load import LADDERS, LoadedFlow, language_pack
from ivr.flow.model import Etiquette, Flow, Step
from ivr.steps import KINDS


@dataclass
class Lint:
    loaded: LoadedFlow
    rules: Rules
    findings: list[Finding] = field(default_factory=list)

    @property
    def flow(self) -> Flow:
        return self.loaded.flow

    def where(self, path) -> tuple[int, int]:
        """The line of `path` in the file, else of its nearest ancestor there (a value
        from the language pack: the step or `etiquette:` key), else line 1."""
        return self.loaded.source.where(path)

    def report(self, rule: str, name: str, severity: str, path, message: str, fix: str) -> None:
        line, col = self.where(path)
        self.findings.append(Finding(rule, name, severity, self.loaded.path, line, col, message, fix))

    @cached_property
    def prompts(self) -> list[tuple[tuple, str]]:
        """Every text the caller can hear, with its path (computed once per flow)."""
        return prompts(self.flow)


Check = Callable[[Lint], None]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register a rule check: a function that calls `lint.report(...)` for what it finds."""
    CHECKS.append(fn)
    return fn


def dotted(path) -> str:
    return ".".join(str(p) for p in path)


# --- what the caller hears -----------------------------------------------------------

ETIQUETTE_TEXTS = [(ladder, "final") for ladder in LADDERS] + [
    ("repeat_louder", "apology"), ("consent", "hint"), ("goodbye", "say"), ("hold", "check_in"),
    ("hold", "returning"), ("hold", "at_limit"), ("hold", "declined"), ("transfer", "unanswered"),
    ("transfer", "unanswered_apology"), ("transfer", "connecting"), ("apology",)]
# transfer.whisper_accept is for the agent, not the caller


def get(obj, path):
    for key in path:
        if obj is None:
            return None
        obj = obj[key] if isinstance(key, int) else getattr(obj, key, None)
    return obj


def etiquette_texts(et: Etiquette) -> dict[tuple, str]:
    out = {path: get(et, path) for path in ETIQUETTE_TEXTS}
    for ladder in LADDERS:
        for i, text in enumerate(getattr(et, ladder).retries):
            out[(ladder, "retries", i)] = text
    return {path: text for path, text in out.items() if text}


@lru_cache(maxsize=None)
def pack_etiquette(language: str) -> Etiquette:
    return Etiquette.model_validate(language_pack(language))


def etiquettes(flow: Flow):
    """(path, etiquette, what it overrides or None) for the flow and each step that has one."""
    yield ("etiquette",), flow.etiquette, None
    for name, step in flow.steps.items():
        if step.etiquette is not None:
            yield ("steps", name, "etiquette"), step.etiquette, flow.etiquette


def changed(et: Etiquette, parent: Etiquette | None, *paths) -> bool:
    """Whether a step's etiquette sets any of these itself (not just inherits them)."""
    return parent is None or any(get(et, p) != get(parent, p) for p in paths)


def step_texts(name: str, step: Step, flow: Flow, opening: bool = False) -> list[tuple[tuple, str]]:
    """(path, text) of everything this step says to the caller (not the agent's whisper);
    with `opening`, only what is said as the step starts."""
    kind = KINDS[step.kind]
    texts = (kind.opening if opening else kind.texts)(getattr(step, step.kind), step, flow)
    return [(("steps", name) + path, text) for path, text in texts]


def prompts(flow: Flow) -> list[tuple[tuple, str]]:
    """Every text the caller can hear, with its path: the steps', the fallback's, and the
    etiquette texts the flow (or a step) words differently from the language pack."""
    out = []
    for name, step in flow.steps.items():
        out += step_texts(name, step, flow)
    if flow.fallback.say:
        out.append((("fallback", "say"), flow.fallback.say))
    pack = etiquette_texts(pack_etiquette(flow.language))
    flow_texts = None
    for at, et, parent in etiquettes(flow):
        if parent is None:
            base = pack
        else:
            flow_texts = flow_texts or etiquette_texts(parent)
            base = flow_texts
        out += [(at + path, text) for path, text in etiquette_texts(et).items() if base.get(path) != text]
    return out


def step_etiquette(flow: Flow, step: Step) -> Etiquette:
    return step.etiquette or flow.etiquette
