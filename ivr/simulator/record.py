"""<Record>: the caller speaks after the beep; Twilio posts the recording to `action`.

Twilio's documented behaviour, as simulated: the recording ends when the caller presses a
`finishOnKey` key (default any key; Digits = that key), stays silent for `timeout` s
(default 5), reaches `maxLength` s (default 3600), or hangs up (Digits = "hangup"; the
request is made but its TwiML is not run). The action gets RecordingUrl, RecordingSid,
RecordingDuration and Digits. A silent recording is still saved (`trim` defaults to
trim-silence, which trims silence but keeps the file) and the action URL is still requested,
with a RecordingDuration of 0 or 1 s: https://www.twilio.com/docs/voice/twiml/record#attributes-trim
and https://www.twilio.com/docs/voice/twiml/record#attributes-action (the app must not treat it
as a message).
"""
from __future__ import annotations

from urllib.parse import urljoin

from ivr.engine.speech import speech_seconds
from ivr.simulator.actions import RECORD, AbortCall, HangUp, Press, RecordSpeech, Silence, Speak
from ivr.simulator.legs import new_sid
from ivr.simulator.outcomes import End, Goto, attr_number

DEFAULT_FINISH_KEYS = "1234567890*#"


def record(call, el, doc):
    action_url = urljoin(doc.url, el.get("action") or doc.url)
    method = (el.get("method") or "POST").upper()
    timeout = attr_number(el.get("timeout"), 5.0)
    max_length = attr_number(el.get("maxLength"), 3600.0)
    finish_keys = el.get("finishOnKey", DEFAULT_FINISH_KEYS)
    if (el.get("playBeep") or "true").lower() != "false":
        call.note("(beep)")

    choice = call.decide(call.moment(RECORD, timeout=timeout, details={"max_length": max_length,
                                                                       "finish_keys": finish_keys}))
    if isinstance(choice, Speak):
        choice = RecordSpeech(speech_seconds(choice.text), None)
    if isinstance(choice, Press):
        choice = RecordSpeech(0.0, choice.keys[:1])
    if isinstance(choice, HangUp):
        choice = RecordSpeech(0.0, "hangup")
    if isinstance(choice, Silence):
        choice = RecordSpeech(0.0, None)
    if not isinstance(choice, RecordSpeech):
        raise AbortCall(f"while recording (t={call.clock.now:g}s) the caller can speak, press a key, stay silent "
                        f"or hang up, not {type(choice).__name__}")

    spoken = min(choice.seconds, max_length)
    if spoken:
        call.caller_does(f"speaks for {spoken:g} s (recorded)", "record", spoken)
        call.clock.advance(spoken)
    then = choice.then if spoken < max_length else None  # at maxLength Twilio stops by itself
    if then == "hangup":
        call.caller_does("hangs up", "hangup")
        if spoken:  # Twilio still delivers the recording; the answer is not played to anyone
            call.fetch(action_url, _recording(call, spoken, "hangup", "completed"), method)
        return End("caller")
    if then and then not in finish_keys:
        raise AbortCall(f"the caller would end the recording with '{then}', but this <Record> finishes only on "
                        f"'{finish_keys}'")
    if then:
        call.caller_does(f"presses {then}", "press")
    elif spoken < max_length:
        call.clock.advance(timeout)  # silence ends the recording after `timeout` s
    if not spoken:
        call.note("(a silent recording: Twilio saves it anyway and requests the action URL)")
    return Goto(action_url, {k: v for k, v in _recording(call, spoken, then).items()}, method)


def _recording(call, seconds: float, digits: str | None, status: str | None = None) -> dict:
    sid = new_sid("RE")
    params = {"RecordingSid": sid, "RecordingDuration": str(int(round(seconds))),
              "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{call.leg.account_sid}/Recordings/{sid}"}
    if digits:
        params["Digits"] = digits
    if status:  # a request made after the caller hung up carries the call's final status
        return call.leg.params(status, **params)
    return params
