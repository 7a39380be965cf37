"""Caller scripts: YAML files that say what a caller does and what they must hear.

    flow: ../../call_flows/bank_hotline.yaml   # relative to the script
    caller: "+8613800138000"                   # caller ID (optional)
    rule: E2                                   # which etiquette rule it shows
    steps:
      - hear: 欢迎致电                           # the caller hears a prompt containing this, in order
      - silence                                # a listening window passes with nothing said
      - hear: {text: 您好,请问有什么可以帮助您?, silence_before: 5, between: [5, 30]}
      - press: 1                               # or {keys: 1, after: 2s} / {keys: 1, barge_in: 3s}
      - say: 我要挂失                            # or {text: 我要挂失, confidence: 0.3, line: speakerphone}; without a confidence, none is sent
      - play: caller.wav                       # or {file: caller.wav, text: 挂失}: the caller's audio
      - wait: 30s                              # do nothing for 30 s, whatever comes
      - hold: wait                             # or {wait: 40s} / {agent_takes_after: 40s, talk: 30s}
      - transfer: answers                      # or {agent: answers, ring: 5s, talk: 1m}; declines, no-answer, busy, failed
      - record: {speak: 20s, then: "#"}        # then: a key, hangup, or silence
      - agent_hears: 接听请按1                   # what the agent of a warm transfer heard (the whisper)
      - hangup                                 # or {after: 1s}
    expect: {ended_by: engine, transferred_to: null, duration_max: 60, never_hear: [喂], silence_at_end: 5}

Mistakes are reported with file:line and what would be right.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ivr.flow.model import parse_duration
from ivr.simulator import actions as act
from ivr.simulator.line_audio import LINES

REPO = Path(__file__).resolve().parent.parent.parent
DEFAULT_FLOW = REPO / "call_flows" / "bank_hotline.yaml"
TOP_KEYS = {"flow", "caller", "called", "rule", "description", "steps", "expect"}
EXPECT_KEYS = {"ended_by", "transferred_to", "duration_max", "duration_min", "never_hear", "silence_at_end"}
HEAR_KEYS = {"text", "between", "at", "silence_before", "louder"}
AGENT_BEHAVIOURS = ("answers", "declines", "no-answer", "busy", "failed")


class ScriptError(Exception):
    """A caller script that cannot be run: file:line, what is wrong, what would be right."""


@dataclass
class Hear:
    text: str
    agent: bool = False  # the agent's ear (the whisper), not the caller's
    between: tuple[float, float] | None = None
    at: float | None = None
    silence_before: tuple[float, float] | None = None
    louder: bool | None = None


@dataclass
class Step:
    number: int  # 1-based, as people count
    line: int
    source: str  # the step as written, for messages
    hear: Hear | None = None
    action: object | None = None
    moments: tuple[str, ...] = ()  # where the action can happen

    def where(self) -> str:
        return f"step {self.number} (line {self.line}: {self.source})"


@dataclass
class Expect:
    ended_by: str | None = None
    transferred_to: str | None = None
    check_transfer: bool = False
    duration_max: float | None = None
    duration_min: float | None = None
    never_hear: list[str] = field(default_factory=list)
    silence_at_end: tuple[float, float] | None = None  # quiet on the line between the last sound and the end


@dataclass
class CallerScript:
    path: Path
    flow: Path
    caller: str
    called: str | None
    rule: str | None
    description: str
    steps: list[Step]
    expect: Expect

    @property
    def name(self) -> str:
        return str(self.path)


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: a script loads ~10x faster


def _parsed(text: str):
    """The script's data and its YAML node tree (for line numbers), from one parse."""
    loader = SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def load_script(path: str | Path) -> CallerScript:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data, node = _parsed(text)
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        hint = ""
        if "expected ',' or '}'" in str(exc):
            hint = " (inside {...}, text with a comma, ? or : must be quoted: {text: \"您好,请问\", between: [0, 9]})"
        raise ScriptError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}{hint}") from exc
    if not isinstance(data, dict):
        raise ScriptError(f"{path}:1: a caller script is a mapping with `steps:` (and `flow:`, `expect:`)")
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    for key in data:
        if key not in TOP_KEYS:
            raise ScriptError(f"{path}:{lines.get(key, 1)}: unknown key '{key}'; "
                              f"a script has {', '.join(sorted(TOP_KEYS))}")
    flow = (path.parent / str(data["flow"])).resolve() if data.get("flow") else DEFAULT_FLOW
    if not flow.exists():
        raise ScriptError(f"{path}:{lines.get('flow', 1)}: flow file {flow} does not exist "
                          "(`flow:` is relative to the script)")
    steps_node = next((v for k, v in node.value if k.value == "steps"), None)
    raw_steps = data.get("steps") or []
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScriptError(f"{path}:{lines.get('steps', 1)}: `steps:` must be a list of what the caller does "
                          "and hears, e.g. `- hear: 您好` / `- press: 1`")
    steps = []
    for raw, item_node in zip(raw_steps, steps_node.value):
        line = item_node.start_mark.line + 1
        source = " ".join(text.splitlines()[line - 1].strip().lstrip("-").split())[:80]
        for parsed in parse_step(raw, f"{path}:{line}"):
            steps.append(Step(len(steps) + 1, line, source, **parsed))
    return CallerScript(path, flow, str(data.get("caller") or "+8613700000000"),
                        str(data["called"]) if data.get("called") else None, data.get("rule"),
                        str(data.get("description") or ""), steps,
                        parse_expect(data.get("expect") or {}, f"{path}:{lines.get('expect', 1)}"))


