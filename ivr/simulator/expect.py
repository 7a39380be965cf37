"""Checking a transcript against a script: `hear` steps in order, then the call's outcome."""
from __future__ import annotations

from ivr.simulator.script import Expect, Hear, Step
from ivr.simulator.transcript import Line, Transcript


def _quote(text: str, limit: int = 60) -> str:
    return f"'{text[:limit]}{'…' if len(text) > limit else ''}'"


def _span(bounds: tuple[float, float]) -> str:
    low, high = bounds
    if round(high - low, 2) <= 0.1:
        return f"at t={(low + high) / 2:g}s"
    return f"between {low:g} and {high:g} s"


class Matcher:
    """Finds each `hear` step in what was heard, in order: in a later prompt, or later in the same one."""

    def __init__(self, transcript: Transcript):
        self.transcript = transcript
        self.cursor = {False: (0, 0), True: (0, 0)}  # caller's / agent's ear -> (line index, character offset)

    def check(self, step: Step) -> str | None:
        """None when the step is met (and the search moves on), else what went wrong."""
        hear = step.hear
        lines = self.transcript.agent_heard() if hear.agent else self.transcript.heard()
        start, offset = self.cursor[hear.agent]
        for index in range(start, len(lines)):
            found = lines[index].text.find(hear.text, offset if index == start else 0)
            if found >= 0:
                problem = self._timing(hear, lines[index])
                if problem:
                    return f"{step.where()}: {problem}"
                self.cursor[hear.agent] = (index, found + len(hear.text))
                return None
        who = "the agent" if hear.agent else "the caller"
        rest = [line for line in lines[start:start + 4] if not (line is lines[start] and offset >= len(line.text))]
        if rest:
            heard = "; ".join(f"{_quote(line.text)} at t={line.t:g}s" for line in rest[:3])
            return f"{step.where()}: expected {who} to hear {_quote(hear.text)}, heard {heard}"
        since = f" after t={lines[start].t:g}s" if start < len(lines) else ""
        return f"{step.where()}: expected {who} to hear {_quote(hear.text)}, but {who} heard nothing more{since}"

    @staticmethod
    def _timing(hear: Hear, line: Line) -> str | None:
        said = f"heard {_quote(hear.text)} at t={line.t:g}s"
        if hear.between and not hear.between[0] <= line.t <= hear.between[1]:
            return f"{said}, expected {_span(hear.between)}"
        if hear.at is not None and abs(line.t - hear.at) > 0.05:
            return f"{said}, expected at t={hear.at:g}s"
        if hear.silence_before and (line.gap is None or not
                                    hear.silence_before[0] <= line.gap <= hear.silence_before[1]):
            low, high = hear.silence_before
            want = f"{(low + high) / 2:g} s" if round(high - low, 2) <= 0.1 else f"{low:g}-{high:g} s"
            return f"{said} after {line.gap:g} s of silence, expected {want} of silence before it"
        if hear.louder is not None and line.louder != hear.louder:
            return f"{said} {'at normal volume' if not line.louder else 'louder'}, expected it " \
                   f"{'louder (SSML prosody)' if hear.louder else 'at normal volume'}"
        return None


def check_outcome(expect: Expect, result) -> str | None:
    """The `expect:` block against how the call ended."""
    who = {"engine": "we hung up", "caller": "the caller hung up", None: "the call did not end normally"}
    if expect.ended_by and result.ended_by != expect.ended_by:
        return (f"expected the call to end with {who[expect.ended_by]}, but {who[result.ended_by]} "
                f"at t={result.duration:g}s")
    if expect.check_transfer and result.transferred_to != expect.transferred_to:
        wanted = expect.transferred_to or "no transfer"
        got = result.transferred_to or "no connected transfer"
        return f"expected transferred_to {wanted}, got {got}"
    if expect.duration_max is not None and result.duration > expect.duration_max:
        return f"the call lasted {result.duration:g} s, expected at most {expect.duration_max:g} s"
    if expect.duration_min is not None and result.duration < expect.duration_min:
        return f"the call lasted {result.duration:g} s, expected at least {expect.duration_min:g} s"
    if expect.silence_at_end:
        quiet = round(result.duration - result.transcript.last_sound(), 3)
        low, high = expect.silence_at_end
        if not low <= quiet <= high:
            want = f"{(low + high) / 2:g} s" if round(high - low, 2) <= 0.1 else f"{low:g}-{high:g} s"
            return f"the line was quiet for {quiet:g} s before the call ended at t={result.duration:g}s, expected {want}"
    for phrase in expect.never_hear:
        for line in result.transcript.heard():
            if phrase in line.text:
                return f"the caller must never hear {_quote(phrase)}, heard {_quote(line.text)} at t={line.t:g}s"
    return None
