"""The fake Twilio against the real Flask app: signatures, URLs, the verbs' timing on the virtual clock."""
from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from flask import Flask, request

from ivr.simulator import actions as act
from ivr.simulator.callers import Caller
from ivr.simulator.fake_twilio import Call
from ivr.simulator.runner import InProcessRun, in_process, place_call, run_script
from ivr.simulator.script import ScriptError, load_script
from ivr.simulator.transcript import CALL, CALLER, HEARS
from ivr.simulator.transport import InProcessTransport
from ivr.simulator.typed import BadCommand, parse_command
from ivr.store import MemoryStore
from ivr.twilio import create_app
from ivr.twilio.music import hold_music_wav, wav_seconds

REPO = Path(__file__).resolve().parent.parent
ZH = REPO / "call_flows" / "bank_hotline.yaml"
EN = REPO / "call_flows" / "bank_hotline_en.yaml"
TOKEN = "sim-test-token-0123456789abcdef"


class Scripted(Caller):
    """A caller that does the given things, in order, at the moments that ask; then hangs up."""

    def __init__(self, *actions):
        super().__init__()
        self.actions = list(actions)

    def choose(self, moment):
        if moment.kind in (act.BETWEEN, act.PAUSE):
            return None
        return self.actions.pop(0) if self.actions else act.HangUp()


@functools.lru_cache(maxsize=None)
def shared_run() -> InProcessRun:
    """One app per flow file for the module's calls, over one memory store (each call has its own CallSid)."""
    return InProcessRun(token=TOKEN)


def call(*actions, flow=ZH, store=None, caller_id="+8613700000000"):
    if store is None:
        transport, store = shared_run().transport(flow), shared_run().store
    else:
        transport = in_process([flow], store=store, token=TOKEN)
    result = place_call(transport, Scripted(*actions), None, caller_id)
    assert result.error is None, result.error
    return result, store


def lines(result, who=HEARS, kind=None):
    return [line for line in result.transcript.lines if line.who == who and (kind is None or line.kind == kind)]


def requests(store, sid, path="/twilio/event"):
    return [e for e in store.call_log(sid) if e["kind"] == "request" and e["path"] == path]


# --- signatures ----------------------------------------------------------------------------

def test_signed_requests_are_accepted_and_really_checked():
    store = MemoryStore()
    transport = in_process([ZH], store=store, token=TOKEN)
    assert transport.app.extensions["ivr"].signatures.token is not None, "the in-process app checks signatures"
    result = place_call(transport, Scripted(act.Press("2"), act.Press("1"), act.AgentAnswers()), None)
    assert result.error is None
    params = requests(store, result.call_sid)[0]["params"]
    assert params["CallSid"].startswith("CA") and len(params["CallSid"]) == 34
    assert params["AccountSid"].startswith("AC") and len(params["AccountSid"]) == 34
    assert {params["CallStatus"], params["Direction"], params["ApiVersion"]} == {"in-progress", "inbound",
                                                                                 "2010-04-01"}
    status = requests(store, result.call_sid, "/twilio/status")[0]["params"]
    assert status["CallStatus"] == "completed" and int(status["CallDuration"]) == round(result.duration)


def test_the_in_process_transport_is_a_plain_wsgi_server():
    """Requests reach the app as a WSGI server hands them over (PEP 3333, checked by wsgiref's validator),
    with what the app reads of Twilio's request: host, scheme, form body, signature."""
    from wsgiref.validate import validator

    seen = []
    app = create_app([str(ZH)], store=MemoryStore(), auth_token=TOKEN)

    @app.before_request
    def note():
        seen.append((request.url, request.headers.get("Content-Type"), request.form.get("SpeechResult")))

    transport = InProcessTransport(validator(app), TOKEN, base_url="https://ivr.example.com")
    result = Call(transport, Scripted(act.Press("2"), act.Speak("我要 挂失&=", 0.9))).run()
    assert result.error is None
    assert seen[0][0] == "https://ivr.example.com/twilio/voice"
    assert seen[0][1].startswith("application/x-www-form-urlencoded")
    assert "我要 挂失&=" in [speech for _, _, speech in seen]