# --- steps -----------------------------------------------------------------------------

def parse_step(raw, where: str) -> list[dict]:
    """One written step -> one or more steps ({hear} or {action, moments})."""
    if isinstance(raw, str):
        raw = {raw: True}
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ScriptError(f"{where}: a step is one thing, e.g. `- press: 1` or `- hear: 您好` (got {raw!r})")
    (kind, value), = raw.items()
    parser = STEP_PARSERS.get(kind)
    if parser is None:
        raise ScriptError(f"{where}: unknown step '{kind}'; steps are {', '.join(STEP_PARSERS)}")
    try:
        return parser(value)
    except (ValueError, TypeError) as exc:
        raise ScriptError(f"{where}: {kind}: {exc}") from exc


def _text(value) -> str:
    if isinstance(value, bool):  # YAML 1.1 reads unquoted yes/no/on/off as true/false
        raise ValueError("YAML reads an unquoted yes, no, on or off as true/false: put the words in quotes "
                         "(say: \"yes\")")
    return str(value if value is not None else "").strip()


def _options(value, main: str, allowed: set[str]) -> dict:
    if not isinstance(value, dict):
        return {main: value}
    unknown = set(value) - allowed
    if unknown:
        name = sorted(unknown)[0]
        if value[name] is None:  # `{text: 您好,请问…}`: YAML split the text at its comma
            raise ValueError(f"'{name}' looks like part of a text cut at a comma: inside {{...}} quote text "
                             f"that has a comma, ? or : in it, e.g. {{text: \"您好,请问\"}}")
        raise ValueError(f"unknown option '{name}'; options are {', '.join(sorted(allowed))}")
    return value


def _seconds(value) -> float:
    return parse_duration(value)


def _range(value) -> tuple[float, float]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (_seconds(value[0]), _seconds(value[1]))
    seconds = _seconds(value)
    return (seconds - 0.05, seconds + 0.05)  # one exact time: allow the clock's rounding


def _hear(value, agent=False) -> list[dict]:
    opts = _options(value, "text", HEAR_KEYS)
    text = _text(opts.get("text"))
    if not text:
        raise ValueError("say what must be heard: `hear: 您好` or `hear: {text: 您好, between: [0, 10]}`")
    hear = Hear(text, agent,
                between=_range(opts["between"]) if "between" in opts else None,
                at=_seconds(opts["at"]) if "at" in opts else None,
                silence_before=_range(opts["silence_before"]) if "silence_before" in opts else None,
                louder=opts.get("louder"))
    return [{"hear": hear}]


def _timing(opts) -> dict:
    out = {}
    if "after" in opts:
        out["after"] = _seconds(opts["after"])
    if "barge_in" in opts:
        out["barge_in"] = _seconds(opts["barge_in"])
    return out


def _press(value):
    opts = _options(value, "keys", {"keys", "after", "barge_in"})
    keys = _text(opts.get("keys", ""))
    if not keys or any(k not in "0123456789*#" for k in keys):
        raise ValueError(f"keys are 0-9, * and # (got '{keys}')")
    return [{"action": act.Press(keys, **_timing(opts)), "moments": (act.PROMPT, act.RECORD)}]


def _say(value):
    opts = _options(value, "text", {"text", "confidence", "after", "barge_in", "line"})
    text = _text(opts.get("text"))
    if not text:
        raise ValueError("say what the caller says: `say: 我要挂失`")
    confidence = None if opts.get("confidence") is None else float(opts["confidence"])
    if confidence is not None and not 0 <= confidence <= 1:
        raise ValueError("confidence is between 0 and 1")
    line = opts.get("line")
    if line is not None and line not in LINES:
        raise ValueError(f"line is one of {', '.join(LINES)} (the caller's audio on such a line)")
    moments = (act.PROMPT,) if line else (act.PROMPT, act.RECORD)
    return [{"action": act.Speak(text, confidence, line=line, **_timing(opts)), "moments": moments}]


