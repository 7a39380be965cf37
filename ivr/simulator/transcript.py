"""What happened on the call, line by line, each with its virtual time.

`who` says whose ears or mouth a line belongs to: the caller hears prompts and music,
the caller acts (keys, speech, hang-up), the agent of a warm transfer hears the whisper
(separately from the caller), and `call` lines are what the network does (ringing, queued).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

HEARS, CALLER, AGENT_HEARS, AGENT, CALL = "caller-hears", "caller", "agent-hears", "agent", "call"


@dataclass
class Line:
    t: float
    who: str
    text: str
    kind: str = "say"  # say | play | pause | press | speak | silence | hangup | record | event
    seconds: float = 0.0
    louder: bool = False  # E7: said with SSML prosody (louder and a little slower)
    interrupted: bool = False  # the caller barged in, or something took them off hold mid-prompt
    gap: float | None = None  # seconds of quiet on the caller's line before this prompt started

    @property
    def end(self) -> float:
        return round(self.t + self.seconds, 3)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and v is not False}


@dataclass
class Transcript:
    lines: list[Line] = field(default_factory=list)
    listeners: list = field(default_factory=list)  # called with each new line (the live console view)
    _quiet_since: float = 0.0  # when the caller's line last had a sound on it

    def add(self, line: Line) -> Line:
        line.t = round(line.t, 3)
        if line.who == HEARS and line.kind == "say":
            line.gap = round(line.t - self._quiet_since, 3)
        if line.who == HEARS and line.kind in ("say", "play"):
            self._quiet_since = max(self._quiet_since, line.end)
        elif line.who == CALLER and line.kind in ("press", "speak", "record"):
            self._quiet_since = max(self._quiet_since, line.end)
        self.lines.append(line)
        for listener in self.listeners:
            listener(line)
        return line

    def cut_at(self, moment: float) -> None:
        """A barge-in at `moment`: prompts not yet started were never heard; the one playing stops."""
        kept = []
        for line in self.lines:
            if line.who in (HEARS, CALL) and line.t >= moment and line.kind in ("say", "play", "pause"):
                continue
            if line.who == HEARS and line.t < moment < line.end:
                line.seconds, line.interrupted = round(moment - line.t, 3), True
            kept.append(line)
        self.lines = kept
        self._quiet_since = min(self._quiet_since, moment)

    def last_sound(self) -> float:
        """When the caller's line last carried a sound (a prompt, music, their keys or voice)."""
        return self._quiet_since

    def heard(self) -> list[Line]:
        """The prompts the caller heard (with their words), in order."""
        return [line for line in self.lines if line.who == HEARS and line.kind == "say"]

    def agent_heard(self) -> list[Line]:
        return [line for line in self.lines if line.who == AGENT_HEARS and line.kind == "say"]

    def caller_side(self) -> list[tuple]:
        """What the caller heard and did, with times: the part two transports must agree on."""
        return [(line.t, line.who, line.kind, line.text, line.seconds, line.louder, line.interrupted)
                for line in self.lines if line.who in (HEARS, CALLER)]

    def to_list(self) -> list[dict]:
        return [line.to_dict() for line in self.lines]


LABELS = {HEARS: "hears", CALLER: "caller", AGENT_HEARS: "agent hears", AGENT: "agent", CALL: "·"}
STYLES = {HEARS: "cyan", CALLER: "bold green", AGENT_HEARS: "magenta", AGENT: "bold magenta", CALL: "dim"}


def describe(line: Line) -> str:
    """One line of text for people: time, whose, what."""
    label = LABELS.get(line.who, line.who)
    if line.louder:
        label += " (louder)"
    text = line.text + (f" ({line.seconds:g} s)" if line.kind == "play" else "")
    text += " …(cut off)" if line.interrupted else ""
    return f"{line.t:7.1f}s  {label:<16} {text}"


class ConsoleView:
    """Prints each line as it happens: coloured with rich on a terminal, plain text otherwise."""

    def __init__(self, stream=None, colour: bool | None = None):
        import sys

        self.stream = stream or sys.stdout
        use_colour = self.stream.isatty() if colour is None else colour
        self.console = None
        if use_colour:
            from rich.console import Console

            self.console = Console(file=self.stream, highlight=False)

    def __call__(self, line: Line) -> None:
        self.show(describe(line), STYLES.get(line.who, ""), bold=line.louder)

    def show(self, text: str, style: str = "", bold: bool = False) -> None:
        if self.console is not None:
            from rich.text import Text

            self.console.print(Text(text, style=(style + (" bold" if bold else "")).strip() or None), soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)
