"""A call's log read back as typed entries: the facts of ivr.call.facts (via `parse`), and the
requests and answers the adapter logged. Everything here is untrusted input: a hand-edited or
hostile log must still read (unknown entries are skipped, numbers are checked)."""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ivr.call import facts as F


def num(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Request:
    t: float | None
    path: str
    params: dict


@dataclass(frozen=True)
class Response:
    t: float | None
    path: str
    twiml: str


@dataclass(frozen=True)
class Noted:
    """A fact and when it was logged."""

    t: float | None
    fact: F.Fact


@dataclass
class CallLog:
    entries: list = field(default_factory=list)  # Request | Response | Noted, in log order

    @property
    def facts(self) -> list[F.Fact]:
        return [e.fact for e in self.entries if isinstance(e, Noted)]

    @property
    def requests(self) -> list[Request]:
        return [e for e in self.entries if isinstance(e, Request)]

    def first(self, cls, what: str | None = None):
        return next((f for f in self.facts if isinstance(f, cls) and (what is None or getattr(f, "what", None) == what)),
                    None)

    def t0(self) -> float | None:
        return self.entries[0].t if self.entries else None


def read_log(raw: list) -> CallLog:
    """The typed entries of a logged call (a list of dicts as the store keeps them)."""
    out = CallLog()
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        t = num(entry.get("t"))
        if "fact" in entry:
            fact = F.parse(_clean(entry))
            if fact is not None:
                out.entries.append(Noted(t, fact))
        elif entry.get("kind") == "request":
            params = entry.get("params")
            out.entries.append(Request(t, str(entry.get("path", "")), params if isinstance(params, dict) else {}))
        elif entry.get("kind") == "response":
            out.entries.append(Response(t, str(entry.get("path", "")), str(entry.get("twiml", ""))))
    return out


def _clean(entry: dict) -> dict:
    """Only the fields a fact may have, with the simple types they have (a tampered log may hold anything)."""
    return {k: v for k, v in entry.items() if isinstance(v, (str, int, float, bool)) or v is None}


# --- TwiML: what the caller heard, and when the first word came ------------------------------

def twiml_root(xml: str):
    try:
        return ET.fromstring(xml)
    except ET.ParseError:
        return None


def before_first_say(xml: str) -> tuple[bool, float]:
    """(whether this answer says anything, seconds the caller waits in it before the first word:
    <Pause length> and <Play> of a known length, Twilio's defaults otherwise: Pause 1 s)."""
    root = twiml_root(xml)
    if root is None:
        return False, 0.0
    waited = 0.0
    for el in root.iter():
        if el.tag == "Say" and "".join(el.itertext()).strip():
            return True, waited
        if el.tag == "Pause":
            waited += num(el.get("length")) or 1.0
    return False, waited


def summary(xml: str) -> str:
    """What the caller heard and what Twilio was told to do next, in one line."""
    root = twiml_root(xml)
    if root is None:
        return "(unreadable TwiML)"
    parts = []
    for el in root.iter():
        if el.tag == "Say":
            parts.append(f"“{''.join(el.itertext()).strip()}”")
        elif el.tag not in ("Response", "prosody"):
            parts.append(el.tag)
    return " ".join(parts) or "(empty)"


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text for a terminal: control characters from a hostile log could drive it (ANSI escapes)."""
    return CONTROL.sub("?", text)
