"""Twilio's documented limits, checked when a flow loads (so ops see file:line, not a failed call).

- <Dial timeout>: 5-600 s, and Twilio adds 5 s to it, so a ring limit must be 10-605 s
  (https://www.twilio.com/docs/voice/twiml/dial#timeout)
- <Record maxLength>: more than 1 s (https://www.twilio.com/docs/voice/twiml/record#attributes-max-length)
- <Enqueue> queue name: 64 characters or fewer (https://www.twilio.com/docs/voice/twiml/enqueue)
- <Gather hints>: at most 500 entries of at most 100 characters each
  (https://www.twilio.com/docs/voice/twiml/gather#hints)
- <Say>: at most 3,000 characters (https://www.twilio.com/docs/voice/twiml/say)
- a TwiML response: at most 64 kB (https://www.twilio.com/docs/voice/twiml#response-size)
- voices: a Polly / Google voice speaks the languages it was made for
  (https://www.twilio.com/docs/voice/twiml/say/text-speech#available-voices-and-languages)
"""
from __future__ import annotations

import re

DIAL_TIMEOUT = (5, 600)
DIAL_BUFFER = 5
RECORD_MIN = 1
QUEUE_NAME_MAX = 64
HINTS_MAX, HINT_LENGTH_MAX = 500, 100
SAY_MAX = 3000
RESPONSE_MAX = 64 * 1024

# Amazon Polly voices by the language they speak, for the languages flows use (Twilio's table); each may
# also be asked for as Polly.NAME-Neural or Polly.NAME-Generative where Amazon offers that engine.
POLLY = {"cmn-CN": {"Zhiyu"},
         "en-US": {"Danielle", "Gregory", "Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kevin", "Kimberly",
                   "Matthew", "Patrick", "Ruth", "Salli", "Stephen"}}
BASIC = {"man": {"en-US"}, "woman": {"en-US"}, "alice": {"en-US", "cmn-CN"}}  # Twilio's own voices
GOOGLE = re.compile(r"^Google\.(?P<language>[a-z]{2,3}-[A-Z]{2})-[A-Za-z0-9]+-[A-Z]$")  # Google.cmn-CN-Wavenet-A
POLLY_NAME = re.compile(r"^Polly\.(?P<name>[A-Z][a-z]+)(?:-(?:Neural|Generative|Standard))?$")


def ring_limit(seconds: float) -> str | None:
    low, high = DIAL_TIMEOUT[0] + DIAL_BUFFER, DIAL_TIMEOUT[1] + DIAL_BUFFER
    if not low <= seconds <= high:
        return (f"a ring limit of {seconds:g} s cannot be kept: Twilio rings {DIAL_TIMEOUT[0]}-{DIAL_TIMEOUT[1]} s "
                f"plus a {DIAL_BUFFER} s buffer; write between {low}s and {high}s")
    return None


def record_length(seconds: float) -> str | None:
    if seconds <= RECORD_MIN:
        return f"max_length {seconds:g} s is too short: Twilio's <Record maxLength> must be more than {RECORD_MIN} s"
    return None


def queue_name(name: str) -> str | None:
    if len(name) > QUEUE_NAME_MAX:
        return f"the queue name has {len(name)} characters; Twilio allows {QUEUE_NAME_MAX} at most"
    return None


def hints(words: list[str]) -> str | None:
    if len(words) > HINTS_MAX:
        return f"{len(words)} spoken words here; Twilio takes at most {HINTS_MAX} speech hints"
    long = next((w for w in words if len(w) > HINT_LENGTH_MAX), None)
    if long is not None:
        return f"'{long[:30]}…' has {len(long)} characters; a Twilio speech hint has {HINT_LENGTH_MAX} at most"
    return None


def say_text(text: str) -> str | None:
    if len(text) > SAY_MAX:
        return f"this text has {len(text)} characters; Twilio speaks at most {SAY_MAX} in one <Say>: split it"
    return None


def voice(name: str | None, language: str) -> str | None:
    if name is None:
        return None
    google, polly = GOOGLE.match(name), POLLY_NAME.match(name)
    if google:  # a Google voice's name says its language
        languages = {google["language"]}
    elif polly:
        languages = {lang for lang, names in POLLY.items() if polly["name"] in names}
        if not languages:
            known = ", ".join(f"Polly.{n}" for n in sorted(POLLY.get(language, ())))
            return f"'{name}' is not an Amazon Polly voice for the flow's languages; for {language}: {known}"
    elif name in BASIC:
        languages = BASIC[name]
    else:
        return (f"'{name}' is not a Twilio voice; write Polly.NAME (e.g. Polly.Zhiyu-Neural), "
                f"Google.LANGUAGE-KIND-X (e.g. Google.cmn-CN-Wavenet-A) or man, woman, alice")
    if language not in languages:
        return f"the voice '{name}' does not speak {language}; it speaks {', '.join(sorted(languages))}"
    return None


def flow_limits(flow, source) -> list:
    """The limits that apply to a whole flow: its voice, every <Say> and every response's size."""
    from ivr.steps import KINDS

    problems = []
    message = voice(flow.voice, flow.language)
    if message:
        problems.append(source.problem(("voice",), message))
    for name, step in flow.steps.items():
        texts = KINDS[step.kind].texts(getattr(step, step.kind), step, flow)
        for path, text in texts:
            message = say_text(text)
            if message:
                problems.append(source.problem(("steps", name) + path, message))
        size = sum(len(text.encode("utf-8")) for _, text in texts) * 2  # text plus markup, generously
        if size > RESPONSE_MAX:
            problems.append(source.problem(("steps", name), f"this step's TwiML would pass {RESPONSE_MAX // 1024} kB, "
                                                            "Twilio's limit for one response: say less"))
    return problems
