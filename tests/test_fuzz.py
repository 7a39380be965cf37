"""Property-based fuzz of every webhook endpoint (issue 12, "keep and prove").

Signed requests (the attacker of issue 12 had a valid token) with hostile values — control
characters, huge or negative turns, unknown kinds, random parameters, calls at every stage — must
never give a 5xx, never log a traceback, and always answer well-formed TwiML that uses only the verbs
Twilio allows where that endpoint's TwiML runs. Bounded: a fixed number of examples per endpoint,
no per-example deadline (the first examples warm caches).
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.store import MemoryStore
from ivr.twilio import create_app
from test_webhooks import FLOWS, TOKEN, Twilio

EXAMPLES = 200

# Verbs Twilio runs in each context (twilio.com/docs/voice/twiml); nested nouns are checked by parent.
CALLER = {"Say", "Play", "Pause", "Gather", "Redirect", "Dial", "Enqueue", "Record", "Hangup", "Reject", "Leave", "Start"}  # <Start><Stream>: the line audio (issue 11)
ALLOWED = {
    "/twilio/voice": CALLER,
    "/twilio/event": CALLER,
    "/twilio/hold/wait": {"Say", "Play", "Pause", "Gather", "Redirect", "Leave", "Hangup"},  # Enqueue waitUrl
    "/twilio/hold/return": {"Say", "Play", "Pause"},  # <Queue url>: played to the caller before the bridge
    "/twilio/whisper": {"Say", "Play", "Pause", "Gather", "Hangup"},  # <Number url>: on the agent's leg
    "/twilio/whisper/answer": {"Say", "Play", "Pause", "Gather", "Hangup"},
    "/twilio/status": set(),  # Twilio ignores a status callback's answer: we send none
}
SSML = {"prosody", "break", "emphasis", "s", "p", "lang", "say-as", "sub", "phoneme", "w", "amazon:effect"}
CHILDREN = {"Gather": {"Say", "Play", "Pause"}, "Dial": {"Number", "Queue", "Client", "Sip", "Conference"},
            "Start": {"Stream", "Parameter"}}  # <Start><Stream><Parameter/>: https://www.twilio.com/docs/voice/twiml/stream

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x9F), max_size=20),
    st.sampled_from(["", "1", "0", "#", "*", "9", "hangup", "+1555\x01", "</Say><Dial>+1</Dial>", "NaN", "inf",
                     "-1e308", "1e308", "好的", "挂失", "\ud7ff\ufffe\uffff", "\x00"]),
)
turns = st.one_of(st.integers(-3, 8).map(str), st.sampled_from(["", "x", "-100000000000000000000", "1e3", " 1",
                                                                  "99999999999999999999999", "0x1", "٣"]))
kinds = st.one_of(st.sampled_from(["gather", "pause", "record", "queue", "dial", "", "bogus"]), hostile_text)
twilio_params = st.fixed_dictionaries({}, optional={
    "Digits": hostile_text, "SpeechResult": hostile_text, "Confidence": hostile_text, "From": hostile_text,
    "To": hostile_text, "CallStatus": st.one_of(st.sampled_from(["in-progress", "completed", "busy", "no-answer",
                                                                 "failed", "canceled", "ringing"]), hostile_text),
    "QueueResult": st.one_of(st.sampled_from(["bridged", "leave", "hangup", "queue-full", "system-error"]),
                             hostile_text),
    "QueueTime": hostile_text, "DialCallStatus": st.one_of(st.sampled_from(["completed", "answered", "busy",
                                                                            "no-answer", "failed"]), hostile_text),
    "RecordingUrl": hostile_text, "RecordingDuration": hostile_text, "CallDuration": hostile_text,
    "ParentCallSid": hostile_text,
})


class Tracebacks(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        if record.exc_info or "Traceback" in record.getMessage():
            self.records.append(self.format(record))


@pytest.fixture(scope="module")
def world():
    app = create_app([str(FLOWS / "bank_hotline.yaml")], store=MemoryStore(), auth_token=TOKEN)
    twilio = Twilio(app)
    calls = [twilio.call() for _ in range(3)]
    calls[1].gather(Digits="1")
    calls[1].gather(Digits="1")  # on hold
    calls[2].gather(Digits="0")
    calls[2].gather(Digits="1")  # ringing an agent
    catcher = Tracebacks()
    logging.getLogger().addHandler(catcher)
    yield twilio, [c.sid for c in calls], catcher
    logging.getLogger().removeHandler(catcher)


sids = st.one_of(st.integers(0, 2), st.sampled_from(["CA" + "a" * 32, "CAfuzz", "", "CA\x01", "x" * 80]))


def check(world, path: str, query: dict, params: dict, sid):
    twilio, live, catcher = world
    sid = live[sid] if isinstance(sid, int) else sid
    url = path + ("?" + urlencode(query) if query else "")
    reply = twilio.post(url, {**params, "CallSid": sid})
    assert reply.status_code < 500, reply.data
    assert not catcher.records, catcher.records[0]
    if reply.status_code != 200:
        assert reply.status_code == 400 and not twilio_ok_sid(sid)
        return
    root = ET.fromstring(reply.data)
    assert root.tag == "Response"
    for verb in root:
        assert verb.tag in ALLOWED[path], f"<{verb.tag}> in the answer of {path}"
        for inner in verb.iter():
            if inner is not verb:
                assert inner.tag in CHILDREN.get(verb.tag, set()) | SSML, f"<{inner.tag}> in <{verb.tag}> ({path})"


def twilio_ok_sid(sid: str) -> bool:
    import re

    return re.match(r"^[A-Za-z0-9]{2,64}$", sid) is not None


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(sid=sids, params=twilio_params, flow=st.one_of(st.none(), st.sampled_from(["bank_hotline", "nope"]),
                                                     hostile_text))
def test_fuzz_voice(world, sid, params, flow):
    from urllib.parse import quote

    check(world, "/twilio/voice" + (f"/{quote(flow, safe='')}" if flow else ""), {}, params, sid) \
        if not flow else _voice_flow(world, sid, params, quote(flow, safe=""))


def _voice_flow(world, sid, params, flow):
    # /twilio/voice/<flow>: the same contract as /twilio/voice
    twilio, live, catcher = world
    sid = live[sid] if isinstance(sid, int) else sid
    reply = twilio.post(f"/twilio/voice/{flow}", {**params, "CallSid": sid})
    assert reply.status_code in (200, 400, 404, 405), reply.status_code
    assert not catcher.records, catcher.records[0]
    if reply.status_code == 200:
        root = ET.fromstring(reply.data)
        assert root.tag == "Response" and all(v.tag in CALLER for v in root)


@SETTINGS
@given(sid=sids, params=twilio_params, k=kinds, t=turns)
def test_fuzz_event(world, sid, params, k, t):
    check(world, "/twilio/event", {"k": k, "t": t}, params, sid)


@SETTINGS
@given(sid=sids, params=twilio_params, t=turns, path=st.sampled_from(["/twilio/hold/wait", "/twilio/hold/return",
                                                                       "/twilio/status"]))
def test_fuzz_hold_and_status(world, sid, params, t, path):
    check(world, path, {"t": t}, params, sid)


@SETTINGS
@given(sid=sids, params=twilio_params, t=turns, parent=st.one_of(st.integers(0, 2), hostile_text),
       path=st.sampled_from(["/twilio/whisper", "/twilio/whisper/answer"]))
def test_fuzz_whisper(world, sid, params, t, parent, path):
    live = world[1]
    parent = live[parent] if isinstance(parent, int) else parent
    check(world, path, {"parent": parent, "t": t}, params, sid)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seconds=st.one_of(st.integers(-10, 10**30).map(str), hostile_text))
def test_fuzz_music(world, seconds):
    twilio, _, catcher = world
    reply = twilio.client.get("/twilio/music?" + urlencode({"seconds": seconds}))
    assert reply.status_code in (200, 400)
    assert not catcher.records
    if reply.status_code == 200:
        from ivr.twilio.music import MAX_SECONDS, wav_seconds
        assert 1 <= wav_seconds(reply.data) <= MAX_SECONDS
