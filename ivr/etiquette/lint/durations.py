"""Durations said in words, in Mandarin and English: what a hold's reason promises
("大约需要一分钟", "about two minutes", "30秒", "one and a half minutes"), so that lint can
compare it with the `limit:` the engine keeps (E9) or a transfer's `ring_limit:` (E10)."""
from __future__ import annotations

import re

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_CN_NUM = r"[0-9.]+|[零〇一二两三四五六七八九十百]+"
_CN_UNIT = {"秒": 1, "秒钟": 1, "分": 60, "分钟": 60, "小时": 3600, "钟头": 3600}
# a number, 个, 半 ("一个半小时"), the unit, 半 after it ("一分半"); or 半 alone ("半分钟", "半个小时")
_CN = re.compile(rf"(?:(?P<n>{_CN_NUM})\s*(?:个)?(?P<half1>半)?|(?P<half>半)个?)\s*"
                 r"(?P<u>秒钟|秒|分钟|分(?=半|[0-9零〇一二两三四五六七八九十]+秒|[,,。.!?!?;;、\s]|$)|小时|钟头)(?P<half2>半)?")
# 分 alone is a minute only where a duration ends ("一分半", "一分三十秒", "一分,"): 十分感谢 is "very"

_EN_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
               "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
               "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
               "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "a couple of": 2,
               "a couple": 2, "couple of": 2}
_EN_WORD = "|".join(sorted((re.escape(w) for w in _EN_NUMBERS), key=len, reverse=True))
_EN_UNIT = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60,
            "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600}
_EN = re.compile(
    rf"(?<![\w.])(?:(?P<half>half an?|half)\s+|(?P<n>\d+(?:\.\d+)?|(?:{_EN_WORD})(?:[\s-]+(?:one|two|three|four|five|six|seven|eight|nine))?)"
    rf"(?P<andhalf>\s+and\s+a\s+half)?[\s-]*)"
    r"(?P<u>seconds|second|secs|sec|minutes|minute|mins|min|hours|hour|hrs|hr|[smh])(?![a-z])"
    r"(?P<half2>\s+and\s+a\s+half)?", re.I)
_JOIN = re.compile(r"^\s*(?:and|,|零)?\s*$", re.I)  # between the parts of one duration ("1 minute and 30 seconds")


def cn_number(text: str) -> float | None:
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", text):
        return float(text)
    total, current = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return float(total + current)


def _en_number(text: str) -> float | None:
    text = " ".join(text.lower().replace("-", " ").split())
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if text in _EN_NUMBERS:
        return float(_EN_NUMBERS[text])
    parts = text.split(" ")
    if len(parts) == 2 and parts[0] in _EN_NUMBERS and parts[1] in _EN_NUMBERS:
        return float(_EN_NUMBERS[parts[0]] + _EN_NUMBERS[parts[1]])
    return None


def _parts(text: str) -> list[tuple[int, int, float]]:
    out = []
    for m in _CN.finditer(text):
        unit = _CN_UNIT[m.group("u")]
        if m.group("half"):
            value = 0.5
        else:
            value = cn_number(m.group("n"))
            if value is None:
                continue
            value += 0.5 if (m.group("half1") or m.group("half2")) else 0
        out.append((m.start(), m.end(), value * unit))
    for m in _EN.finditer(text):
        unit = _EN_UNIT[m.group("u").lower()]
        if m.group("half"):
            value = 0.5
        else:
            value = _en_number(m.group("n"))
            if value is None:
                continue
            if len(m.group("u")) == 1 and not re.fullmatch(r"\d+(?:\.\d+)?", m.group("n").strip()):
                continue  # "a m" is not a duration; only "5s", "1m" in short form
            value += 0.5 if (m.group("andhalf") or m.group("half2")) else 0
        out.append((m.start(), m.end(), value * unit))
    return sorted(out)


def said_durations(text: str) -> list[float]:
    """Every duration said in `text`, in seconds; adjacent parts add up ("一分三十秒" = 90,
    "1 minute and 30 seconds" = 90)."""
    totals: list[float] = []
    last_end = None
    for start, end, seconds in _parts(text):
        if last_end is not None and start >= last_end and _JOIN.match(text[last_end:start]) and totals:
            totals[-1] += seconds
        else:
            totals.append(seconds)
        last_end = end
    return totals


def agrees(said: float, limit: float) -> bool:
    """A spoken "about N" agrees with a limit within a fifth of it (and at least 10 s)."""
    return abs(said - limit) <= max(10.0, 0.2 * limit)


def spoken(seconds: float, language: str) -> str:
    """A duration as the flow could say it."""
    minutes, secs = divmod(round(seconds), 60)
    if language.startswith("cmn"):
        return (f"{minutes}分钟" if minutes else "") + (f"{secs}秒" if secs else "") or "0秒"
    parts = ([f"{minutes} minute{'s' if minutes != 1 else ''}"] if minutes else []) + \
            ([f"{secs} second{'s' if secs != 1 else ''}"] if secs else [])
    return " ".join(parts) or "0 seconds"
