"""The small value types every part of a flow uses: durations, phone keys, step names, text.

Durations are written the way people say them ("5s", "1m", "1m30s"); a bare
number means seconds.
"""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(\d+(?:\.\d+)?)\s*s(?:ec)?)?\s*$")


def parse_duration(value) -> float:
    if isinstance(value, bool):
        raise ValueError("a duration, like 5s, 30s or 1m, is expected here")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise ValueError(f"'{value}' is not a duration; write it like 5s, 30s, 1m or 1m30s")
        minutes, secs = match.groups()
        seconds = float(minutes or 0) * 60 + float(secs or 0)
    if seconds < 0 or seconds > 4 * 3600:
        raise ValueError(f"{seconds:g} s is out of range; a duration is between 0s and 4h")
    return seconds


# What editors see: a duration is a number of seconds or text like "1m30s"; keys may be written bare (1) or quoted ("*").
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema({
    "anyOf": [{"type": "number", "minimum": 0},
              {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*m(in)?)?\s*(\d+(\.\d+)?\s*s(ec)?)?\s*$"}],
    "examples": ["5s", "30s", "1m"]})]
KEYS_PATTERN = r"^[0-9*#]{1,4}$"
Keys = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
                 Field(pattern=KEYS_PATTERN),
                 WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0, "maximum": 9999},
                                           {"type": "string", "pattern": KEYS_PATTERN}]})]
StepName = Annotated[str, Field(min_length=1)]
Text = Annotated[str, Field(min_length=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def duration_text(seconds: float) -> str:
    """Seconds the way a flow writes them: 30s, 1m, 1m30s."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs}s" if minutes and secs else f"{minutes}m" if minutes else f"{secs}s"