def test_a_forged_signature_gets_403_and_a_clear_report():
    app = create_app([str(ZH)], store=MemoryStore(), auth_token=TOKEN)
    forged = InProcessTransport(app, "not-the-servers-token")
    result = Call(forged, Scripted()).run()
    assert result.ended_by is None
    assert "403" in result.error and "X-Twilio-Signature" in result.error and "TWILIO_AUTH_TOKEN" in result.error
    assert result.transcript.heard() == []


def test_without_a_token_the_simulator_calls_a_server_that_checks_none(monkeypatch):
    """The README's `./dev serve` then `ivr simulate --url ...`: neither side has a token."""
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    app = create_app([str(ZH)], store=MemoryStore(), auth_token="")
    result = Call(InProcessTransport(app, None), Scripted(act.Press("9"))).run()
    assert result.error is None and "欢迎致电" in " ".join(line.text for line in result.transcript.heard())
    guarded = create_app([str(ZH)], store=MemoryStore(), auth_token=TOKEN)
    refused = Call(InProcessTransport(guarded, None), Scripted()).run()
    assert "403" in refused.error and "none if neither is set" in refused.error


# --- URLs --------------------------------------------------------------------------------------

def test_relative_urls_resolve_against_the_document_that_holds_them():
    """Twilio's rule (RFC 3986, like urljoin): 'step2' next to /ivr/start is /ivr/step2, and so on."""
    seen = []
    app = Flask("relative-urls")

    @app.route("/<path:path>", methods=["GET", "POST"])
    def any_path(path):
        seen.append(request.full_path.rstrip("?"))
        twiml = {"ivr/start": '<Gather action="step2" actionOnEmptyResult="true" timeout="2"><Say>hi</Say></Gather>',
                 "ivr/step2": '<Redirect>../other/end?x=1</Redirect>',
                 "other/end": '<Play>music/tone.wav</Play>'}.get(path, "")
        if path.endswith(".wav"):
            return hold_music_wav(3), 200, {"Content-Type": "audio/wav"}
        return f"<Response>{twiml}</Response>", 200, {"Content-Type": "text/xml"}

    transport = InProcessTransport(app, TOKEN, base_url="https://ivr.example.com")
    result = Call(transport, Scripted(act.Silence()), voice_path="/ivr/start").run()
    assert result.error is None, result.error
    assert seen == ["/ivr/start", "/ivr/step2", "/other/end?x=1", "/other/music/tone.wav", "/twilio/status"]
    assert lines(result, kind="play")[0].seconds == 3
    assert result.ended_by == "engine", "a document with no more verbs ends the call"


def twiml_server(pages: dict[str, str], seen: list) -> Flask:
    """A bare TwiML server (not our app) for Twilio behaviour our app never asks for."""
    app = Flask("twiml-pages")

    @app.route("/<path:path>", methods=["GET", "POST"])
    def page(path):
        seen.append((request.path, request.form.to_dict()))
        return f"<Response>{pages.get(path, '')}</Response>", 200, {"Content-Type": "text/xml"}

    return app


def test_without_action_on_empty_result_twilio_goes_on_with_the_next_verb():
    seen = []
    app = twiml_server({"start": '<Gather input="dtmf" timeout="3" action="/got"><Say>Press a key.</Say></Gather>'
                                 '<Say>We did not get a key.</Say>'}, seen)
    result = Call(InProcessTransport(app, TOKEN), Scripted(act.Speak("hello")), voice_path="/start").run()
    said = lines(result, kind="say")
    assert [line.text for line in said] == ["Press a key.", "We did not get a key."]
    assert said[1].t == pytest.approx(said[0].end + 3, abs=0.001), "speech is not listened for: the window passes"
    assert [path for path, _ in seen] == ["/start", "/twilio/status"], "no request to the Gather action"


