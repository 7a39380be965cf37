"""<Gather>: prompts nested inside play while Twilio listens; the caller's keys or speech go to `action`.

Twilio's documented behaviour, as simulated:
- nested <Say>/<Play>/<Pause> play first; a key press or speech during them barges in
  (Twilio stops the prompt);
- `timeout` (default 5 s) counts from the end of the prompts;
- keys: collection stops at `numDigits` keys or at `finishOnKey` (default #, not included);
  otherwise Twilio waits `timeout` s after the last key for more;
- speech goes as SpeechResult, with Confidence (0..1) only when the caller's speech has one: Twilio
  documents Confidence as an estimate of transcription accuracy that is not guaranteed to be sent
  (https://www.twilio.com/docs/voice/twiml/gather#action), so a script's `say` without a confidence
  (and a typed `say` without @) sends none;
- nothing at all: with actionOnEmptyResult="true" Twilio still requests `action` (no
  Digits, no SpeechResult); without it Twilio goes on with the next verb;
- `action` defaults to the document's own URL; relative URLs resolve against it.
"""
from __future__ import annotations

from urllib.parse import urljoin

from ivr.engine.speech import speech_seconds
from ivr.simulator.actions import PROMPT, AbortCall, HangUp, Press, Silence, Speak
from ivr.simulator.outcomes import End, Goto, attr_number


def gather(call, el, doc):
    timeout = attr_number(el.get("timeout"), 5.0)
    num_digits = attr_number(el.get("numDigits"), None)
    finish_keys = el.get("finishOnKey", "#")
    inputs = set((el.get("input") or "dtmf").split())
    action_url = urljoin(doc.url, el.get("action") or doc.url)
    method = (el.get("method") or "POST").upper()
    empty_goes_to_action = (el.get("actionOnEmptyResult") or "").lower() == "true"

    start = call.clock.now
    for child in el:
        call.hear(child, doc)
    prompt_end = call.clock.now
    choice = call.decide(call.moment(PROMPT, timeout=timeout, prompt_seconds=round(prompt_end - start, 3),
                                     details={"input": sorted(inputs), "num_digits": num_digits}))

    listened = (isinstance(choice, Press) and "dtmf" in inputs) or (isinstance(choice, Speak) and "speech" in inputs)
    if isinstance(choice, (Press, Speak)) and not listened:
        heard_kind = "keys" if isinstance(choice, Press) else "speech"
        call.note(f"the caller {_describe(choice)}, but this <Gather> does not listen for {heard_kind}")
        choice = Silence()  # Twilio neither stops the prompt nor collects it: the window passes
    if isinstance(choice, (Press, Speak, HangUp)):
        _when(call, choice, start, prompt_end, timeout)
        if isinstance(choice, HangUp):
            call.caller_does("hangs up", "hangup")
            return End("caller")
        if isinstance(choice, Press):
            return _keys(call, choice.keys, num_digits, finish_keys, timeout, action_url, method,
                         empty_goes_to_action)
        if choice.line or choice.audio:  # the caller's audio goes to the media streams (issue 11)
            return _audio_speech(call, choice, action_url, method, empty_goes_to_action)
        seconds = speech_seconds(choice.text)
        known = choice.confidence is not None
        call.caller_does(f"says {choice.text} ({f'confidence {choice.confidence:g}' if known else 'no Confidence sent'})",
                         "speak", seconds)
        call.clock.advance(seconds)
        call.send_audio(call.clock.now)
        params = {"SpeechResult": choice.text}
        if known:
            params["Confidence"] = f"{choice.confidence:g}"
        return Goto(action_url, params, method)

    if not isinstance(choice, Silence):
        raise AbortCall(f"at a prompt (t={prompt_end:g}s) the caller can press keys, speak, stay silent, wait or "
                        f"hang up, not {type(choice).__name__}")
    call.caller_does(f"(silent for {timeout:g} s)", "silence", timeout)
    call.clock.advance(timeout)
    call.send_audio(call.clock.now)
    return Goto(action_url, {}, method) if empty_goes_to_action else None


def _when(call, choice, start, prompt_end, timeout) -> None:
    """Move the clock to the moment the caller acts: during the prompts (barge-in) or in the window after."""
    barge_in = getattr(choice, "barge_in", None)
    if barge_in is not None and barge_in < prompt_end - start:
        moment = round(start + barge_in, 3)
        call.transcript.cut_at(moment)  # Twilio stops the prompt the moment the caller speaks or presses
        call.clock.rewind_to(moment)
        return
    after = choice.after
    if after >= timeout:
        raise AbortCall(f"the caller would act {after:g} s after the prompt ended at t={prompt_end:g}s, but this "
                        f"<Gather> stops listening after {timeout:g} s (use `silence` first, or a smaller `after`)")
    call.clock.advance(after)


def _keys(call, keys, num_digits, finish_keys, timeout, action_url, method, empty_goes_to_action):
    digits, finished = "", False
    for key in keys:
        if finish_keys and key in finish_keys:
            finished = True
            break
        digits += key
        if num_digits and len(digits) >= num_digits:
            finished = True
            break
    call.caller_does(f"presses {keys}", "press")
    if not finished:
        call.clock.advance(timeout)  # Twilio waits `timeout` s after the last key for more
    call.send_audio(call.clock.now)
    if not digits:
        return Goto(action_url, {}, method) if empty_goes_to_action else None
    return Goto(action_url, {"Digits": digits}, method)


def _audio_speech(call, choice, action_url, method, empty_goes_to_action):
    """The caller speaks with audio: synthesised on a line of a kind, or a file played. Twilio posts
    what its recogniser heard: the script's text (none for a file without a transcription)."""
    from ivr.simulator import line_audio
    from ivr.simulator.actions import AbortCall

    try:
        pcm = line_audio.read_audio(choice.audio) if choice.audio else line_audio.speech(choice.text, choice.line)
    except (line_audio.AudioUnavailable, ValueError) as exc:
        raise AbortCall(f"the caller's audio: {exc}") from exc
    call.line = choice.line or call.line or "clear"
    seconds, at = len(pcm) / line_audio.RATE, call.clock.now
    known = choice.confidence is not None  # Twilio may send no Confidence: then the simulator sends none
    confidence = f"confidence {choice.confidence:g}" if known else "no Confidence sent"
    what = f"plays {choice.audio}" if choice.audio else f"says {choice.text} on a {choice.line} line"
    heard = f" (heard as {choice.text}, {confidence})" if choice.audio and choice.text else ""
    call.caller_does(what + heard if choice.audio else f"{what} ({confidence})", "speak", round(seconds, 2))
    call.clock.advance(seconds)
    call.send_audio(call.clock.now, pcm, at)
    if not choice.text:
        return Goto(action_url, {}, method) if empty_goes_to_action else None
    params = {"SpeechResult": choice.text}
    if known:
        params["Confidence"] = f"{choice.confidence:g}"
    return Goto(action_url, params, method)


def _describe(choice) -> str:
    return f"presses {choice.keys}" if isinstance(choice, Press) else f"says {choice.text}"
