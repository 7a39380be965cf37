"""A caller typed by a person (`ivr simulate`), or piped in line by line.

At each moment the simulator needs a decision it reads one command. A bad command gets a
one-line explanation of what is valid there; at the end of the input the caller hangs up.
"""
from __future__ import annotations

import re
import sys

from ivr.flow.model import parse_duration
from ivr.simulator import actions as act
from ivr.simulator.callers import Caller
from ivr.simulator.line_audio import LINES

HELP = {
    act.PROMPT: ("press KEYS | say TEXT [@CONFIDENCE] [--line noisy|quiet|speakerphone|silent|clear] | "
                 "play FILE.wav [TEXT] [@CONFIDENCE] | silence | wait 30s | hangup"),
    act.RECORD: "record 20s [# | hangup | silence] | say TEXT | press # | silence | hangup",
    act.HOLD: "wait (until the next words) | wait 40s | wait end | take [after 40s] [talk 30s] | hangup",
    act.TRANSFER: "answers [ring 5s] [talk 60s] | declines | no-answer | busy | failed | hangup (the caller)",
    act.PAUSE: "Enter (let the pause run) | hangup",
}
QUESTION = {
    act.PROMPT: "Your turn",
    act.RECORD: "Recording after the beep",
    act.HOLD: "On hold: wait, or have an agent take the call?",
    act.TRANSFER: "The agent's phone rings: does the agent answer, decline, not answer, or is it busy?",
    act.PAUSE: "A pause: stay on the line or hang up?",
}


class BadCommand(ValueError):
    pass


class TypedCaller(Caller):
    def __init__(self, read_line=None, show=None, interactive: bool | None = None):
        super().__init__()
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.read_line = read_line or self._read_stdin
        self.show = show or (lambda text: print(text, file=sys.stderr if not self.interactive else sys.stdout))
        self.finished = False  # end of input: the caller hangs up at the next chance

    def _read_stdin(self, prompt: str) -> str | None:
        if self.interactive:
            try:
                return input(prompt)
            except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C: the caller puts the phone down
                return None
        line = sys.stdin.readline()
        return None if line == "" else line

    def choose(self, moment: act.Moment):
        if moment.kind == act.BETWEEN:
            return None
        if self.interactive:
            number = f" ({moment.number})" if moment.kind == act.TRANSFER else ""
            self.show(f"  {QUESTION[moment.kind]}{number}  [{HELP[moment.kind]}]")
        while True:
            line = None if self.finished else self.read_line("> ")
            if line is None:
                self.finished = True
                return act.HangUp()
            try:
                return parse_command(line, moment.kind)
            except BadCommand as exc:
                self.show(f"  {exc}")


def parse_command(line: str, kind: str):
    """One typed command -> the action it means at this kind of moment."""
    words = line.strip().split()
    if not words:
        if kind == act.PAUSE:
            return None
        raise BadCommand(f"type a command here: {HELP[kind]}")
    verb, rest = words[0].lower(), line.strip()[len(words[0]):].strip()
    try:
        if verb in ("hangup", "hang-up", "bye"):
            return act.HangUp()
        if kind == act.PAUSE:
            if verb in ("wait", "silence", "stay"):
                return None
        elif kind == act.TRANSFER:
            return _agent(verb, rest)
        elif kind == act.HOLD:
            return _hold(verb, rest)
        else:
            return _prompt_or_record(verb, rest, kind)
    except BadCommand:
        raise
    except (ValueError, IndexError) as exc:
        raise BadCommand(f"'{line.strip()}': {exc}. Here you can: {HELP[kind]}") from exc
    raise BadCommand(f"unknown command '{line.strip()}'. Here you can: {HELP[kind]}")


def _prompt_or_record(verb: str, rest: str, kind: str):
    if verb == "press":
        keys = rest.replace(" ", "")
        if not keys or any(k not in "0123456789*#" for k in keys):
            raise ValueError("keys are 0-9, * and #")
        return act.Press(keys)
    if verb == "say":
        line = None
        found = re.search(r"\s*--line[ =](\S+)", rest)
        if found:
            line, rest = found.group(1), (rest[:found.start()] + rest[found.end():]).strip()
            if line not in LINES:
                raise ValueError(f"--line is one of {', '.join(LINES)}")
        match = re.fullmatch(r"(.*?)\s*@\s*([01](?:\.\d+)?)", rest)
        text, confidence = (match.group(1), float(match.group(2))) if match else (rest, None)
        if not text or (confidence is not None and confidence > 1):
            raise ValueError("say TEXT, optionally @CONFIDENCE between 0 and 1 (e.g. say 我要挂失 @0.3) "
                             "and --line KIND (the caller's audio on such a line)")
        return act.Speak(text, confidence, line=line)
    if verb == "play" and kind == act.PROMPT:
        parts = rest.split(maxsplit=1)
        if not parts:
            raise ValueError("play FILE.wav [TEXT] [@CONFIDENCE]: the file is what the caller says")
        match = re.fullmatch(r"(.*?)\s*@\s*([01](?:\.\d+)?)", parts[1] if len(parts) > 1 else "")
        text, confidence = (match.group(1), float(match.group(2))) if match else (
            parts[1] if len(parts) > 1 else "", None)
        return act.Speak(text.strip(), confidence, audio=parts[0])
    if verb == "silence":
        return act.Silence()
    if verb == "wait":
        return act.Wait(parse_duration(rest or "5s"))
    if verb == "record" and kind == act.RECORD:
        parts = rest.split()
        then = parts[1] if len(parts) > 1 else "#"
        return act.RecordSpeech(parse_duration(parts[0]), None if then == "silence" else then)
    raise BadCommand(f"unknown command '{(verb + ' ' + rest).strip()}'. Here you can: {HELP[kind]}")


def _hold(verb: str, rest: str):
    if verb == "wait":
        if not rest:
            return act.StayOnHold(until="voice")
        if rest == "end":
            return act.StayOnHold()
        return act.StayOnHold(parse_duration(rest))
    if verb == "take":
        options = _options(rest, ("after", "talk"))
        return act.AgentTakes(options.get("after", 0.0), options.get("talk", 30.0))
    raise BadCommand(f"unknown command '{verb}' on hold. Here you can: {HELP[act.HOLD]}")


def _agent(verb: str, rest: str):
    options = _options(rest, ("ring", "talk"))
    if verb in ("answers", "answer"):
        return act.AgentAnswers(options.get("ring", 5.0), options.get("talk", 60.0))
    if verb in ("declines", "decline"):
        return act.AgentDeclines(options.get("ring", 5.0))
    if verb in ("no-answer", "noanswer"):
        return act.NoAnswer()
    if verb == "busy":
        return act.Busy()
    if verb == "failed":
        return act.Failed()
    raise BadCommand(f"'{verb}' is not what an agent does. Here: {HELP[act.TRANSFER]}")


def _options(rest: str, names: tuple[str, ...]) -> dict:
    words, out = rest.split(), {}
    if len(words) % 2:
        raise ValueError(f"options come in pairs: {' '.join(n + ' 10s' for n in names)}")
    for name, value in zip(words[::2], words[1::2]):
        if name not in names:
            raise ValueError(f"unknown option '{name}'")
        out[name] = parse_duration(value)
    return out