def test_keys_without_num_digits_wait_for_the_finish_key():
    seen = []
    app = twiml_server({"start": '<Gather timeout="4" action="/got"/>', "got": "<Hangup/>"}, seen)
    result = Call(InProcessTransport(app, TOKEN), Scripted(act.Press("1234#")), voice_path="/start").run()
    assert seen[1] == ("/got", {**seen[1][1], "Digits": "1234"}) and result.duration == 0
    result = Call(InProcessTransport(app, TOKEN), Scripted(act.Press("12")), voice_path="/start").run()
    assert seen[-2][1]["Digits"] == "12" and result.duration == 4, "no # : Twilio waits `timeout` for more keys"


def test_the_apps_relative_action_urls_are_followed():
    result, store = call(act.Press("1"), act.Press("1"), act.StayOnHold(), act.Press("2"))
    paths = [(e["path"], e["query"].get("k")) for e in store.call_log(result.call_sid) if e["kind"] == "request"]
    assert paths[:4] == [("/twilio/voice", None), ("/twilio/event", "gather"), ("/twilio/event", "gather"),
                         ("/twilio/hold/wait", None)]
    assert ("/twilio/event", "queue") in paths


# --- Gather ---------------------------------------------------------------------------------------

def test_gather_silence_advances_the_clock_by_exactly_the_timeout(tmp_path):
    flow = yaml.safe_load(ZH.read_text(encoding="utf-8"))
    flow["etiquette"] = {"silence": {"listen": "8s"}}
    path = tmp_path / "eight_seconds.yaml"
    path.write_text(yaml.safe_dump(flow, allow_unicode=True), encoding="utf-8")
    (tmp_path / "callers.yaml").write_text((ZH.parent / "callers.yaml").read_text(encoding="utf-8"), "utf-8")
    result, _ = call(act.Silence(), flow=path)
    prompt, retry = lines(result, kind="say")[1], lines(result, kind="say")[2]
    assert retry.t == pytest.approx(prompt.end + 8, abs=0.001)
    assert retry.text == "您好,请问有什么可以帮助您?"


def test_keys_pressed_during_a_prompt_barge_in():
    result, store = call(act.Press("*", barge_in=2.5))
    greeting = lines(result, kind="say")[0]
    assert greeting.interrupted and greeting.seconds == 2.5
    assert "查询账户余额请按1" not in [line.text for line in lines(result, kind="say")[:2]]
    press = lines(result, CALLER, "press")[0]
    assert press.t == 2.5
    assert requests(store, result.call_sid)[0]["params"]["Digits"] == "*"
    assert lines(result, kind="say")[2].louder, "E7: the prompt again, louder"


def test_speech_posts_speech_result_and_confidence():
    result, store = call(act.Speak("我要挂失", 0.3))
    params = requests(store, result.call_sid)[0]["params"]
    assert params["SpeechResult"] == "我要挂失" and params["Confidence"] == "0.3" and "Digits" not in params


def test_a_louder_repeat_is_slower_on_the_clock():
    from ivr.engine.speech import speech_seconds

    result, _ = call(act.Press("*"))
    louder = next(line for line in lines(result, kind="say") if line.louder)
    assert louder.seconds == pytest.approx(speech_seconds(louder.text, 0.85), abs=0.01)
    assert louder.seconds > speech_seconds(louder.text)


# --- Enqueue: holds -----------------------------------------------------------------------------

