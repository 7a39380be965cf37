"""How long a prompt takes to say: used to fit hold music between check-ins, and
by the simulator's virtual clock. Typical TTS rates: Mandarin about 4.5 characters
a second, English about 2.7 words a second."""
from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[A-Za-z0-9']+")


def speech_seconds(text: str, rate: float = 1.0) -> float:
    """Seconds to speak `text`; `rate` < 1 is slower (E7's repeat at 85%)."""
    han = len(_HAN.findall(text))
    words = len(_WORD.findall(_HAN.sub(" ", text)))
    pauses = len(re.findall(r"[,.?!;:,。?!;:、]", text)) * 0.15
    return round((han / 4.5 + words / 2.7 + pauses) / max(rate, 0.1), 2)
