"""Twilio's webhook parameters -> the engine's events, in our own words.

Twilio reference (the contract):
- <Gather> action: `Digits`, or `SpeechResult` with an optional `Confidence` (0.0-1.0, an estimate
  of transcription accuracy) — https://www.twilio.com/docs/voice/twiml/gather#action
- <Enqueue> action: `QueueResult` (bridged, queue-full, system-error, hangup, redirected, leave),
  `QueueTime` — https://www.twilio.com/docs/voice/twiml/enqueue#action
- <Dial> action: `DialCallStatus` (completed, answered, busy, no-answer, failed, canceled),
  `DialBridged` — https://www.twilio.com/docs/voice/twiml/dial#action
- <Record> action: `RecordingUrl`, `RecordingDuration` — https://www.twilio.com/docs/voice/twiml/record#action
- status callback and every request: `CallStatus` — https://www.twilio.com/docs/voice/api/call-resource#call-status-values
"""
from __future__ import annotations

import math

from ivr.engine import events as ev

FINAL_STATUSES = {"completed", "canceled", "failed", "busy", "no-answer"}
MAX_DIGITS = 32  # more than any menu needs; longer input is treated as a wrong key
MAX_SPEECH = 500
QUEUE_RESULTS = {"bridged": "served", "leave": "limit"}  # anything else: the hold failed
DIAL_FAILURES = {"no-answer": "no_answer", "busy": "busy"}  # failed, canceled: failed


def number(value) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return 0.0
    return result if math.isfinite(result) and result >= 0 else 0.0


def confidence(value) -> float | None:
    """Twilio's Confidence: "a confidence score between 0.0 and 1.0. A higher confidence score means a
    better likelihood that the transcription is accurate" — an estimate of transcription accuracy, not of
    volume, and "not guaranteed" to be sent (https://www.twilio.com/docs/voice/twiml/gather#action).
    Missing or unreadable is None: unknown, so the words decide."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return min(result, 1.0) if math.isfinite(result) and result >= 0 else None


def caller_gone(params) -> bool:
    return params.get("CallStatus") in FINAL_STATUSES


def recording(params) -> ev.Recorded:
    return ev.Recorded(params.get("RecordingUrl", ""), number(params.get("RecordingDuration")))


def gathered(params):
    digits = params.get("Digits", "").strip()
    if digits:
        return ev.Digits(digits if len(digits) <= MAX_DIGITS else "?")
    speech = params.get("SpeechResult", "").strip()
    if speech:
        return ev.Speech(speech[:MAX_SPEECH], confidence(params.get("Confidence")))
    return ev.Silence()


def queue_ended(params):
    result = params.get("QueueResult", "")
    if result == "hangup":
        return ev.CallerHungUp()
    return ev.HoldEnded(QUEUE_RESULTS.get(result, "failed"), number(params.get("QueueTime")))


def dial_bridged(params) -> bool:
    """Twilio's word that the caller and the dialled party were connected: `DialBridged` ("true"/"false",
    https://www.twilio.com/docs/voice/twiml/dial#action); older requests without it: answered means bridged."""
    bridged = params.get("DialBridged")
    if bridged is not None:
        return bridged.strip().lower() == "true"
    return params.get("DialCallStatus") in ("completed", "answered")


def dial_outcome(params, accepted: bool) -> str:
    """Our words for how a warm transfer ended, from DialCallStatus, DialBridged and our own record of the
    agent's acceptance: connected when the two were bridged (Twilio's DialBridged) after the agent accepted;
    declined when the agent answered and did not accept; failed when the agent accepted but Twilio did
    not bridge the caller; no_answer, busy, failed otherwise."""
    status = params.get("DialCallStatus", "failed")
    bridged = params.get("DialBridged", "").strip().lower()
    if status in ("completed", "answered"):
        if bridged == "true":
            return "connected"  # Twilio says they talked, whatever our record of the key press
        if not accepted:
            return "declined"
        return "failed" if bridged == "false" else "connected"
    return DIAL_FAILURES.get(status, "failed")


def event_for(kind: str, params, accepted: bool = False):
    """One action URL's request -> one engine event. `kind` is the URL's `k`."""
    if caller_gone(params):  # the caller is gone; Twilio ignores what we answer
        rec = recording(params) if kind == "record" and params.get("RecordingUrl") else None
        return ev.CallerHungUp(rec)
    if kind == "gather":
        return gathered(params)
    if kind == "pause":
        return ev.PauseOver()
    if kind == "record":
        return recording(params)
    if kind == "queue":
        return queue_ended(params)
    if kind == "dial":
        return ev.TransferEnded(dial_outcome(params, accepted))
    raise ValueError(f"unknown event kind '{kind}'")
