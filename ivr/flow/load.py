"""Load a flow file: YAML -> language defaults merged in -> typed model -> graph checks.

Every problem comes back as a FlowError listing file:line:col, what is wrong
and what would be right, so `ivr validate` can print it without a traceback.
"""
from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from ivr.flow.model import Flow
from ivr.flow.template import BUILT_IN
from ivr.flow.template import problems as template_problems
from ivr.flow.source import FlowError, Problem, Source, read_bounded, read_yaml  # noqa: F401 (re-exported)
from ivr.steps import KINDS
from ivr.twilio.limits import flow_limits
from ivr.steps.lookup import read_directory

LADDERS = ("silence", "quiet", "speakerphone", "noisy", "not_understood")  # E2, E3, E4, E5, E6
MAX_STEPS_PER_TURN = 50  # steps the engine enters in one turn; a longer chain (or a loop) is a broken flow
PACKS = Path(__file__).resolve().parent.parent / "etiquette" / "packs"


@dataclass(frozen=True)
class LoadedFlow:
    flow: Flow
    source: Source
    version: str  # content hash of the exact text: what a call pins at its start
    # the caller directories its lookup steps name, read and checked at load: the engine never opens a file
    directories: dict = field(default_factory=dict)  # name as written -> {phone number: {field: text}}

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
    return load_flow_text(read_bounded(path), str(path))


def load_flow_text(text: str, file: str = "<flow>") -> LoadedFlow:
    source = read_yaml(text, file)
    data = source.data
    if not isinstance(data, dict):
        raise FlowError([source.problem((), f"this file holds {_describe(data)}, not a flow; a flow is a set of "
                                            f"settings: name:, language:, start:, offers: and steps: (see README, "
                                            f"'The flow language')")])
    if not FLOW_KEYS & set(data):
        found = ", ".join(str(k) for k in list(data)[:3]) + (", …" if len(data) > 3 else "")
        raise FlowError([source.problem((), f"this does not look like a flow: it has none of name:, language:, "
                                            f"start:, steps: (it has {found}); a caller directory such as "
                                            f"callers.yaml is not a flow: give the flow file instead")])
    early = _number_traps(source)
    data = _with_defaults(data)
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        raise FlowError(_unique(early + [_explain(source, err) for err in exc.errors()])) from None
    problems = early + check_graph(flow, source)
    directories = {}
    for name, step in flow.steps.items():
        if step.kind == "lookup" and step.lookup.directory not in directories:
            data, found = read_directory(file, step.lookup.directory, source, ("steps", name, "lookup", "directory"))
            directories[step.lookup.directory] = data
            problems += found
    if problems:
        raise FlowError(_unique(problems))
    return LoadedFlow(flow, source, hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], directories)


FLOW_KEYS = {"name", "language", "start", "steps"}
KEY_FIELDS = {"keys", "yes_keys", "no_keys", "menu_repeat_keys", "finish_keys"}


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _number_traps(source: Source) -> list[Problem]:
    """`keys: 012` is the number 10 to YAML: key 0 would silently stop working. Phone numbers and
    variables are text the model refuses as numbers (see _explain); keys it takes bare, so check here."""
    out = []
    for path, literal in source.literals.items():
        if path and path[-1] in KEY_FIELDS and isinstance(_value(source.data, path), (int, float)) \
                and literal != str(_value(source.data, path)):
            out.append(source.problem(path, f"{path[-1]}: {literal} unquoted is read by YAML as the number "
                                            f"{_value(source.data, path)!r}, so the keys would not be {literal}; "
                                            f"quote it: {path[-1]}: \"{literal}\""))
    return out


def _value(data, path):
    for part in path:
        data = data[part]
    return data


def _with_defaults(data: dict) -> dict:
    """Language defaults under the flow's etiquette, the flow's under each step's."""
    pack = language_pack(str(data.get("language", "")))
    flow_etiquette = merge(pack, data.get("etiquette") if isinstance(data.get("etiquette"), dict) else {})
    own = data.get("etiquette")
    data = {**data, "etiquette": flow_etiquette if own is None or isinstance(own, dict) else own}  # bad: the model says so
    steps = data.get("steps")
    if isinstance(steps, dict):
        data["steps"] = {
            name: ({**step, "etiquette": merge(flow_etiquette, step["etiquette"])}
                   if isinstance(step, dict) and isinstance(step.get("etiquette"), dict) else step)
            for name, step in steps.items()}
    return data


