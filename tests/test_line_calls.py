"""Issue 11 end to end: the caller's audio over a Media Stream picks the etiquette ladder.

Simulator calls (in-process, the virtual clock): a speakerphone caller hears E4, a quiet caller E3,
a noisy caller E5 with the keypad offered, a silent line E2; a call without audio behaves as before.
The WebSocket endpoint on a real server (Werkzeug on 127.0.0.1) with Twilio-framed μ-law made with
espeak-ng + sox; bad input dropped, never a crash; the join's bounded wait.
"""
from __future__ import annotations

import base64
import json
import shutil
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.call import facts
from ivr.media.live import line_for
from ivr.media.stream import call_secret
from ivr.simulator.runner import in_process, place_call
from ivr.simulator.transcript import HEARS
from ivr.simulator.typed import TypedCaller
from ivr.store import MemoryStore

REPO = Path(__file__).resolve().parent.parent
ZH = REPO / "call_flows" / "bank_hotline.yaml"
EN = REPO / "call_flows" / "bank_hotline_en.yaml"
needs_audio = pytest.mark.skipif(any(shutil.which(t) is None for t in ("espeak-ng", "sox")),
                                 reason="espeak-ng and sox not installed (.ci/run installs them)")


def call(flow, *commands):
    store = MemoryStore()
    transport = in_process([flow], store=store)
    lines = iter(commands)
    caller = TypedCaller(read_line=lambda prompt: next(lines, None), show=lambda text: None, interactive=False)
    result = place_call(transport, caller, called="+15550100000" if flow == EN else None)
    assert result.error is None, result.error
    log = store.call_log(result.call_sid)
    return [ln.text for ln in result.transcript.lines if ln.who == HEARS], [facts.parse(e) for e in log], result


def line_facts(log):
    return [(f.condition, f.ladder) for f in log if isinstance(f, facts.LineHeard)]


@needs_audio
def test_speakerphone_caller_hears_e4():
    heard, log, _ = call(ZH, "say 我想问一下我的信用卡 --line speakerphone")
    assert "对不起,您的声音太小,请您拿起话筒说话好吗?" in heard
    assert ("speakerphone", "speakerphone") in line_facts(log)
    assert not any("大声一点" in h for h in heard)  # E4 instead of "speak louder"


@needs_audio
def test_speakerphone_caller_hears_e4_in_english():
    heard, log, _ = call(EN, "say I would like to ask about my credit card --line speakerphone")
    assert any("pick up the handset" in h for h in heard), heard
    assert ("speakerphone", "speakerphone") in line_facts(log)


@needs_audio
def test_quiet_caller_hears_e3_then_the_last_words():
    heard, log, result = call(ZH, "say 我想问一下我的信用卡 --line quiet", "say 我想问一下我的信用卡 --line quiet",
                              "silence")
    assert "对不起!请您大声一点,好吗?" in heard
    assert "对不起!您的电话声音太小,请您换一部电话打来,好吗?再见!" in heard
    assert line_facts(log)[:2] == [("quiet", "quiet"), ("quiet", "quiet")]


@needs_audio
def test_noisy_caller_hears_e5_with_the_keypad_offered():
    heard, log, _ = call(ZH, "say 我想问一下我的信用卡 --line noisy")
    assert "很对不起,我没听清,请您重复一遍好吗?您也可以按键选择。" in heard
    assert ("noisy", "noisy") in line_facts(log)


@needs_audio
def test_silent_line_hears_e2(tmp_path):
    wav = tmp_path / "nothing.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(np.zeros(8000 * 3, dtype=np.int16).tobytes())
    heard, log, _ = call(ZH, f"play {wav}")
    assert "您好,请问有什么可以帮助您?" in heard
    assert ("silent", "silence") in line_facts(log)


@needs_audio
def test_understood_caller_is_not_asked_to_change_phones():
    heard, log, _ = call(ZH, "say 我要查询余额 --line speakerphone", "hangup")
    assert not any("话筒" in h for h in heard)
    assert ("speakerphone", None) in line_facts(log)


def test_without_audio_the_call_is_as_before():
    heard, log, _ = call(ZH, "say 我想问一下我的信用卡")
    assert "很对不起,我没听清,请您重复一遍好吗?您也可以按键选择。" in heard  # E6's first words, from the text
    assert line_facts(log) == []
    assert any(f for f in log if isinstance(f, facts.Listening) and f.ladder == "not_understood")


def test_first_answer_starts_the_stream_with_the_per_call_secret():
    transport = in_process([ZH], store=MemoryStore(), token="tok")
    reply = transport.send("POST", "http://localhost/twilio/voice", {"CallSid": "CAx1", "From": "+86137", "To": "+86"})
    xml = reply.text
    assert '<Start><Stream name="line" track="inbound_track" url="wss://localhost/twilio/stream">' in xml
    assert f'<Parameter name="lineSecret" value="{call_secret("tok", "CAx1")}" />' in xml
    assert xml.index("<Start>") < xml.index("<Gather")


# --- the join: bounded wait, fallback ------------------------------------------------------------

def test_join_without_any_record_does_not_wait():
    store = MemoryStore()
    t0 = time.monotonic()
    assert line_for(store, "CAnone", 0) is None
    assert time.monotonic() - t0 < 0.05


def test_join_waits_at_most_150_ms_for_a_lagging_stream_then_falls_back():
    store = MemoryStore()
    store.start("CAlag", {"turn": 0, "flow": "f"}, "<Response/>", [])
    store.put_line("CAlag", None, {"condition": "quiet", "seconds": 3.0, "at": time.time() - 5, "figures": {}})
    t0 = time.monotonic()
    assert line_for(store, "CAlag", 0) is None
    assert 0.14 <= time.monotonic() - t0 < 0.3


def test_join_takes_a_verdict_filed_while_it_waits():
    store = MemoryStore()
    store.start("CAlate", {"turn": 0, "flow": "f"}, "<Response/>", [])
    store.put_line("CAlate", None, {"condition": "clear", "seconds": 3.0, "at": time.time() - 5, "figures": {}})
    threading.Timer(0.05, lambda: store.put_line("CAlate", None, {
        "condition": "speakerphone", "seconds": 4.0, "at": time.time(), "figures": {"reverb_s": 1.6}})).start()
    line = line_for(store, "CAlate", 0)
    assert line is not None and line.condition == "speakerphone" and line.figures["reverb_s"] == 1.6


def test_join_ignores_too_little_audio():
    store = MemoryStore()
    store.start("CAshort", {"turn": 0, "flow": "f"}, "<Response/>", [])
    store.put_line("CAshort", None, {"condition": "silent", "seconds": 0.2, "at": time.time(), "figures": {}})
    assert line_for(store, "CAshort", 0) is None
