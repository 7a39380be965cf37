"""The small value types every part of a flow uses: durations, phone keys, step names, text.

Durations are written the way people say them ("5s", "5 seconds", "1m30s", "2 mins",
"1h", "5秒", "1分钟"); a bare number means seconds.
"""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

_UNITS = {  # what people write after the number, in English and in Chinese
    3600: ("hours", "hour", "hrs", "hr", "h", "个小时", "小时", "钟头"),
    60: ("minutes", "minute", "mins", "min", "m", "分钟", "分"),
    1: ("seconds", "second", "secs", "sec", "s", "秒钟", "秒"),
}
_UNIT = {word: seconds for seconds, words in _UNITS.items() for word in words}
_UNIT_RE = "|".join(sorted(map(re.escape, _UNIT), key=len, reverse=True))
_PART = re.compile(rf"(\d+(?:\.\d+)?)\s*({_UNIT_RE})(?![a-z])\s*(?:and\s+|,\s*)?", re.I)
DURATION_PATTERN = rf"^\s*(\d+(\.\d+)?\s*(({_UNIT_RE})\s*(and\s+|,\s*)?)?)+$"
DURATION_FORMS = "5s, 30 seconds, 1m, 1m30s, 2 mins, 1h, 5秒 or 1分钟 (a bare number is seconds)"
MAX_DURATION = 4 * 3600


def parse_duration(value) -> float:
    """Seconds from what people write: 90, "90", 5s, "5 seconds", 1m30s, "2 mins", 1h, 5秒, 1分30秒."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"a duration is expected here; write it like {DURATION_FORMS}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = _parse_parts(text, value)
    if seconds != seconds or seconds < 0 or seconds > MAX_DURATION:  # NaN too
        raise ValueError(f"{seconds:g} s is out of range; a duration is between 0s and 4h")
    return seconds


def _parse_parts(text: str, value) -> float:
    seconds, at, last = 0.0, 0, None
    for match in _PART.finditer(text):
        unit = _UNIT[match.group(2).lower()] if match.group(2).lower() in _UNIT else _UNIT[match.group(2)]
        if match.start() != at or (last is not None and unit >= last):
            break
        seconds += float(match.group(1)) * unit
        at, last = match.end(), unit
    else:
        if at == len(text) and last is not None:
            return seconds
    raise ValueError(f"'{value}' is not a duration; write it like {DURATION_FORMS}")


def parse_positive_duration(value) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"'{value}' is no time at all; a limit must be longer than 0s: write it like {DURATION_FORMS}")
    return seconds


# What editors see: a duration is a number of seconds or text like "1m30s"; keys may be written bare (1) or quoted ("*").
_DURATION_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}],
                    "examples": ["5s", "30s", "1m"]}
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
PositiveDuration = Annotated[float, BeforeValidator(parse_positive_duration), WithJsonSchema(
    {**_DURATION_SCHEMA, "anyOf": [{"type": "number", "exclusiveMinimum": 0}, _DURATION_SCHEMA["anyOf"][1]]})]
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