def _explain(source: Source, err: dict) -> Problem:
    """One pydantic error as a sentence about the flow: none of pydantic's own words reach ops."""
    loc = tuple(err["loc"])
    # pydantic puts model-validator errors at the model and union branches in the path: drop those.
    path = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    field = path[-1] if path else "flow"
    name = f"'{field}'" if not isinstance(field, int) else f"item {field + 1} of '{path[-2]}'"
    literal = source.literals.get(path)
    if kind == "value_error" and not isinstance(value, bool):  # our own validators' words
        return source.problem(path, err["msg"].removeprefix("Value error, "))
    if isinstance(value, bool):
        msg = (f"{name} was read by YAML as {str(value).lower()}: words like yes, no, on and off "
               f"must be in quotes (\"yes\")")
    elif literal is not None and kind in ("string_type", "string_pattern_mismatch"):
        msg = (f"{name}: {literal} unquoted is read by YAML as the number {value!r}, not as text "
               f"(a leading 0 or '+' is lost); quote it: \"{literal}\"")
    elif value is None and kind in ("string_type", "dict_type", "model_type", "list_type"):
        msg = f"{name} is empty; {_MISSING.get(field, 'write a value after the colon, or remove the line')}"
    elif kind == "missing":
        msg = f"{name} is missing here; {_MISSING.get(field, 'add it')}"
    elif kind == "extra_forbidden":
        line, col = source.key_positions.get(path) or source.where(path)
        return Problem(source.file, line, col, _unknown_setting(path, field))
    elif kind == "literal_error":
        allowed = [a.strip(" '") for a in str(ctx.get("expected", "")).replace(" or ", ",").split(",") if a.strip()]
        close = difflib.get_close_matches(str(value), allowed, n=1)
        msg = (f"'{value}' is not allowed for '{field}'; use {' or '.join(allowed)}"
               + (f" (did you mean '{close[0]}'?)" if close else ""))
    elif kind == "string_pattern_mismatch":
        hint = _PATTERN_HINT.get(field, _PATTERN_HINT.get(path[-2] if len(path) > 1 else "", "other text"))
        quotes = "; Chinese quotes \u201c \u201d are not YAML quotes: use \"" if re.search("[\u201c\u201d\u2018\u2019]", str(value)) else ""
        msg = f"'{value}' is not valid for {name}; expected {hint}{quotes}"
    elif kind in ("string_too_short",):
        msg = f"{name} is empty; {_EMPTY.get(field, 'write the words, or remove the line')}"
    elif kind == "too_short":
        msg = f"{name} is empty; {_EMPTY.get(field, 'it needs at least one item')}"
    elif kind == "string_type":
        msg = f"{name} is {_describe(value)}; it should be text{_indent_hint(value)}"
    elif kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        if len(path) == 2 and path[0] == "steps":
            msg = (f"step '{field}' is {_describe(value)}; a step is a set of settings (say:, next:...) on the "
                   f"lines below it (if '{field}' belongs to the step above, indent it like that step's settings)")
        else:
            msg = f"{name} is {_describe(value)}; it should be a set of settings (name: value) on the lines below it"
    elif kind in ("list_type", "tuple_type", "set_type"):
        msg = f"{name} is {_describe(value)}; it should be a list, like [a, b], or lines starting with '- '"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {"greater_than_equal": f"at least {ctx.get('ge')}", "greater_than": f"more than {ctx.get('gt')}",
                 "less_than_equal": f"at most {ctx.get('le')}", "less_than": f"less than {ctx.get('lt')}"}[kind]
        msg = f"{name} is {value}; it must be {bound}"
    elif kind in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float", "finite_number"):
        msg = f"{name} is {_describe(value)}; it should be a number, like 0.5"
    elif kind in ("bool_type", "bool_parsing"):
        msg = f"{name} is {_describe(value)}; it should be true or false"
    else:
        msg = f"{name} cannot be {_describe(value)}; `ivr schema` shows what it takes"
    return source.problem(path, msg)


def _describe(value) -> str:
    if value is None:
        return "nothing (it is empty)"
    if isinstance(value, dict):
        return "a set of settings"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"the number {value}"
    text = str(value)
    return f"the text '{text[:40]}{'…' if len(text) > 40 else ''}'"


def _indent_hint(value) -> str:
    return " (if the lines below belong to it, they are indented too far)" if isinstance(value, dict) else ""


