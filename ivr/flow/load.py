"""Load a flow file: YAML -> language defaults merged in -> typed model -> graph checks.

Every problem comes back as a FlowError listing file:line:col, what is wrong
and what would be right, so `ivr validate` can print it without a traceback.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from ivr.flow.model import Flow
from ivr.flow.source import FlowError, Problem, Source, read_yaml
from ivr.steps import KINDS

LADDERS = ("silence", "quiet", "noisy", "not_understood")
PACKS = Path(__file__).resolve().parent.parent / "etiquette" / "packs"


@dataclass(frozen=True)
class LoadedFlow:
    flow: Flow
    source: Source
    version: str  # content hash of the exact text: what a call pins at its start

    @property
    def path(self) -> str:
        return self.source.file


@lru_cache(maxsize=None)
def language_pack(language: str) -> dict:
    """The etiquette defaults (reference wording of ETIQUETTE.md) for a language."""
    path = PACKS / f"{language}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in (over or {}).items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def is_flow_file(path: Path) -> bool:
    """A flow has `steps:`; other YAML next to flows (callers.yaml) is not one."""
    try:
        return re.search(r"^steps\s*:", path.read_text(encoding="utf-8"), re.M) is not None
    except (OSError, UnicodeDecodeError):
        return True  # let the loader say what is wrong with it


def flows_in(directory: str | Path) -> list[Path]:
    """The flow files (*.yaml, *.yml) of a folder, in name order."""
    directory = Path(directory)
    return [p for p in sorted({*directory.glob("*.yaml"), *directory.glob("*.yml")}) if is_flow_file(p)]


def load_flow(path: str | Path) -> LoadedFlow:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlowError([Problem(str(path), 1, 1, "no such file; give the path of a flow .yaml file")]) from None
    except UnicodeDecodeError as exc:
        raise FlowError([Problem(str(path), 1, 1, f"not UTF-8 text ({exc.reason}); save the file as UTF-8")]) from None
    return load_flow_text(text, str(path))


def load_flow_text(text: str, file: str = "<flow>") -> LoadedFlow:
    source = read_yaml(text, file)
    data = source.data
    if not isinstance(data, dict):
        raise FlowError([source.problem((), "a flow is a mapping with name, language, start, offers and steps")])
    data = _with_defaults(data)
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        raise FlowError([_explain(source, err) for err in exc.errors()]) from None
    problems = check_graph(flow, source)
    if problems:
        raise FlowError(problems)
    return LoadedFlow(flow, source, hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])


def _with_defaults(data: dict) -> dict:
    """Language defaults under the flow's etiquette, the flow's under each step's."""
    pack = language_pack(str(data.get("language", "")))
    flow_etiquette = merge(pack, data.get("etiquette") if isinstance(data.get("etiquette"), dict) else {})
    data = {**data, "etiquette": flow_etiquette}
    steps = data.get("steps")
    if isinstance(steps, dict):
        data["steps"] = {
            name: ({**step, "etiquette": merge(flow_etiquette, step["etiquette"])}
                   if isinstance(step, dict) and isinstance(step.get("etiquette"), dict) else step)
            for name, step in steps.items()}
    return data


def _explain(source: Source, err: dict) -> Problem:
    loc = tuple(err["loc"])
    # pydantic puts model-validator errors at the model and union branches in the path: drop those.
    path = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    field = path[-1] if path else "flow"
    if isinstance(err.get("input"), bool):
        msg = (f"'{field}' was read by YAML as {str(err['input']).lower()}: words like yes, no, on and off "
               f"must be in quotes (\"yes\")")
    elif kind == "missing":
        msg = f"'{field}' is missing here"
    elif kind == "extra_forbidden":
        msg = f"'{field}' is not a known setting here; check the spelling (`ivr schema` lists them all)"
    elif kind == "literal_error":
        msg = f"'{err.get('input')}' is not allowed for '{field}': {msg}"
    elif kind == "string_pattern_mismatch":
        msg = f"'{err.get('input')}' is not valid for '{field}' (expected {_PATTERN_HINT.get(field, msg)})"
    elif kind in ("string_type", "dict_type", "list_type", "model_type", "float_parsing", "int_parsing"):
        msg = f"'{field}': {msg.lower()}"
    return source.problem(path, msg)


_PATTERN_HINT = {
    "keys": "phone keys: digits 0-9, * or #",
    "to": "a phone number in E.164 form, like +8610XXXXXXXX",
    "transfer_to": "a phone number in E.164 form, like +8610XXXXXXXX",
    "name": "letters, digits, '_', '-' or '.'",
}


def check_graph(flow: Flow, source: Source) -> list[Problem]:
    """What the types cannot see: targets that do not exist, steps nobody reaches,
    holds and transfers missing what etiquette requires (E9, E10)."""
    problems: list[Problem] = []
    names = set(flow.steps)

    def target(path, name):
        if name is not None and name not in names:
            problems.append(source.problem(path, f"there is no step named '{name}'; "
                                                 f"known steps: {', '.join(sorted(names))}"))

    target(("start",), flow.start)
    target(("offers", "call_back"), flow.offers.call_back)
    target(("offers", "leave_message"), flow.offers.leave_message)
    for ladder in LADDERS:
        target(("etiquette", ladder, "then"), getattr(flow.etiquette, ladder).then)
    for name, step in flow.steps.items():
        at = ("steps", name)
        for path, dest in step_targets(step, flow):
            target(at + path, dest)
        kind = KINDS[step.kind]
        problems += kind.check(getattr(step, step.kind), step, flow, source, at)
    problems += __import__("ivr.twilio.limits", fromlist=["x"]).flow_limits(flow, source)  # Twilio's limits
    reached = reachable(flow)
    for name in flow.steps:
        if name not in reached:
            problems.append(source.problem(("steps", name), f"step '{name}' can never be reached: "
                                           f"no step, offer or ladder leads to it; link it or delete it"))
    return problems


def step_targets(step, flow) -> list[tuple[tuple, str]]:
    """(path inside the step, step name) for every way out of a step that the flow writes itself."""
    out = [(way.path, way.to) for way in KINDS[step.kind].ways_out(step, flow) if way.path is not None and way.to]
    if step.etiquette:
        for ladder in LADDERS:
            then = getattr(step.etiquette, ladder).then
            if then:
                out.append((("etiquette", ladder, "then"), then))
    return out


def reachable(flow: Flow) -> set[str]:
    seen: set[str] = set()
    todo = [flow.start, flow.offers.call_back, flow.offers.leave_message]
    todo += [getattr(flow.etiquette, ladder).then for ladder in LADDERS]
    while todo:
        name = todo.pop()
        if name and name not in seen and name in flow.steps:
            seen.add(name)
            todo += [dest for _, dest in step_targets(flow.steps[name], flow)]
    return seen