def test_hold_check_ins_are_never_more_than_30_s_apart():
    result, store = call(act.Press("1"), act.Press("1"), act.StayOnHold(), act.Press("2"))
    queued = next(line for line in result.transcript.lines if line.who == CALL and "queued" in line.text)
    left = next(line for line in result.transcript.lines if line.who == CALL and "leaves the queue" in line.text)
    voices = [line for line in lines(result, kind="say") if line.t <= left.t]
    holding = [voices[-1]] + [line for line in lines(result, kind="say") if queued.t <= line.t <= left.t]
    limit_words = next(line for line in lines(result, kind="say") if line.t >= left.t)
    spoken = holding + [limit_words]
    gaps = [b.t - a.end for a, b in zip(spoken, spoken[1:])]
    assert len(spoken) >= 3 and max(gaps) <= 30
    waits = requests(store, result.call_sid, "/twilio/hold/wait")
    assert [int(w["params"]["QueueTime"]) for w in waits] == [0, 30, 59, 60]
    assert all(w["params"]["QueueSid"].startswith("QU") for w in waits)
    # issue 9: the queue's figures change while the caller waits, as a real queue's do
    assert [w["params"]["QueuePosition"] for w in waits] == ["3", "2", "1", "1"]
    assert len({w["params"]["AvgQueueTime"] for w in waits}) > 1
    action = [e for e in requests(store, result.call_sid) if e["query"]["k"] == "queue"][0]["params"]
    assert action["QueueResult"] == "leave" and action["QueueTime"] == "60"


def test_hold_music_lasts_as_long_as_its_wav():
    result, _ = call(act.Press("1"), act.Press("1"), act.StayOnHold(), act.Press("2"))
    music = lines(result, kind="play")
    assert music
    for line in music:
        seconds = int(line.text.split("seconds=")[1])
        assert line.seconds == wav_seconds(hold_music_wav(seconds)) == seconds
    first = music[0]
    following = next(line for line in result.transcript.lines if line.t > first.t)
    assert following.t == pytest.approx(first.end, abs=0.001)


def test_an_agent_taking_the_call_runs_the_queue_url_on_the_callers_end():
    result, store = call(act.Press("1"), act.Press("1"), act.AgentTakes(after=40, talk=25), act.Press("2"))
    back = [line for line in lines(result, kind="say") if line.text == "让您久等了,感谢您的耐心等待。"]
    assert back, "the caller hears the <Queue url> TwiML"
    returned = requests(store, result.call_sid, "/twilio/hold/return")[0]["params"]
    assert returned["QueueTime"] == "40" and returned["DequeingCallSid"].startswith("CA")
    action = [e for e in requests(store, result.call_sid) if e["query"]["k"] == "queue"][0]["params"]
    assert action["QueueResult"] == "bridged" and action["QueueTime"] == "40"
    anything_else = next(line for line in lines(result, kind="say") if "还有其他" in line.text)
    assert anything_else.t == pytest.approx(back[0].end + 25, abs=0.001), "then they talk 25 s"


def test_caller_hanging_up_on_hold_tells_the_enqueue_action_then_the_status_callback():
    result, store = call(act.Press("1"), act.Press("1"), act.HangUp(after=20))
    assert result.ended_by == "caller" and result.duration == pytest.approx(lines(result, CALL)[0].t + 20, abs=0.01)
    log = [e for e in store.call_log(result.call_sid) if e["kind"] == "request"]
    assert log[-2]["params"]["QueueResult"] == "hangup" and log[-2]["params"]["CallStatus"] == "completed"
    assert log[-1]["path"] == "/twilio/status"


# --- Dial: warm transfers -------------------------------------------------------------------------

def test_dial_no_answer_after_the_ring_limit():
    result, store = call(act.Press("0"), act.Press("1"), act.NoAnswer(), act.Press("3"))
    ringing = next(line for line in result.transcript.lines if line.who == CALL and "ringing" in line.text)
    apology = next(line for line in lines(result, kind="say") if line.t > ringing.t)
    assert apology.t == pytest.approx(ringing.t + 30, abs=0.001) and "非常抱歉" in apology.text
    dial = [e for e in requests(store, result.call_sid) if e["query"]["k"] == "dial"][0]["params"]
    assert dial["DialCallStatus"] == "no-answer"
    assert result.transferred_to is None


