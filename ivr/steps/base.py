"""What every step kind provides, in one place: its model, its engine behaviour, and
what the loader, the graph and the linter need to know about it.

A kind is a module in `ivr.steps` with one `Kind` subclass, registered by
`register`. The flow model builds `Step` from the registry (exactly one kind per
step), so a new kind is one new module plus one line in `ivr/steps/__init__.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # only for type names: the engine imports the kinds, not the other way round
    from ivr.engine.run import Run


@dataclass(frozen=True)
class Way:
    """One way out of a step: where to (a step name), why (a label for the picture), and for a
    target the flow names itself, where it is written inside the step (for file:line errors)."""

    to: str | None
    label: str
    path: tuple | None = None  # None: the engine's own way (the offers), not written in the step


@dataclass(frozen=True)
class Choice:
    """Something the caller can choose where a step listens: keys, words, and what it means."""

    keys: str | None
    words: tuple[str, ...]
    value: Any


class Kind:
    name: ClassVar[str]
    spec: ClassVar[Any]  # the type of the value under the kind's key (a pydantic model, str, dict)
    description: ClassVar[str]
    needs_next: ClassVar[bool] = True  # a step of this kind goes on to `next:`
    listens: ClassVar[bool] = False  # it waits for the caller's answer (the listening ladders apply)
    goes_on: ClassVar[bool] = False  # entering it goes on to another step at once, in the same turn
    icon: ClassVar[str] = ""
    fill: ClassVar[str | None] = None

    # --- authoring: graph, lint, load ------------------------------------------------
    def texts(self, spec, step, flow) -> list[tuple[tuple, str]]:
        """(path inside the step, text) of everything the step says to the caller."""
        return []

    def opening(self, spec, step, flow) -> list[tuple[tuple, str]]:
        """What the caller hears as the step starts (not, say, a hold's later check-ins)."""
        return self.texts(spec, step, flow)

    def ways_out(self, step, flow) -> list[Way]:
        return [Way(step.next, "next", ("next",))] if step.next else []

    def facts(self, spec, step, flow) -> str:
        """A few words for the picture, e.g. 'waits ≤ 1m, check-in every 30s'."""
        return ""

    def check(self, spec, step, flow, source, at: tuple) -> list:
        """Problems (ivr.flow.source.Problem) the types cannot see; `at` is the step's path."""
        return []

    # --- the engine ------------------------------------------------------------------
    def enter(self, run: Run, spec) -> None:
        """The step starts: say, ask, listen, or go on (run.goto)."""
        raise NotImplementedError

    def choices(self, run: Run, spec) -> list[Choice]:
        """What the caller can choose now (only asked while the step listens)."""
        return []

    def understand(self, run: Run, spec, said: str, choices: list[Choice]):
        """What the caller's words mean here, when keywords are not enough (a consent answer): a
        Choice, "repeat", "unsure", or None to match the choices' words (the default)."""
        return None

    def chose(self, run: Run, spec, choice: Choice) -> None:
        raise NotImplementedError(f"a '{self.name}' step offers no choices")

    def handle(self, run: Run, spec, event) -> None:
        """An event that is not an answer to a question (a hold or transfer outcome, a recording, a pause)."""
        from ivr.engine.errors import EngineError

        raise EngineError(f"a '{self.name}' step at phase {run.state.phase} does not expect {type(event).__name__}")

    def listening(self, run: Run) -> bool:
        """Whether the step is waiting for the caller's answer right now."""
        return False


KINDS: dict[str, Kind] = {}


def register(kind: type[Kind]) -> type[Kind]:
    KINDS[kind.name] = kind()
    return kind
