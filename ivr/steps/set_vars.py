"""`set`: give variables a value (templates allowed), silently."""
from __future__ import annotations

from ivr.steps.base import Kind, register


@register
class SetKind(Kind):
    goes_on = True
    name, spec, icon, fill = "set", dict[str, str], "✏️", "#eeeeee"
    description = "variable name -> value, e.g. {surname: 王}"

    def facts(self, spec, step, flow):
        return f"silent: sets {', '.join(spec)}"

    def enter(self, run, spec):
        run.state.variables.update({k: run.text(v) for k, v in spec.items()})
        run.goto(run.step.next)