def test_an_accepted_transfer_runs_the_whisper_on_the_agents_own_leg():
    result, store = call(act.Press("2"), act.Press("1"), act.AgentAnswers(ring=7, talk=50), act.Press("2"),
                         caller_id="+8613800138000")
    whisper = [line for line in result.transcript.lines if line.who == "agent-hears"]
    assert whisper and "张先生" in whisper[0].text and "接听请按1" in whisper[0].text
    assert all("接听请按1" not in line.text for line in lines(result)), "the caller does not hear the whisper"
    whisper_request = next(e for sid in [result.call_sid] for e in store.call_log(sid) if e.get("fact") == "agent_accepted")
    agent_log = store.call_log(whisper_request["agent_call"])
    agent_params = agent_log[0]["params"]
    assert agent_params["ParentCallSid"] == result.call_sid and agent_params["CallSid"] != result.call_sid
    assert agent_params["Direction"] == "outbound-dial"
    dial = [e for e in requests(store, result.call_sid) if e["query"]["k"] == "dial"][0]["params"]
    assert dial["DialCallStatus"] == "completed" and dial["DialCallSid"] == agent_params["CallSid"]
    assert int(dial["DialCallDuration"]) >= 50 and dial["DialBridged"] == "true"
    assert result.transferred_to == "sip:cards@pbx.huaxia-demo-bank.example.com"


def test_issue9_dial_rings_timeout_plus_twilios_5s_buffer_and_the_caller_waits_the_promise():
    result, store = call(act.Press("2"), act.Press("1"), act.AgentAnswers(ring=27, talk=10), act.Press("2"))
    assert result.transferred_to, "25 s timeout + Twilio's 5 s: an answer at 27 s is still taken"
    result, store = call(act.Press("2"), act.Press("1"), act.NoAnswer(), act.Press("2"))
    ringing = next(line for line in result.transcript.lines if "ringing" in line.text)
    apology = next(line for line in lines(result, kind="say") if line.t > ringing.t)
    assert apology.t - ringing.t == pytest.approx(30, abs=0.01), "the caller waits the 30 s promised, not 35"


def test_a_declining_agent_leaves_the_caller_unconnected():
    result, store = call(act.Press("0"), act.Press("1"), act.AgentDeclines(), act.Press("3"))
    dial = [e for e in requests(store, result.call_sid) if e["query"]["k"] == "dial"][0]["params"]
    assert dial["DialCallStatus"] == "completed", "the agent's leg was answered: Twilio reports completed"
    assert dial["DialBridged"] == "false"
    assert result.transferred_to is None
    assert any("非常抱歉" in line.text for line in lines(result))


# --- Record -----------------------------------------------------------------------------------------

def test_record_posts_the_recording_and_the_finish_key():
    result, store = call(act.Press("3"), act.RecordSpeech(20, "#"))
    params = [e for e in requests(store, result.call_sid) if e["query"]["k"] == "record"][0]["params"]
    assert params["RecordingUrl"].startswith("https://") and params["RecordingDuration"] == "20"
    assert params["Digits"] == "#"
    promise = next(line for line in lines(result) if "两个工作日" in line.text)
    spoke = lines(result, CALLER, "record")[0]
    assert promise.t == pytest.approx(spoke.end, abs=0.001)


def test_silence_ends_a_recording_after_its_timeout():
    result, store = call(act.Press("3"), act.RecordSpeech(12, None))
    params = [e for e in requests(store, result.call_sid) if e["query"]["k"] == "record"][0]["params"]
    assert "Digits" not in params and params["RecordingDuration"] == "12"
    spoke = lines(result, CALLER, "record")[0]
    promise = next(line for line in lines(result) if "两个工作日" in line.text)
    assert promise.t == pytest.approx(spoke.end + 5, abs=0.001), "<Record timeout> defaults to 5 s of silence"


