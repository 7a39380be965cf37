"""`branch`: choose the next step by a variable's value, silently."""
from __future__ import annotations

from pydantic import Field

from ivr.flow.types import StepName, Strict
from ivr.steps.base import Kind, Way, register


class Branch(Strict):
    variable: str
    cases: dict[str, StepName] = Field(default_factory=dict)
    otherwise: StepName


def case_label(variable: str, value: str) -> str:
    return f"{variable} is empty" if value == "" else f"{variable} = {value}"


@register
class BranchKind(Kind):
    goes_on = True
    name, spec, icon, fill = "branch", Branch, "🔀", "#eeeeee"
    description = "go to a step by the value of a variable"
    needs_next = False

    def ways_out(self, step, flow):
        spec = step.branch
        return ([Way(dest, case_label(spec.variable, value), ("branch", "cases", value))
                 for value, dest in spec.cases.items()]
                + [Way(spec.otherwise, "otherwise", ("branch", "otherwise"))])

    def facts(self, spec, step, flow):
        return f"silent: checks {{{spec.variable}}}"

    def enter(self, run, spec):
        run.goto(spec.cases.get(str(run.state.variables.get(spec.variable, "")), spec.otherwise))
