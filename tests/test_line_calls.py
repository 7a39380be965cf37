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


# --- the WebSocket endpoint on a real server -------------------------------------------------------

@pytest.fixture
def server():
    """The app under Werkzeug's threaded server on 127.0.0.1 (a real WebSocket upgrade)."""
    from werkzeug.serving import make_server

    from ivr.twilio import create_app

    store = MemoryStore()
    app = create_app([str(ZH)], store=store, auth_token="tok")
    app.extensions["ivr_line"].idle_seconds = 1.0
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    # shutdown() waits for serve_forever to look at its flag again: every 0.5 s by default
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"127.0.0.1:{srv.server_port}", store, app
    srv.shutdown()


def _signed(url: str) -> dict:
    from twilio.request_validator import RequestValidator

    return {"X-Twilio-Signature": RequestValidator("tok").compute_signature(url, {})}


def _twilio_messages(call_sid: str, pcm: np.ndarray, secret: str, stream_sid: str = "MZ" + "1" * 32):
    from ivr.media.analyser import ulaw_encode

    yield json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    yield json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {
        "streamSid": stream_sid, "accountSid": "AC" + "0" * 32, "callSid": call_sid, "tracks": ["inbound"],
        "customParameters": {"lineSecret": secret},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
    payload = ulaw_encode(pcm[: pcm.size - pcm.size % 160])
    for n, i in enumerate(range(0, len(payload), 160)):
        yield json.dumps({"event": "media", "sequenceNumber": str(n + 2), "streamSid": stream_sid, "media": {
            "track": "inbound", "chunk": str(n + 1), "timestamp": str(n * 20),
            "payload": base64.b64encode(payload[i:i + 160]).decode()}})


def _start_call(store, sid):
    store.start(sid, {"turn": 0, "flow": "bank_hotline", "ended": False}, "<Response/>", [])


@needs_audio
def test_websocket_stream_files_the_window_verdict(server):
    from simple_websocket import Client

    from ivr.simulator import line_audio

    host, store, app = server
    app.extensions["ivr_line"].streams.flood_factor = 1e6  # this test sends faster than real time
    _start_call(store, "CAws1")
    pcm = np.concatenate([line_audio.background("speakerphone", 1.0),
                          line_audio.speech("我想问一下我的信用卡还款的事情", "speakerphone")])
    # simple-websocket's client sends Host without the port: the server checks the URL it is asked for
    ws = Client.connect(f"ws://{host}/twilio/stream", headers=_signed("wss://127.0.0.1/twilio/stream"))
    for text in _twilio_messages("CAws1", pcm, call_secret("tok", "CAws1")):
        ws.send(text)
    deadline = time.time() + 5
    while time.time() < deadline:
        rec = store.get_line("CAws1", 0)
        if rec and rec["until_ms"] >= len(pcm) // 8 - 200:
            break
        time.sleep(0.02)
    ws.close()
    assert rec["condition"] == "speakerphone", rec
    assert line_for(store, "CAws1", 0).condition == "speakerphone"


def test_websocket_upgrade_without_a_signature_is_refused_and_sockets_are_bounded(server, monkeypatch):
    """Twilio signs the upgrade; with a token set an unsigned one is refused. A socket that never says
    start is closed, and a worker keeps threads for its webhooks: past its limit a socket is closed."""
    from simple_websocket import Client, ConnectionClosed

    from ivr.twilio import stream_ws

    host, store, app = server
    with pytest.raises(Exception):
        Client.connect(f"ws://{host}/twilio/stream")
    monkeypatch.setattr(stream_ws, "START_WITHIN", 0.1)  # 5 s in the product
    ws = Client.connect(f"ws://{host}/twilio/stream", headers=_signed("wss://127.0.0.1/twilio/stream"))
    with pytest.raises((ConnectionClosed, OSError)):
        for _ in range(250):
            time.sleep(0.02)
            ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    slots = app.extensions["ivr_line_slots"]
    for _ in range(slots.limit):
        assert slots.acquire(blocking=False)
    try:
        ws = Client.connect(f"ws://{host}/twilio/stream", headers=_signed("wss://127.0.0.1/twilio/stream"))
        with pytest.raises((ConnectionClosed, OSError)):
            for _ in range(250):
                time.sleep(0.02)
                ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    finally:
        for _ in range(slots.limit):
            slots.release()


def test_websocket_upgrade_with_a_wrong_signature_is_refused(server):
    from simple_websocket import Client

    host, _, _ = server
    with pytest.raises(Exception):
        Client.connect(f"ws://{host}/twilio/stream", headers={"X-Twilio-Signature": "forged"})


def test_websocket_bad_input_is_dropped_and_the_server_lives_on(server, caplog):
    from simple_websocket import Client, ConnectionClosed

    host, store, _ = server
    _start_call(store, "CAbad")
    ws = Client.connect(f"ws://{host}/twilio/stream", headers=_signed("wss://127.0.0.1/twilio/stream"))
    for text in ("not json", "[1, 2]", json.dumps({"event": "media", "streamSid": "MZnobody"}),
                 json.dumps({"event": "bogus", "streamSid": "MZx"}), "x" * 70000):
        ws.send(text)
    # a start with a wrong secret: the socket is closed, no audio taken
    msgs = list(_twilio_messages("CAbad", np.zeros(1600, dtype=np.int16), "wrong"))
    ws.send(msgs[1])
    with pytest.raises((ConnectionClosed, OSError)):  # closed by the server (OSError: the client saw it first)
        for _ in range(250):  # up to 5 s: a loaded machine is slow, a socket left open never closes
            ws.send(msgs[2])
            time.sleep(0.02)
    assert store.get_line("CAbad", 0) is None
    # audio for a call that has ended: the stream is refused by the store, the socket closed
    store.end_call("CAbad", {"turn": 1, "flow": "bank_hotline", "ended": True}, [])
    ws = Client.connect(f"ws://{host}/twilio/stream", headers=_signed("wss://127.0.0.1/twilio/stream"))
    with pytest.raises((ConnectionClosed, OSError)):  # closed by the server (OSError: the client saw it first)
        for text in _twilio_messages("CAbad", np.zeros(8000, dtype=np.int16), call_secret("tok", "CAbad")):
            ws.send(text)
            time.sleep(0.001)
        for _ in range(250):
            time.sleep(0.02)
            ws.send(msgs[2])
    # the server still serves
    ws = Client.connect(f"ws://{host}/twilio/stream", headers=_signed("wss://127.0.0.1/twilio/stream"))
    ws.close()


def test_a_stream_that_never_stops_is_closed_when_idle_and_freed(server):
    from simple_websocket import Client

    host, store, app = server
    idle = app.extensions["ivr_line"].idle_seconds = 0.15  # 15 s by default
    _start_call(store, "CAidle")
    ws = Client.connect(f"ws://{host}/twilio/stream", headers=_signed("wss://127.0.0.1/twilio/stream"))
    for text in list(_twilio_messages("CAidle", np.zeros(1600, dtype=np.int16), call_secret("tok", "CAidle")))[:3]:
        ws.send(text)
    last_sent = time.monotonic()
    streams = app.extensions["ivr_line"].streams
    deadline = time.time() + 1
    while len(streams) == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert len(streams) == 1
    # the server closes the socket and forgets the stream once it has been silent for `idle` seconds
    deadline = last_sent + 5
    while len(streams) or ws.connected:
        assert time.monotonic() < deadline, "the idle stream is closed and forgotten"
        time.sleep(0.01)
    assert time.monotonic() - last_sent >= idle, "not before it was idle"


# --- the scorecard's line part ---------------------------------------------------------------------

def test_line_card_and_flow_summary():
    from ivr.etiquette.report.line import line_card, line_summary, line_text

    log = [{"kind": "request"}, {"fact": "line_heard", "condition": "speakerphone", "ladder": "speakerphone"},
           {"fact": "line_heard", "condition": "speakerphone", "ladder": "speakerphone"},
           {"fact": "line_heard", "condition": "clear"}, {"fact": "line_heard", "condition": "<script>"}]
    card = line_card(log)
    assert card == {"windows": 3, "conditions": {"speakerphone": 2, "clear": 1},
                    "ladders": {"speakerphone": 2}, "main": "speakerphone"}
    assert line_text(card) == "speakerphone 2, clear 1; audio chose E4 speakerphone x2"
    summary = line_summary([card, line_card([]), line_card([{"fact": "line_heard", "condition": "quiet",
                                                             "ladder": "quiet"}])])
    assert summary["calls"] == 3 and summary["no audio"] == pytest.approx(1 / 3)
    assert summary["share_of_calls"]["speakerphone"] == pytest.approx(1 / 3)
    assert summary["ladders_chosen_by_audio"] == {"E3 quiet": 1, "E4 speakerphone": 2}


@needs_audio
def test_a_simulated_speakerphone_call_scores_its_line():
    from ivr.etiquette.report.line import line_card

    store = MemoryStore()
    transport = in_process([ZH], store=store)
    lines = iter(["say 我想问一下我的信用卡 --line speakerphone"])
    caller = TypedCaller(read_line=lambda prompt: next(lines, None), show=lambda text: None, interactive=False)
    result = place_call(transport, caller)
    card = line_card(store.call_log(result.call_sid))
    assert card["ladders"] == {"speakerphone": 1} and card["conditions"]["speakerphone"] >= 1
    # the scorecard (ivr report) carries it, per call and as the flow's share of calls per condition
    from ivr.etiquette.report import score_call, summarise

    scored = score_call(store.call_log(result.call_sid), result.call_sid)
    assert scored["line"]["main"] == "speakerphone"
    sums = summarise([scored])["bank_hotline"]
    assert sums["line"]["share_of_calls"]["speakerphone"] == 1.0
    assert sums["line"]["ladders_chosen_by_audio"] == {"E4 speakerphone": 1}