# --- Hangup and the goodbye pause ---------------------------------------------------------------------

def test_engine_hangs_up_after_the_goodbye_pause():
    result, _ = call(act.Press("1"), act.Press("2"))
    goodbye = lines(result, kind="say")[-1]
    assert goodbye.text == "感谢您的来电,再见!"
    assert result.ended_by == "engine" and result.duration == pytest.approx(goodbye.end + 3, abs=0.001)


# --- caller scripts and typed commands ------------------------------------------------------------------

def test_script_mistakes_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"flow: {ZH}\nsteps:\n  - hear: 您好\n  - press: x\n", encoding="utf-8")
    with pytest.raises(ScriptError, match=r"bad.yaml:4: press: keys are 0-9"):
        load_script(bad)
    bad.write_text(f"flow: {ZH}\nsteps:\n  - say: yes\n", encoding="utf-8")
    with pytest.raises(ScriptError, match=r"bad.yaml:3: .*quotes"):
        load_script(bad)


def test_a_failing_script_explains_the_first_mismatch(tmp_path):
    script = tmp_path / "wrong.yaml"
    script.write_text(f"flow: {ZH}\nsteps:\n  - hear: {{text: 查询账户余额请按1, between: [0, 3]}}\n  - press: 1\n",
                      encoding="utf-8")
    outcome = run_script(script)
    assert not outcome.passed
    assert "step 1 (line 3" in outcome.failure and "at t=9.71s" in outcome.failure and "between 0 and 3 s" in \
        outcome.failure


def test_typed_commands_and_their_one_line_explanations():
    assert parse_command("press 12#", act.PROMPT) == act.Press("12#")
    assert parse_command("say 我要挂失 @0.3", act.PROMPT) == act.Speak("我要挂失", 0.3)
    assert parse_command("wait 30s", act.PROMPT) == act.Wait(30)
    assert parse_command("take after 40s talk 1m", act.HOLD) == act.AgentTakes(40, 60)
    assert parse_command("answers ring 3s", act.TRANSFER) == act.AgentAnswers(3, 60)
    with pytest.raises(BadCommand) as bad:
        parse_command("dance", act.PROMPT)
    assert "\n" not in str(bad.value) and "press KEYS" in str(bad.value)


def test_wait_carries_the_caller_through_timeouts():
    result, _ = call(act.Wait(12), act.Press("1"))
    silent = lines(result, CALLER, "silence")
    press = lines(result, CALLER, "press")[0]
    prompt_end = lines(result, kind="say")[1].end
    assert len(silent) == 1, "5 s of silence, a retry prompt, and 4 s more of the quiet 12 s"
    assert press.t == pytest.approx(prompt_end + 12, abs=0.001)


