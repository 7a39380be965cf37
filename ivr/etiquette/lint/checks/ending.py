"""E11 ending: every goodbye thanks the caller and says goodbye, then waits; every path
can reach a goodbye step (one backward walk over the flow: linear in its size)."""
from __future__ import annotations

from collections import deque

from ivr.etiquette.lint.engine import Lint, changed, check, etiquettes
from ivr.etiquette.lint.rules import Rules
from ivr.flow.load import LADDERS, step_targets
from ivr.flow.model import Flow, Step
from ivr.steps import KINDS


def _goodbye_problem(rules: Rules, text: str) -> str | None:
    missing = [what for what, key in (("thank the caller", "thanks"), ("say goodbye", "farewell"))
               if not rules.has_any(text, rules.words("goodbye", key))]
    return " and does not ".join(missing) if missing else None


@check
def e11_goodbye(lint: Lint) -> None:
    rules, flow = lint.rules, lint.flow
    example = rules.section("goodbye").get("example", "")
    for at, et, parent in etiquettes(flow):
        problem = _goodbye_problem(rules, et.goodbye.say)
        if problem and changed(et, parent, ("goodbye", "say")):
            lint.report("E11", "goodbye-incomplete", "error", at + ("goodbye", "say"),
                        f"the goodbye does not {problem}", f"say e.g. {example}")
        if et.goodbye.wait < 2 and changed(et, parent, ("goodbye", "wait")):
            lint.report("E11", "goodbye-short-wait", "warning", at + ("goodbye", "wait"),
                        f"only {et.goodbye.wait:g} s after the goodbye before we hang up",
                        "wait: 3s, so the caller hangs up first")
    for name, step in flow.steps.items():
        if step.kind == "goodbye" and step.goodbye:
            problem = _goodbye_problem(rules, step.goodbye)
            if problem:
                lint.report("E11", "goodbye-incomplete", "error", ("steps", name, "goodbye"),
                            f"the goodbye does not {problem}", f"say e.g. {example}")


def successors(flow: Flow, step: Step) -> list[str]:
    out = [way.to for way in KINDS[step.kind].ways_out(step, flow)] + [d for _, d in step_targets(step, flow)]
    if KINDS[step.kind].listens and step.etiquette is None:
        out += [getattr(flow.etiquette, ladder).then for ladder in LADDERS]
    return [d for d in out if d in flow.steps]


def reach_goodbye(flow: Flow) -> set[str]:
    """The steps from which some way leads to a goodbye step: a breadth-first walk backwards
    from the goodbye steps, each edge looked at once."""
    before: dict[str, list[str]] = {}
    for name, step in flow.steps.items():
        for dest in successors(flow, step):
            before.setdefault(dest, []).append(name)
    ends = {name for name, step in flow.steps.items() if step.kind == "goodbye"}
    todo = deque(ends)
    while todo:
        for prev in before.get(todo.popleft(), ()):
            if prev not in ends:
                ends.add(prev)
                todo.append(prev)
    return ends


@check
def e11_paths_end_with_goodbye(lint: Lint) -> None:
    flow = lint.flow
    ends = reach_goodbye(flow)

    def report(path, dest):
        lint.report("E11", "no-goodbye-path", "warning", path,
                    f"from step '{dest}' no way leads to a goodbye step; the call can only end "
                    f"by hanging up on the caller or the caller hanging up",
                    "link this chain to a goodbye step (e.g. a menu option going to the farewell step)")

    roots = [(("start",), flow.start), (("offers", "call_back"), flow.offers.call_back),
             (("offers", "leave_message"), flow.offers.leave_message)]
    roots += [(("etiquette", ladder, "then"), getattr(flow.etiquette, ladder).then) for ladder in LADDERS]
    for path, dest in roots:
        if dest in flow.steps and dest not in ends:
            report(path, dest)
    for name, step in flow.steps.items():
        if name in ends:
            for path, dest in step_targets(step, flow):
                if dest in flow.steps and dest not in ends:
                    report(("steps", name) + path, dest)