def _model_at(path: tuple):
    """The model class (or type) a path into the flow's data stands for, or None."""
    from typing import Annotated, Union, get_args, get_origin
    import types as _types

    from pydantic import BaseModel

    def unwrap(t):
        while True:
            origin = get_origin(t)
            if origin is Annotated:
                t = get_args(t)[0]
            elif origin in (Union, _types.UnionType):
                args = [a for a in get_args(t) if a is not type(None)]
                t = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), args[0])
            else:
                return t

    t = Flow
    for part in path:
        t = unwrap(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            f = t.model_fields.get(part) if isinstance(part, str) else None
            if f is None:
                return None
            t = f.annotation
        elif get_origin(t) in (list, dict):
            t = get_args(t)[-1]
        else:
            return None
    return unwrap(t)


def _unknown_setting(path: tuple, field) -> str:
    from pydantic import BaseModel

    from ivr.flow.model import Step

    model = _model_at(path[:-1])
    known = list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
    close = difflib.get_close_matches(str(field), known, n=1, cutoff=0.6)
    if model is Step and field not in known:
        guess = f"did you mean '{close[0]}'? " if close else ""
        return (f"'{field}' is not a step kind; {guess}a step is one of: {', '.join(KINDS)} "
                f"(plus next: and etiquette:)")
    if close:
        return f"'{field}' is not a known setting here; did you mean '{close[0]}'?"
    listed = f" (known here: {', '.join(known)})" if known and len(known) <= 12 else ""
    return f"'{field}' is not a known setting here; check the spelling{listed} (`ivr schema` lists them all)"


_MISSING = {
    "name": "add the flow's name, e.g. name: bank_hotline",
    "language": "add language: cmn-CN or language: en-US",
    "start": "name the first step, e.g. start: greeting",
    "steps": "add steps: with at least one step",
    "prompt": "add the question the caller hears",
    "go": "name the step this option leads to, e.g. go: farewell",
    "to": "add the phone number, in quotes, e.g. to: \"+861095500001\"",
    "say": "add the words the caller hears",
    "variable": "name the variable to check, e.g. variable: surname",
    "otherwise": "name the step for any other value",
    "directory": "name the directory file next to the flow, e.g. directory: callers.yaml",
    "set": "list the variables to set, e.g. set: {surname: surname}",
    "offer": "add offer: keep_waiting, try_again, call_back or message",
    "keys": "add the key, in quotes, e.g. keys: \"1\"",
}
_EMPTY = {
    "steps": "a flow needs at least one step",
    "options": "a menu needs at least one option: - {keys: \"1\", words: [...], go: step}",
    "prompt": "write the question the caller hears",
    "say": "write the words the caller hears",
    "reason": "write why, in words the caller hears",
    "ask": "write the question, in words the caller hears",
}


_PATTERN_HINT = {
    "keys": "phone keys: digits 0-9, * or #",
    "to": "a phone number in E.164 form, like +8610XXXXXXXX",
    "transfer_to": "a phone number in E.164 form, like +8610XXXXXXXX",
    "numbers": "a phone number in E.164 form, like +8610XXXXXXXX",
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
    problems += check_offers(flow, source)
    problems += check_templates(flow, source)
    problems += check_turns(flow, source)
    problems += flow_limits(flow, source)  # Twilio's limits
    reached = reachable(flow)
    for name in flow.steps:
        if name not in reached:
            problems.append(source.problem(("steps", name), f"step '{name}' can never be reached: "
                                           f"no step, offer or ladder leads to it; link it or delete it"))
    return problems


_NOT_TEXT = {"rate", "volume", "music", "offer", "keys", "yes_keys", "no_keys", "menu_repeat_keys", "words",
             "yes_words", "no_words", "then", "at_limit_offers", "declined_offers", "unanswered_offers"}


def etiquette_texts(model, path: tuple):
    """(path, text) of every text of an etiquette block that is rendered as a template."""
    from pydantic import BaseModel

    for name in type(model).model_fields:
        if name in _NOT_TEXT:
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from etiquette_texts(value, path + (name,))
        elif isinstance(value, str):
            yield path + (name,), value
        elif isinstance(value, list):
            yield from ((path + (name, i), v) for i, v in enumerate(value) if isinstance(v, str))


def variables_of(flow: Flow) -> set[str]:
    """Every variable a template may name: the flow's, those set by set: and lookup steps, the built-ins."""
    names = set(flow.variables) | set(BUILT_IN)
    for step in flow.steps.values():
        if step.kind == "set":
            names |= set(step.set)
        elif step.kind == "lookup":
            names |= set(step.lookup.set)
    return names


def check_templates(flow: Flow, source: Source) -> list[Problem]:
    """Every text a caller (or an agent, in a whisper) can hear is a template of known variables:
    step texts, set: values, the etiquette's wording (flow-wide and per step) and the fallback apology."""
    known = variables_of(flow)
    texts: list[tuple[tuple, str]] = list(etiquette_texts(flow.etiquette, ("etiquette",)))
    if flow.fallback.say:
        texts.append((("fallback", "say"), flow.fallback.say))
    for name, step in flow.steps.items():
        at = ("steps", name)
        spec = getattr(step, step.kind)
        texts += [(at + path, text) for path, text in KINDS[step.kind].texts(spec, step, flow)]
        if step.kind == "set":
            texts += [(at + ("set", var), value) for var, value in spec.items()]
        elif step.kind == "transfer" and spec.whisper:
            texts.append((at + ("transfer", "whisper"), spec.whisper))
        if step.etiquette is not None and step.etiquette is not flow.etiquette:
            texts += list(etiquette_texts(step.etiquette, at + ("etiquette",)))
    out, seen = [], set()
    for path, text in texts:
        for message in template_problems(text, known):
            key = (source.where(path), message)
            if key not in seen:  # a step's etiquette repeats the flow's wording: say it once
                seen.add(key)
                out.append(source.problem(path, message))
    return out


OFFERS_EXAMPLE = ("offers: {call_back: arrange_call_back, leave_message: take_message}, with steps of your "
                  "own such as arrange_call_back: {callback: {say: ...}, next: farewell} and take_message: "
                  "{record: {prompt: ...}, next: farewell}")


def check_offers(flow: Flow, source: Source) -> list[Problem]:
    """`offers:` is needed only where a hold or transfer offers a call back or a message; then say why."""
    from ivr.steps.consent import OFFER_STEPS

    problems, told = [], set()
    for name, step in flow.steps.items():
        if step.kind not in ("hold", "transfer"):
            continue
        spec, et = getattr(step, step.kind), step.etiquette or flow.etiquette
        lists = ([] if spec.if_declined else [("declines", et.hold.declined_offers)]) + (
            [] if spec.if_limit else [("waits to the limit", et.hold.at_limit_offers)]) if step.kind == "hold" else (
            [] if spec.if_unanswered else [("is not answered", et.transfer.unanswered_offers)])
        for when, offers in lists:
            for offer in offers:
                field_ = OFFER_STEPS.get(offer.offer)
                if field_ and getattr(flow.offers, field_) is None and field_ not in told:
                    told.add(field_)
                    words = "a call back" if field_ == "call_back" else "to leave a message"
                    alt = {"hold": "if_declined: and if_limit:", "transfer": "if_unanswered:"}[step.kind]
                    problems.append(source.problem(("steps", name, step.kind),
                        f"when the caller {when}, this {step.kind} offers {words} (press {offer.keys}), but the flow "
                        f"does not say which step that is: 'offers: {field_}' is missing; add {OFFERS_EXAMPLE} "
                        f"(or give this {step.kind} its own {alt})"))
    return problems


def check_turns(flow: Flow, source: Source) -> list[Problem]:
    """Issue 12, item 13: a flow the engine can never run does not validate. Steps that go on at
    once (say, set, branch, lookup, callback) must not loop without a step that listens or ends,
    nor chain more than the engine's MAX_STEPS_PER_TURN in one turn. Linear: one iterative walk."""
    on = {name: step for name, step in flow.steps.items() if KINDS[step.kind].goes_on}
    nexts = {name: [w.to for w in KINDS[step.kind].ways_out(step, flow) if w.to in flow.steps]
             for name, step in on.items()}
    longest: dict[str, int] = {}  # steps a turn enters from here, the step that stops it included
    colour: dict[str, int] = {}  # 1 on the walk, 2 done
    problems, loops = [], set()
    for root in on:
        if root in colour:
            continue
        stack = [(root, iter(nexts[root]))]
        colour[root] = 1
        while stack:
            name, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                colour[name] = 2
                longest[name] = max((1 + (longest.get(dest, 0) if dest in on else 1) for dest in nexts[name]),
                                    default=1)
            elif nxt in on and colour.get(nxt) == 1:
                cycle = [n for n, _ in stack][[n for n, _ in stack].index(nxt):]
                key = frozenset(cycle)
                if key not in loops:
                    loops.add(key)
                    problems.append(source.problem(("steps", nxt), "steps " + " → ".join(
                        f"'{n}'" for n in cycle + [nxt]) + " go round without ever listening to the caller, so a call "
                        "would never move on; put a menu, hold, transfer, record or goodbye in the loop"))
            elif nxt in on and nxt not in colour:
                colour[nxt] = 1
                stack.append((nxt, iter(nexts[nxt])))
    if not problems:
        entered_from_another = {dest for dests in nexts.values() for dest in dests if dest in on}
        for name, n in longest.items():
            if n > MAX_STEPS_PER_TURN and name not in entered_from_another:
                problems.append(source.problem(("steps", name), f"from step '{name}', {n} steps follow one another "
                    f"without listening to the caller; the engine takes at most {MAX_STEPS_PER_TURN} in one turn: "
                    f"put a menu (or another step that listens) in between"))
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
