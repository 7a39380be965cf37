"""`ivr lint`: the static etiquette linter.

Every prompt and setting of a flow is checked against the rules of ETIQUETTE.md;
each finding cites its rule ID (E1..E15, or `load` for a file that does not load)
and points at the line of the offending value.

The word lists and settings are data: ivr/etiquette/rules/<language>.yaml, which
ops may extend, plus an optional extra rules file and the flow's own `jargon:`.
The checks themselves are small functions registered with `@check`.
"""
from __future__ import annotations

import json
import re
import sys
import unicodedata
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import yaml

from ivr.flow import FlowError, LoadedFlow, Problem, load_flow
from ivr.flow.load import LADDERS, flows_in, is_flow_file, language_pack, step_targets
from ivr.steps import KINDS
from ivr.flow.model import Etiquette, Flow, Step

RULES_DIR = Path(__file__).resolve().parent / "rules"


@dataclass(frozen=True)
class Finding:
    rule: str       # "E9", or "load" for a file that does not load
    name: str       # "hold-no-limit"
    severity: str   # "error" | "warning"
    file: str
    line: int
    col: int
    message: str    # what is wrong
    fix: str        # how to fix it

    def __str__(self) -> str:
        return (f"{self.file}:{self.line}:{self.col}: {self.severity} {self.rule} {self.name}: "
                f"{self.message} — {self.fix}")


# --- rules data ------------------------------------------------------------------

class RulesError(Exception):
    """A rules file that cannot be used; reported as a `load` finding on that file."""

    def __init__(self, file: str, message: str):
        self.file, self.message = file, message
        super().__init__(f"{file}: {message}")


def _normal(text: str) -> str:
    """Full-width punctuation as ASCII, curly apostrophes straight, lower case."""
    return unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'").lower()


_VARIABLE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")


class Rules:
    """The rules data of one language: word lists, and how phrases are matched."""

    def __init__(self, language: str, data: dict):
        self.language = language
        self.data = data
        self.whole_words = data.get("match") == "words"

    def section(self, key: str) -> dict:
        value = self.data.get(key)
        return value if isinstance(value, dict) else {}

    def words(self, *keys: str) -> list[str]:
        value = self.data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return [str(v) for v in value or [] if v is not None]

    def find(self, text: str, phrase: str) -> list[tuple[int, int]]:
        """Spans of `phrase` in `text` (both normalised; whole words in English)."""
        text, phrase = _normal(text), _normal(phrase).strip()
        if not phrase:
            return []
        if self.whole_words:
            pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in phrase.split()) + r"(?!\w)"
        else:
            pattern = re.escape(phrase)
        return [m.span() for m in re.finditer(pattern, text)]

    def has_any(self, text: str, phrases: list[str]) -> bool:
        return any(self.find(text, p) for p in phrases)

    def starts_with_any(self, text: str, phrases: list[str]) -> str | None:
        lead = len(_normal(text)) - len(_normal(text).lstrip())
        return next((p for p in phrases if any(start == lead for start, _ in self.find(text, p))), None)


def _combine(base, more):
    """Dicts merge key by key, lists are added together, anything else is replaced."""
    if isinstance(base, dict) and isinstance(more, dict):
        out = dict(base)
        for key, value in more.items():
            out[key] = _combine(out[key], value) if key in out else value
        return out
    if isinstance(base, list) and isinstance(more, list):
        return base + [v for v in more if v not in base]
    return more