def test_ivr_simulate_reads_piped_commands_and_explains_bad_ones():
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "simulate", str(EN), "--from", "+15551230002"],
                          input="press 7x\npress 1\npress 2\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    assert "Hello Ms Li" in out and "Traceback" not in out and "\x1b[" not in done.stdout
    assert "'press 7x': keys are 0-9, * and #" in out
    assert "Thank you for calling. Goodbye." in out and "call ends: the caller hung up" in out


def test_issue9_speech_without_a_confidence_sends_no_confidence_as_twilio_may():
    result, store = call(act.Speak("我要挂失"))
    params = requests(store, result.call_sid)[0]["params"]
    assert params["SpeechResult"] == "我要挂失" and "Confidence" not in params


def test_issue9_a_silent_recording_still_requests_the_action_as_twilio_does():
    result, store = call(act.Press("3"), act.Silence())
    params = [e for e in requests(store, result.call_sid) if e["query"]["k"] == "record"][0]["params"]
    assert params["RecordingDuration"] == "0" and params["RecordingUrl"].startswith("https://")
    heard = [line.text for line in lines(result)]
    assert "很抱歉,我们没有听到您的留言,这次没有录音。" in heard and not any("两个工作日" in t for t in heard)


# --- issue 9.5: the simulator refuses a verb Twilio forbids in a context ---------------------------

@pytest.mark.parametrize("context", ["wait", "queue_url", "whisper"])
def test_issue9_simulator_refuses_dial_where_twilio_forbids_it(context):
    import xml.etree.ElementTree as ET

    from ivr.simulator.dial import _agent_side
    from ivr.simulator.enqueue import Queue
    from ivr.simulator.outcomes import Document
    from ivr.simulator.transport import SimulatorError

    transport = in_process([ZH])
    sim = Call(transport, ScriptedOrNone())
    doc = Document("http://localhost/x", ET.fromstring("<Response><Say>hi</Say><Dial>+15550100000</Dial></Response>"))
    queue = Queue(sim, ET.fromstring('<Enqueue waitUrl="/w">q</Enqueue>'), doc)
    with pytest.raises(SimulatorError, match="Dial"):
        if context == "wait":
            queue.run_wait_document(doc)
        elif context == "queue_url":
            queue.run_before_bridge(doc)
        else:
            _agent_side(sim, sim.leg.dialled("+1"), doc, act.AgentAnswers())


def test_issue9_gather_is_allowed_in_a_wait_url():
    import xml.etree.ElementTree as ET

    from ivr.simulator.enqueue import Queue
    from ivr.simulator.outcomes import Document

    sim = Call(in_process([ZH]), ScriptedOrNone())
    doc = Document("http://localhost/x", ET.fromstring(
        '<Response><Gather timeout="3" numDigits="1"><Say>press 1 to leave</Say></Gather></Response>'))
    queue = Queue(sim, ET.fromstring('<Enqueue waitUrl="/w">q</Enqueue>'), doc)
    queue.plan, queue.deadline = act.StayOnHold(), None
    assert queue.run_wait_document(doc) is None and sim.clock.now > 3


class ScriptedOrNone:
    def decide(self, moment):
        return None


# --- issue 9.9: an outage: Twilio requests the fallback URL, or plays its error message ---------------

class _Outage(Caller):
    def choose(self, moment):
        if moment.kind == act.PROMPT:
            return act.Press("1")
        if moment.kind == act.TRANSFER:
            return act.NoAnswer()
        return None if moment.kind in (act.BETWEEN, act.PAUSE) else act.HangUp()


def _broken_app():
    transport = in_process([ZH])

    @transport.app.before_request
    def down():
        if request.path == "/twilio/event":
            return "upstream down", 502
        return None
    return transport


def test_issue9_an_http_error_makes_twilio_request_the_fallback_url():
    transport = _broken_app()
    result = place_call(transport, _Outage(), "bank_hotline")
    heard = [line.text for line in lines(result)]
    assert result.webhook_failures and result.webhook_failures[0][0].startswith("/twilio/event")
    assert "非常抱歉,系统暂时出现问题,正在为您转接人工客服,请不要挂机。" in heard
    assert heard[-1] == "感谢您的来电,再见!", "the fallback transfer failed: it still ends politely"


def test_issue9_a_slow_answer_makes_twilio_request_the_fallback_url(monkeypatch):
    """Twilio waits 15 s for a webhook's answer, then requests the fallback URL; here the limit is
    shortened so the test stays quick, and the app's action URL answers just too late."""
    import time as _time

    from ivr.simulator import fake_twilio

    monkeypatch.setattr(fake_twilio, "READ_TIMEOUT", 0.2)
    transport = in_process([ZH])

    @transport.app.before_request
    def slow():
        if request.path == "/twilio/event":
            _time.sleep(0.3)
        return None

    result = place_call(transport, _Outage(), "bank_hotline")
    assert result.webhook_failures and "took more than" in result.webhook_failures[0][1]
    assert "非常抱歉,系统暂时出现问题,正在为您转接人工客服,请不要挂机。" in [line.text for line in lines(result)]


def test_issue9_without_a_fallback_url_the_caller_hears_twilios_error_message():
    result = place_call(_broken_app(), _Outage(), "bank_hotline", fallback_path=None)
    assert [line.text for line in lines(result)][-1] == "We are sorry, an application error has occurred. Goodbye."


def test_issue9_simulate_url_with_a_flow_in_the_path_calls_that_flow():
    from ivr.simulator.commands import _split_voice_url

    assert _split_voice_url("http://h:8080/twilio/voice/bank_hotline_en") == ("http://h:8080", "/twilio/voice/bank_hotline_en")
    assert _split_voice_url("http://h:8080/") == ("http://h:8080", None)


def test_issue9_a_public_url_mismatch_is_named_not_blamed_on_the_token():
    from ivr.simulator.transport import SimulatorError

    token = "tok-0123456789"
    app = create_app([str(ZH)], store=MemoryStore(), auth_token=token, public_url="https://ivr.example.com")
    transport = InProcessTransport(app, token)
    with pytest.raises(SimulatorError, match="--public-url"):
        transport.send("POST", "http://localhost/twilio/voice", {"CallSid": "CA" + "1" * 32})
    transport.public_url = "https://ivr.example.com"
    assert transport.send("POST", "http://localhost/twilio/voice", {"CallSid": "CA" + "1" * 32}).status == 200


def test_issue9_get_webhooks_carry_twilios_parameters_in_the_query_string():
    app = Flask("echo")

    @app.get("/hook")
    def hook():
        return request.args.to_dict()

    transport = InProcessTransport(app, "t")
    reply = transport.send("GET", "http://localhost/hook?k=1", {"CallSid": "CA1", "Digits": "5"})
    assert yaml.safe_load(reply.text) == {"k": "1", "CallSid": "CA1", "Digits": "5"}


def test_media_to_a_running_server_is_paced_as_twilio_streams_it():
    """A running server drops audio that comes faster than 3x real time (a flood); the simulator's
    HTTP socket sends media at most 2x real time, other messages at once."""
    import json as _json
    import time as _time

    from ivr.simulator.transport import HttpSocket

    sent = []
    socket = HttpSocket.__new__(HttpSocket)
    socket.ws = type("WS", (), {"send": lambda self, text: sent.append(text)})()
    socket.opened, socket.frames = _time.monotonic(), 0
    socket.send(_json.dumps({"event": "start"}))
    started = _time.monotonic()
    for _ in range(20):  # 0.4 s of audio: 0.2 s at 2x real time, not at once
        assert socket.send(_json.dumps({"event": "media", "media": {"payload": ""}}))
    took = _time.monotonic() - started
    assert 0.18 <= took < 0.6, took
    assert len(sent) == 21


def test_words_expected_after_the_last_action_are_checked(tmp_path):
    """A script whose last steps are only `hear`: the caller stays on the line listening for them, and the
    script fails, naming the words, when they never come (it used to hang up at once and pass)."""
    never = tmp_path / "never_said.yaml"
    never.write_text(f"flow: {ZH}\nsteps:\n  - press: 1\n  - hear: 这句话从来没人说过\n", encoding="utf-8")
    outcome = run_script(never)
    assert not outcome.passed and "这句话从来没人说过" in outcome.failure
    said = tmp_path / "said_later.yaml"  # words that do come, after more prompts: the caller waits for them
    said.write_text(f"flow: {ZH}\nsteps:\n  - hear: 欢迎致电\n  - hear: 换一部电话\n", encoding="utf-8")
    outcome = run_script(said)
    assert outcome.passed, outcome.failure
    assert outcome.result.duration > 30, "the caller stayed, silent, through the E2 ladder to its last words"
