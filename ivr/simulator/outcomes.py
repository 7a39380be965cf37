"""What running a verb leads to: a TwiML document, the next request, or the end of the call."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass
class Document:
    url: str  # relative URLs inside resolve against this (urljoin), as Twilio does
    root: ET.Element


@dataclass
class Goto:
    """Request this URL next and run the TwiML it answers."""

    url: str
    params: dict = field(default_factory=dict)
    method: str = "POST"


@dataclass
class End:
    by: str  # "engine" (TwiML hung up, or ran out of verbs) or "caller"


def attr_number(value, default: float | None) -> float | None:
    """A numeric TwiML attribute; missing or unreadable means Twilio's default."""
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default