def _play(value):
    """The caller plays a WAV as their answer; `text` is what Twilio's recogniser makes of it (none: no words)."""
    opts = _options(value, "file", {"file", "text", "confidence"})
    file = _text(opts.get("file"))
    if not file:
        raise ValueError("play a WAV file: `play: caller.wav` or `play: {file: caller.wav, text: 挂失}`")
    confidence = float(opts.get("confidence", 0.9))
    return [{"action": act.Speak(_text(opts.get("text")), confidence, audio=file), "moments": (act.PROMPT,)}]


def _silence(value):
    count = 1 if value is True or value is None else int(value)
    return [{"action": act.Silence(), "moments": (act.PROMPT, act.RECORD)} for _ in range(count)]


def _wait(value):
    return [{"action": act.Wait(_seconds(value)), "moments": (act.PROMPT, act.RECORD, act.HOLD)}]


def _hangup(value):
    opts = _options(value, "_", {"after"}) if isinstance(value, dict) else {}
    action = act.HangUp(_seconds(opts["after"]) if "after" in opts else 0.0)
    return [{"action": action, "moments": (act.PROMPT, act.RECORD, act.HOLD, act.TRANSFER)}]


def _hold(value):
    moments = (act.HOLD,)
    if value in ("wait", True):
        return [{"action": act.StayOnHold(), "moments": moments}]
    opts = _options(value, "_", {"wait", "agent_takes_after", "talk", "url"})
    if "agent_takes_after" in opts:
        extra = {"url": str(opts["url"])} if "url" in opts else {}
        action = act.AgentTakes(_seconds(opts["agent_takes_after"]), _seconds(opts.get("talk", 30)), **extra)
    elif "wait" in opts:
        action = act.StayOnHold(_seconds(opts["wait"]))
    else:
        raise ValueError("on hold the caller can `hold: wait`, `hold: {wait: 40s}` or "
                         "`hold: {agent_takes_after: 40s, talk: 30s}`")
    return [{"action": action, "moments": moments}]


def _transfer(value):
    opts = _options(value, "agent", {"agent", "ring", "talk", "press"})
    agent = str(opts.get("agent", ""))
    timing = {k: _seconds(opts[k]) for k in ("ring", "talk") if k in opts}
    if agent == "answers":
        action = act.AgentAnswers(**timing, **({"press": str(opts["press"])} if "press" in opts else {}))
    elif agent == "declines":
        timing.pop("talk", None)
        action = act.AgentDeclines(**timing, press=str(opts["press"]) if "press" in opts else None)
    elif agent in ("no-answer", "busy", "failed"):
        action = {"no-answer": act.NoAnswer, "busy": act.Busy, "failed": act.Failed}[agent]()
    else:
        raise ValueError(f"the agent {', '.join(AGENT_BEHAVIOURS)} (got '{agent}')")
    return [{"action": action, "moments": (act.TRANSFER,)}]


def _record(value):
    if value == "silence":
        return [{"action": act.Silence(), "moments": (act.RECORD,)}]
    opts = _options(value, "speak", {"speak", "then"})
    then = opts.get("then", "#")
    then = None if then in (None, "silence", "none") else str(then)
    return [{"action": act.RecordSpeech(_seconds(opts.get("speak", 10)), then), "moments": (act.RECORD,)}]


STEP_PARSERS = {"hear": _hear, "agent_hears": lambda v: _hear(v, agent=True), "press": _press, "say": _say,
                "play": _play,
                "silence": _silence, "wait": _wait, "hold": _hold, "transfer": _transfer, "record": _record,
                "hangup": _hangup}


def parse_expect(raw, where: str) -> Expect:
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: `expect:` is a mapping, e.g. {{ended_by: engine, duration_max: 60}}")
    unknown = set(raw) - EXPECT_KEYS
    if unknown:
        raise ScriptError(f"{where}: unknown expectation '{sorted(unknown)[0]}'; "
                          f"use {', '.join(sorted(EXPECT_KEYS))}")
    ended_by = raw.get("ended_by")
    if ended_by not in (None, "engine", "caller"):
        raise ScriptError(f"{where}: ended_by is `engine` (we hung up) or `caller` (got '{ended_by}')")
    try:
        return Expect(ended_by, str(raw["transferred_to"]) if raw.get("transferred_to") else None,
                      "transferred_to" in raw,
                      _seconds(raw["duration_max"]) if "duration_max" in raw else None,
                      _seconds(raw["duration_min"]) if "duration_min" in raw else None,
                      [_text(p) for p in raw.get("never_hear") or []],
                      _range(raw["silence_at_end"]) if "silence_at_end" in raw else None)
    except ValueError as exc:
        raise ScriptError(f"{where}: {exc}") from exc