def _read_rules(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(str(path), "no such rules file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RulesError(str(path), f"the rules file cannot be read: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RulesError(str(path), "a rules file is a mapping (wording:, greeting:, goodbye: ...)")
    for category, spec in (data.get("wording") or {}).items():
        for phrase in (spec or {}).get("phrases") or []:
            if not isinstance(phrase, (str, int, float)) and not (isinstance(phrase, dict) and "phrase" in phrase):
                raise RulesError(str(path), f"wording.{category}: {phrase!r} is not a phrase; write text, "
                                            f"or {{phrase: ..., rule: E13, fix: ...}}")
    return data


def load_rules(language: str, extra: str | None = None) -> Rules:
    """The built-in rules of a language, with an extra rules file's lists added."""
    own = RULES_DIR / f"{language}.yaml"
    data = _read_rules(own) if own.exists() else {}
    if extra:
        more = _read_rules(Path(extra))
        if more.get("language") in (None, language):
            data = _combine(data, {k: v for k, v in more.items() if k != "language"})
    return Rules(language, data)


# --- the context a check works in --------------------------------------------------

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
        path = tuple(path)
        while path:
            if path in self.loaded.source.positions:
                return self.loaded.source.positions[path]
            path = path[:-1]
        return (1, 1)

    def report(self, rule: str, name: str, severity: str, path, message: str, fix: str) -> None:
        line, col = self.where(path)
        self.findings.append(Finding(rule, name, severity, self.loaded.path, line, col, message, fix))


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
    ("hold", "returning"), ("hold", "at_limit"), ("hold", "declined"), ("transfer", "unanswered"), ("transfer", "unanswered_apology"),
    ("transfer", "connecting"), ("apology",)]  # transfer.whisper_accept is for the agent, not the caller


def _get(obj, path):
    for key in path:
        if obj is None:
            return None
        obj = obj[key] if isinstance(key, int) else getattr(obj, key, None)
    return obj


def etiquette_texts(et: Etiquette) -> dict[tuple, str]:
    out = {path: _get(et, path) for path in ETIQUETTE_TEXTS}
    for ladder in LADDERS:
        for i, text in enumerate(getattr(et, ladder).retries):
            out[(ladder, "retries", i)] = text
    return {path: text for path, text in out.items() if text}


@lru_cache(maxsize=None)
def _pack_etiquette(language: str) -> Etiquette:
    return Etiquette.model_validate(language_pack(language))


def etiquettes(flow: Flow):
    """(path, etiquette, what it overrides or None) for the flow and each step that has one."""
    yield ("etiquette",), flow.etiquette, None
    for name, step in flow.steps.items():
        if step.etiquette is not None:
            yield ("steps", name, "etiquette"), step.etiquette, flow.etiquette


def changed(et: Etiquette, parent: Etiquette | None, *paths) -> bool:
    """Whether a step's etiquette sets any of these itself (not just inherits them)."""
    return parent is None or any(_get(et, p) != _get(parent, p) for p in paths)


def step_texts(name: str, step: Step, flow: Flow, opening: bool = False) -> list[tuple[tuple, str]]:
    """(path, text) of everything this step says to the caller (not the agent's whisper);
    with `opening`, only what is said as the step starts."""
    kind = KINDS[step.kind]
    texts = (kind.opening if opening else kind.texts)(getattr(step, step.kind), step, flow)
    return [(("steps", name) + path, text) for path, text in texts]


def prompts(lint: Lint) -> list[tuple[tuple, str]]:
    """Every text the caller can hear, with its path: the steps', the fallback's, and the
    etiquette texts the flow (or a step) words differently from the language pack."""
    flow = lint.flow
    out = []
    for name, step in flow.steps.items():
        out += step_texts(name, step, flow)
    if flow.fallback.say:
        out.append((("fallback", "say"), flow.fallback.say))
    pack = etiquette_texts(_pack_etiquette(flow.language))
    for at, et, parent in etiquettes(flow):
        base = pack if parent is None else etiquette_texts(parent)
        out += [(at + path, text) for path, text in etiquette_texts(et).items() if base.get(path) != text]
    return out


# --- E1 greeting ---------------------------------------------------------------------

def openings(flow: Flow, limit: int = 200):
    """Each way a call can begin: (route, what is said before the first listening step,
    what that step says). Lookup, set, branch, say and callback steps are followed."""
    found = []

    def walk(name, route, said):
        step = flow.steps.get(name)
        if step is None or name in route or len(found) >= limit:
            return
        route = route + [name]
        texts = step_texts(name, step, flow, opening=True)
        if not KINDS[step.kind].listens and step.kind not in ("record", "goodbye"):  # say, callback, lookup, set, branch
            for dest in dict.fromkeys(way.to for way in KINDS[step.kind].ways_out(step, flow)):
                walk(dest, route, said + texts)
        else:
            heard = texts
            if step.kind == "goodbye" and not texts:
                heard = [(("etiquette", "goodbye", "say"), flow.etiquette.goodbye.say)]
            found.append((route, said, heard))

    walk(flow.start, [], [])
    return found


@check
def e1_greeting(lint: Lint) -> None:
    rules, flow = lint.rules, lint.flow
    g = rules.section("greeting")
    example = g.get("example", "")
    org_var, agent_var = g.get("org_variable", "org"), g.get("agent_variable", "agent")
    for route, said, listening in openings(flow):
        heard = said + listening
        if not heard:
            continue
        where, first = heard[0]
        text = " ".join(t for _, t in heard)
        way = " → ".join(route)
        bare = rules.starts_with_any(first, rules.words("greeting", "bare_openings"))
        if bare:
            lint.report("E1", "bare-opening", "error", where,
                        f"the call opens with a bare \"{bare}\" (start → {way})", f"open with: {example}")
        if not rules.has_any(text, rules.words("greeting", "greet")):
            lint.report("E1", "greeting-no-hello", "error", where,
                        f"the opening does not greet the caller ({' / '.join(rules.words('greeting', 'greet'))}) "
                        f"(start → {way})", f"open with: {example}")
        org = flow.variables.get(org_var, "")
        if not org or not ("{" + org_var + "}" in text or org in text):
            lint.report("E1", "greeting-no-org", "error", where,
                        f"the opening does not name the organisation (start → {way})"
                        + ("" if org else f"; variables has no '{org_var}' value"),
                        ("" if org else f"define variables.{org_var} and ")
                        + f"say {{{org_var}}} in the greeting, e.g. {example}")
        if not rules.has_any(text, rules.words("greeting", "offer_help")):
            lint.report("E1", "greeting-no-offer", "error", where,
                        f"the opening does not offer help (start → {way})", f"end the greeting like: {example}")
        agent = flow.variables.get(agent_var, "")
        if not ("{" + agent_var + "}" in text or (agent and agent in text)):
            lint.report("E1", "greeting-no-agent", "warning", where,
                        f"the opening does not say who is serving the caller (start → {way})",
                        f"say {{{agent_var}}} in the greeting, e.g. {example}")


# --- E2, E3, E5, E6 listening ladders; E11 their last words ---------------------------

LADDER_RULES = {"silence": "E2", "quiet": "E3", "noisy": "E5", "not_understood": "E6"}
LADDER_WHAT = {"silence": "silent line", "quiet": "caller too quiet", "noisy": "noisy line",
               "not_understood": "speech not understood"}


@check
def ladders(lint: Lint) -> None:
    rules = lint.rules
    farewell = rules.words("goodbye", "farewell")
    for at, et, parent in etiquettes(lint.flow):
        silence = et.silence
        if not silence.retries and changed(et, parent, ("silence", "retries")):
            lint.report("E2", "silence-no-retry", "error", at + ("silence", "retries"),
                        "a silent line is not prompted again before the call ends",
                        "add a retry, e.g. retries: [\"您好,请问有什么可以帮助您?\"] / [\"Hello, how may I help you?\"]")
        if silence.listen < 5 and changed(et, parent, ("silence", "listen")):
            lint.report("E2", "silence-short-listen", "warning", at + ("silence", "listen"),
                        f"listening only {silence.listen:g} s after a prompt", "listen at least 5s")
        for ladder in LADDERS:
            rule, lad = LADDER_RULES[ladder], getattr(et, ladder)
            here = at + (ladder,)
            if lad.then:
                continue  # the `then` step takes over; the last words are never said
            if not lad.final and changed(et, parent, (ladder, "final"), (ladder, "then")):
                lint.report(rule, "hang-up-without-words", "error", here + ("final",),
                            f"{LADDER_WHAT[ladder]}: the call is hung up with no last words and no `then`",
                            "add final: words that explain, apologise and say goodbye, or then: a step")
            if lad.final and lad.final_listen < 5 and changed(et, parent, (ladder, "final_listen"), (ladder, "final")):
                lint.report(rule, "short-last-chance", "warning", here + ("final_listen",),
                            f"{LADDER_WHAT[ladder]}: listening only {lad.final_listen:g} s after the last words",
                            "final_listen: 5s (the caller may still answer)")
            if lad.final and not rules.has_any(lad.final, farewell) and changed(et, parent, (ladder, "final")):
                lint.report("E11", "final-without-goodbye", "error", here + ("final",),
                            f"{LADDER_WHAT[ladder]}: the last words before hanging up do not say goodbye "
                            f"({' / '.join(farewell)})", f"end the final words with {farewell[0] if farewell else 'goodbye'}")
        noisy = et.noisy
        if not noisy.then and changed(et, parent, ("noisy", "retries")):
            first = noisy.retries[0] if noisy.retries else ""
            if not rules.has_any(first, rules.words("keypad")):
                lint.report("E5", "noisy-no-keypad", "warning", at + ("noisy", "retries", 0),
                            "on a noisy line the first retry does not offer the keypad",
                            "add e.g. 您也可以按键选择 / You can also use your keypad")


# --- E9 hold, E10 transfer ---------------------------------------------------------------

@check
def e9_hold(lint: Lint) -> None:
    for name, step in lint.flow.steps.items():
        if not step.hold:
            continue
        at, hold = ("steps", name, "hold"), step.hold
        for field_, what, fix in (("reason", "why the caller must wait", "reason: 我需要为您查询一下账户信息,"),
                                  ("ask", "a question asking if they mind", "ask: 麻烦您稍等一下好吗?"),
                                  ("limit", "a promised longest wait", "limit: 1m")):
            if getattr(hold, field_) is None:
                lint.report("E9", HOLD_NAMES[field_], "error", at, f"the hold has no {what}", f"add {fix}")
        if hold.limit is not None and hold.limit > 300:
            lint.report("E9", "hold-long-limit", "warning", at + ("limit",),
                        f"the caller is asked to wait up to {hold.limit / 60:g} min",
                        "keep holds within 5 minutes; offer a call back instead")
        if hold.check_in_every is not None and hold.check_in_every > 30:
            lint.report("E9", "hold-rare-check-in", "error", at + ("check_in_every",),
                        f"the caller on hold hears from us only every {hold.check_in_every:g} s",
                        "check_in_every: 30s or less")
    for at, et, parent in etiquettes(lint.flow):
        every = et.hold.check_in_every
        if every > 30 and changed(et, parent, ("hold", "check_in_every")):
            lint.report("E9", "hold-rare-check-in", "error", at + ("hold", "check_in_every"),
                        f"callers on hold hear from us only every {every:g} s", "check_in_every: 30s or less")


HOLD_NAMES = {"reason": "hold-no-reason", "ask": "hold-no-consent", "limit": "hold-no-limit"}
TRANSFER_NAMES = {"reason": "transfer-no-reason", "ask": "transfer-no-consent"}


def _ring_limit_problem(seconds: float) -> str | None:
    if seconds > 60:
        return f"the transfer rings for up to {seconds:g} s before the caller is told"
    if seconds < 10:
        return f"the transfer rings for only {seconds:g} s; the agent has no time to answer"
    return None


@check
def e10_transfer(lint: Lint) -> None:
    for name, step in lint.flow.steps.items():
        if not step.transfer:
            continue
        at, tr = ("steps", name, "transfer"), step.transfer
        for field_, what in (("reason", "why it is needed"), ("ask", "a question asking if they mind")):
            if getattr(tr, field_) is None:
                lint.report("E10", TRANSFER_NAMES[field_], "error", at, f"the transfer has no {what}",
                            f"add {field_}:")
        if tr.ring_limit is not None and (problem := _ring_limit_problem(tr.ring_limit)):
            lint.report("E10", "transfer-ring-limit", "warning", at + ("ring_limit",), problem,
                        "ring_limit between 10s and 60s (default 30s)")
        if not tr.whisper:
            lint.report("E10", "transfer-no-whisper", "warning", at,
                        "the receiving agent is not told who is calling and why",
                        "add whisper: e.g. 客户来电需要人工服务,来电号码{caller} / Customer call from {caller}, ...")
    for at, et, parent in etiquettes(lint.flow):
        problem = _ring_limit_problem(et.transfer.ring_limit)
        if problem and changed(et, parent, ("transfer", "ring_limit")):
            lint.report("E10", "transfer-ring-limit", "warning", at + ("transfer", "ring_limit"), problem,
                        "ring_limit between 10s and 60s (default 30s)")


# --- E11 ending --------------------------------------------------------------------------

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


@check
def e11_paths_end_with_goodbye(lint: Lint) -> None:
    flow = lint.flow
    ends = {name for name, step in flow.steps.items() if step.kind == "goodbye"}
    grew = True
    while grew:
        grew = False
        for name, step in flow.steps.items():
            if name not in ends and any(d in ends for d in successors(flow, step)):
                ends.add(name)
                grew = True

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


# --- E13 wording, E8 addressing the caller --------------------------------------------

def _phrases(spec: dict) -> list[dict]:
    out = []
    for item in spec.get("phrases") or []:
        out.append(dict(item) if isinstance(item, dict) else {"phrase": str(item)})
    return out


@check
def e13_wording(lint: Lint) -> None:
    rules, flow = lint.rules, lint.flow
    categories = dict(rules.section("wording"))
    if flow.jargon:
        jargon = dict(categories.get("jargon") or {"rule": "E13", "name": "jargon", "severity": "error",
                                                  "what": "jargon", "fix": "say it in everyday words"})
        jargon["phrases"] = list(jargon.get("phrases") or []) + list(flow.jargon)
        categories["jargon"] = jargon
    for path, raw in prompts(lint):
        text = _VARIABLE.sub(" ", raw)  # {variables} are names, not words the caller hears
        for spec in categories.values():
            spec = spec or {}
            taken: list[tuple[int, int]] = []
            entries = sorted(_phrases(spec), key=lambda e: -len(str(e["phrase"])))
            for entry in entries:
                phrase = str(entry["phrase"])
                spans = [s for s in rules.find(text, phrase)
                         if not any(s[0] < e and b < s[1] for b, e in taken)]
                if not spans:
                    continue
                taken += spans
                lint.report(str(entry.get("rule") or spec.get("rule", "E13")), spec.get("name", "wording"),
                            entry.get("severity") or spec.get("severity", "error"), path,
                            f"{spec.get('what', 'wording')}: \"{phrase}\" in {dotted(path)}",
                            entry.get("fix") or spec.get("fix", "reword it"))
        polite = rules.section("polite_question")
        markers = rules.words("polite_question", "markers")
        if markers:
            for question in re.findall(r"[^?!.;。]*\?", _normal(text)):
                if not rules.has_any(question, markers):
                    lint.report(polite.get("rule", "E13"), polite.get("name", "impolite-question"),
                                polite.get("severity", "warning"), path,
                                f"the question \"{question.strip()}\" in {dotted(path)} is not asked politely "
                                f"({' / '.join(markers)})", polite.get("fix", "ask politely"))


@check
def e8_address(lint: Lint) -> None:
    spec = lint.rules.section("address")
    var = spec.get("variable", "surname")
    after = [_normal(t) for t in lint.rules.words("address", "titles_after")]
    before = [_normal(t) for t in lint.rules.words("address", "titles_before")]
    for path, text in prompts(lint):
        for m in re.finditer(r"\{" + re.escape(var) + r"\}", text):
            following = _normal(text[m.end():]).lstrip()
            preceding = _normal(text[:m.start()]).rstrip()
            if any(following.startswith(t) for t in after) or any(preceding.endswith(t) for t in before):
                continue
            titles = " / ".join(lint.rules.words("address", "titles_after") + lint.rules.words("address", "titles_before"))
            lint.report("E8", "surname-without-title", "warning", path,
                        f"{{{var}}} in {dotted(path)} is said without a title",
                        f"address the caller with a title: {titles}")


# --- E15 complaints ------------------------------------------------------------------------

@check
def e15_complaint(lint: Lint) -> None:
    markers = lint.rules.words("complaint_markers")
    for name, step in lint.flow.steps.items():
        if not step.record:
            continue
        words = [name] + [t for _, t in step_texts(name, step, lint.flow)]
        if not any(_normal(m) in _normal(w) for m in markers for w in words):
            continue
        at = ("steps", name, "record")
        if not step.record.empathy:
            lint.report("E15", "complaint-no-empathy", "error", at,
                        f"the complaint recording in step '{name}' starts without a word of empathy",
                        "add empathy: 我非常理解您现在的心情, / I completely understand how you feel.")
        if not step.record.reply_promise:
            lint.report("E15", "complaint-no-reply-promise", "error", at,
                        f"the caller who complains in step '{name}' is not told when they will hear back",
                        "add reply_promise: 我们会在两个工作日内给您回复 / We will get back to you within two working days.")


# --- running the checks ------------------------------------------------------------------

def _unique_sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(set(findings), key=lambda f: (f.file, f.line, f.col, f.rule, f.name, f.message))


def lint_flow(loaded: LoadedFlow, rules: Rules | str | Path | None = None) -> list[Finding]:
    """All findings for a loaded flow. `rules`: the Rules to use, or the path of an extra
    rules file added to the flow language's own; by default the language's own."""
    if not isinstance(rules, Rules):
        rules = load_rules(loaded.flow.language, str(rules) if rules else None)
    lint = Lint(loaded, rules)
    for fn in CHECKS:
        fn(lint)
    return _unique_sorted(lint.findings)


_LOADER_RULE = re.compile(r"^(E\d+) (hold|transfer): '(\w+)' is missing")


def load_finding(problem: Problem) -> Finding:
    """A loader problem as a finding: E9/E10 ones keep their rule, the rest are `load`."""
    message, fix = problem.message, "fix the flow so that it loads (`ivr validate` shows the same)"
    m = _LOADER_RULE.match(message)
    if m:
        rule, kind, field_ = m.groups()
        name = (HOLD_NAMES if kind == "hold" else TRANSFER_NAMES).get(field_, f"{kind}-no-{field_}")
        message, _, add = message.partition(": add ")
        message = message.removeprefix(f"{rule} ")
        return Finding(rule, name, "error", problem.file, problem.line, problem.col, message,
                       f"add {add}" if add else fix)
    m = re.match(r"^(E\d+)\b", message)
    if m:
        return Finding(m.group(1), "etiquette-required", "error", problem.file, problem.line, problem.col,
                       message, fix)
    if "; " in message:
        message, _, fix = message.partition("; ")
    return Finding("load", "flow-does-not-load", "error", problem.file, problem.line, problem.col, message, fix)


def lint_file(path: str | Path, extra_rules: str | Path | None = None) -> list[Finding]:
    try:
        loaded = load_flow(path)
    except FlowError as exc:
        return _unique_sorted([load_finding(p) for p in exc.problems])
    try:
        rules = load_rules(loaded.flow.language, str(extra_rules) if extra_rules else None)
    except RulesError as exc:
        return [_rules_finding(exc)]
    return lint_flow(loaded, rules)


def _rules_finding(exc: RulesError) -> Finding:
    return Finding("load", "rules-file-unusable", "error", exc.file, 1, 1, exc.message,
                   "fix the rules file (same layout as ivr/etiquette/rules/cmn-CN.yaml)")


def flow_files(paths) -> tuple[list[Path], list[Finding]]:
    """The flow files named or found (*.yaml, *.yml) in the named directories."""
    files, missing = [], []
    for p in map(Path, paths):
        if p.is_dir():
            files += flows_in(p)
        elif p.exists() and not is_flow_file(p):
            missing.append(Finding("load", "not-a-flow", "warning", str(p), 1, 1,
                                   "this file has no `steps:`, so it is not a flow; it was skipped",
                                   "name only flow files (or their folder)"))
        elif p.exists():
            files.append(p)
        else:
            missing.append(Finding("load", "no-such-file", "error", str(p), 1, 1,
                                   "no such file or directory", "give the path of a flow .yaml file or a folder of them"))
    return files, missing


def lint_paths(paths, extra_rules: str | Path | None = None) -> list[Finding]:
    """Lint flow files and folders of them; a folder's non-flow YAML is skipped."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files, findings = flow_files(paths)
    if extra_rules:
        try:
            _read_rules(Path(extra_rules))
        except RulesError as exc:
            return findings + [_rules_finding(exc)]
    for file in files:
        findings += lint_file(file, extra_rules)
    return _unique_sorted(findings)


# --- output ------------------------------------------------------------------------------

def _count(findings) -> tuple[int, int]:
    errors = sum(f.severity == "error" for f in findings)
    return errors, len(findings) - errors


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_text(findings: list[Finding]) -> str:
    errors, warnings = _count(findings)
    summary = (f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}" if findings
               else "no etiquette problems found")
    return "\n".join([str(f) for f in findings] + [summary])


def format_json(findings: list[Finding]) -> str:
    errors, warnings = _count(findings)
    return json.dumps({"findings": [asdict(f) for f in findings], "errors": errors, "warnings": warnings},
                      ensure_ascii=False, indent=2)


def main_lint(paths: list[str], fmt: str = "text", rules: str | None = None) -> int:
    """Lint, print the findings (text or json) and return the exit code: 1 if any error."""
    if fmt not in ("text", "json"):
        print(f"unknown format '{fmt}'; use text or json", file=sys.stderr)
        return 2
    findings = lint_paths(paths, extra_rules=rules)
    print(format_json(findings) if fmt == "json" else format_text(findings))
    return 1 if any(f.severity == "error" for f in findings) else 0


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="FLOW_OR_DIR")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--rules", help="an extra rules YAML file (more forbidden words, jargon...)")


def run(args) -> int:
    return main_lint(args.paths, args.format, args.rules)
