"""`lookup`: find the caller in a directory by their number (E8: address them by name)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from ivr.call import facts
from ivr.flow.types import Strict
from ivr.steps.base import Kind, Way, register


class Lookup(Strict):
    directory: str = Field(description="YAML file next to the flow: phone number -> fields")
    key: Literal["caller"] = "caller"
    set: dict[str, str] = Field(description="variable name -> field of the directory entry")


@register
class LookupKind(Kind):
    name, spec, icon, fill = "lookup", Lookup, "🔎", "#eeeeee"
    description = "look the caller up by phone number and set variables from their entry"

    def ways_out(self, step, flow):
        return [Way(step.next, "found or not", ("next",))]

    def facts(self, spec, step, flow):
        return f"silent: looks the caller up in {spec.directory}"

    def check(self, spec, step, flow, source, at):
        if (Path(source.file).parent / spec.directory).exists():
            return []
        return [source.problem(at + ("lookup", "directory"),
                               f"the directory file '{spec.directory}' does not exist next to the flow")]

    def enter(self, run, spec):
        entry = run.engine.directory(spec.directory).get(run.state.caller) or {}
        for var, field in spec.set.items():
            run.state.variables[var] = str(entry.get(field, ""))
        run.note(facts.LookedUp("caller", known=bool(entry)))
        run.goto(run.step.next)
