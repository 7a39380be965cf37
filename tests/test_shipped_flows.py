"""The shipped flows, whole calls through the engine (no Twilio): what a caller of the bank hotline
hears, in ETIQUETTE.md's reference wording, and the timings asked for, for every rule the engine owns
(E1-E11, E15). The engine's own behaviour is tested on a small fixture flow (test_core.py); these
tests are the check that the shipped Mandarin and English flows keep the reference wording."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.engine import Engine, EngineError
from ivr.engine.state import CallState
from ivr.flow import load_flow

FLOWS = Path(__file__).resolve().parent.parent / "call_flows"
ZH, EN = FLOWS / "bank_hotline.yaml", FLOWS / "bank_hotline_en.yaml"
UNKNOWN, ZHANG = "+8613700000000", "+8613800138000"


class Call:
    """Drives one call: `said` is what the caller heard in the last turn."""

    def __init__(self, flow=ZH, caller=UNKNOWN):
        self.engine = Engine(load_flow(flow))
        self.state = self.engine.new_call(caller=caller)
        self.notes = []
        self._take(self.engine.start(self.state))

    def _take(self, turn):
        self.actions = turn.actions
        self.notes += turn.notes
        self.said = [a.text for a in turn.actions if isinstance(a, act.Say)]
        return self

    def send(self, event):
        # the state survives a round trip through JSON between any two webhooks
        self.state = CallState.from_dict(json.loads(json.dumps(self.state.to_dict())))
        return self._take(self.engine.handle(self.state, event))

    def press(self, keys):
        return self.send(ev.Digits(keys))

    def say(self, text, confidence=0.9):
        return self.send(ev.Speech(text, confidence))

    def silence(self):
        return self.send(ev.Silence())

    @property
    def text(self):
        return "".join(self.said)

    @property
    def last(self):
        return self.actions[-1]

    def facts(self, name):
        return [n.to_dict() for n in self.notes if n.to_dict()["fact"] == name]


def edited_zh(tmp_path, old, new):
    """A copy of the Mandarin flow with one edit (and its caller directory beside it)."""
    text = ZH.read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "callers.yaml").write_text((FLOWS / "callers.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "flow.yaml").write_text(text.replace(old, new), encoding="utf-8")
    return tmp_path / "flow.yaml"


def listens(call, seconds=5):
    assert isinstance(call.last, act.Listen), call.actions
    assert call.last.timeout == seconds


# --- E1 greeting, E8 addressing the caller ------------------------------------

def test_e1_greeting_comes_first_with_org_agent_and_offer_of_help():
    call = Call()
    assert call.said[0] == "您好,欢迎致电华夏示范银行客户服务热线,客服专员小王很高兴为您服务,请问有什么可以帮助您?"
    assert "按1" in call.said[1]
    listens(call)
    assert call.facts("greeted")[0]["text"] == call.said[0]


def test_e1_english_greeting():
    call = Call(EN)
    assert call.said[0].startswith("Hello, thank you for calling the Huaxia Demo Bank customer service hotline.")
    assert call.said[0].endswith("How may I help you?")


def test_e8_known_caller_is_addressed_by_surname():
    assert Call(caller=ZHANG).said[0].startswith("张先生,您好,欢迎致电")
    assert Call(caller="+8613900139000").said[0].startswith("李女士,您好")
    assert Call(EN, caller="+15551230002").said[0].startswith("Hello Ms Li, thank you")


# --- E2 silent line ------------------------------------------------------------

def test_e2_silent_line_reprompt_final_words_then_hang_up():
    call = Call()
    call.silence()
    assert call.said == ["您好,请问有什么可以帮助您?"]
    listens(call, 5)
    call.silence()
    assert call.said == ["对不起,您的电话没有声音,请您换一部电话再次打来,好吗?再见!"]
    listens(call, 5)  # the last 5 s still listen (E2 step 4)
    call.silence()
    assert call.said == [] and isinstance(call.last, act.Hangup)
    assert call.facts("hung_up") == [{"fact": "hung_up", "by": "engine", "after_goodbye": True, "ladder": "silence"}]
    assert call.state.ended


def test_e2_a_key_in_the_last_window_resumes_the_call():
    call = Call()
    call.silence()
    call.silence()
    call.press("1")
    assert call.said[0].startswith("我需要为您查询一下账户信息")
    assert not call.state.ended


def test_e2_counters_are_per_step_and_reset_after_valid_input():
    call = Call()
    call.silence()
    call.press("2")  # lost card: the consent question
    call.silence()
    assert call.said == ["您好,请问有什么可以帮助您?"], "a new step starts its ladder from the first reprompt"


def test_e2_english_wording():
    call = Call(EN)
    assert call.silence().said == ["Hello, how may I help you?"]
    assert "call us again from another phone? Goodbye." in call.silence().text


# --- E3 too quiet, E5 noisy, E6 dialect ------------------------------------------

def test_e3_too_quiet_needs_evidence_from_the_audio_then_asks_louder_and_says_goodbye():
    call = Call()
    assert call.send(ev.Speech("嗯", 0.9, line=ev.Line("quiet"))).said == ["对不起!请您大声一点,好吗?"]
    assert call.send(ev.Speech("嗯", None, line=ev.Line("quiet"))).said == ["对不起!您的电话声音太小,请您换一部电话打来,好吗?再见!"]
    listens(call, 5)
    assert isinstance(call.silence().last, act.Hangup)


@pytest.mark.parametrize("confidence", [0.0, 0.05, 0.1, 0.19])
def test_issue9_low_confidence_alone_is_never_a_claim_about_volume(confidence):
    call = Call()
    assert call.say("嗯", confidence).said == ["很对不起,我没听清,请您重复一遍好吗?您也可以按键选择。"]
    assert not call.facts("miss")[0]["ladder"] == "quiet"


def test_issue9_missing_confidence_is_unknown_the_words_decide():
    call = Call()
    assert "为了尽快为您办理挂失" in call.say("我的卡丢了", None).text
    call = Call(EN)
    assert "transfer you to our card services team" in call.say("I lost my card", None).text


def test_e5_noisy_line_offers_the_keypad_then_the_script():
    call = Call()
    assert call.say("挂...", 0.35).said == ["很对不起,我没听清,请您重复一遍好吗?您也可以按键选择。"]
    assert call.say("挂...", 0.35).said == ["对不起,您的电话杂音太大,听不清,请您换一部电话再次打来好吗?再见!"]
    listens(call, 5)
    assert isinstance(call.silence().last, act.Hangup)


def test_e5_noisy_then_clear_keys_carry_on():
    call = Call()
    call.say("挂...", 0.35)
    assert "为了尽快为您办理挂失" in call.press("2").text


def test_e6_speech_not_understood_asks_for_mandarin():
    call = Call()
    heard = [call.say("侬好,阿拉想问问").said[0] for _ in range(4)]
    assert heard[:3] == ["很对不起,我没听清,请您重复一遍好吗?您也可以按键选择。",
                         "对不起,请您讲普通话,好吗?谢谢!", "对不起,请您找一个可以讲普通话的人来,好吗?谢谢!"]
    assert heard[3].endswith("再见!")
    assert isinstance(call.say("侬好").last, act.Hangup)


def test_e6_a_wrong_key_counts_as_not_understood():
    call = Call()
    assert call.press("7").said == ["很对不起,我没听清,请您重复一遍好吗?您也可以按键选择。"]


# --- E7 the caller cannot hear us; 9 repeats the menu ------------------------------

@pytest.mark.parametrize("how", [ev.Digits("*"), ev.Speech("听不清", 0.9), ev.Speech("大声点", 0.8)])
def test_e7_repeat_louder_and_slower_after_an_apology(how):
    call = Call()
    menu = call.said[1]
    call.send(how)
    assert call.said == ["对不起,", menu]
    assert [a.louder for a in call.actions if isinstance(a, act.Say)] == [False, True]
    listens(call)
    assert not call.facts("miss"), "asking us to repeat is not a miss"


def test_nine_repeats_the_menu():
    call = Call()
    menu = call.said[1]
    assert call.press("9").said == [menu]


def test_e7_english_repeat():
    call = Call(EN)
    menu = call.said[1]
    assert call.say("sorry, can you repeat that?").said == ["Sorry.", menu]


# --- E9 hold -------------------------------------------------------------------------

def to_hold(call):
    call.press("1")
    assert call.said == ["我需要为您查询一下账户信息,大约需要一分钟,", "麻烦您稍等一下好吗?", "同意请按1或说好的,不同意请按2。"]
    listens(call)
    return call


def test_e9_hold_asks_first_then_holds_with_a_limit():
    call = to_hold(Call())
    call.say("好的")
    assert call.said == ["好的,请您稍等。"]
    assert call.last == act.Hold("accounts", 60)
    assert call.facts("consent")[-1]["given"] is True


def test_e9_hold_declined_offers_a_call_back():
    call = to_hold(Call())
    call.say("不可以")  # contains 可以, but the longer 不可以 wins
    assert "登记回电" in call.text and call.facts("consent")[-1]["given"] is False
    assert isinstance(call.last, act.Pause)  # straight on to the goodbye


def test_e9_music_and_check_ins_at_least_every_30s_then_leave_at_the_limit():
    call = to_hold(Call())
    call.press("1")
    t, voices, timeline = 0.0, [], []
    for _ in range(20):
        actions = call.engine.hold_wait(call.state, t)
        timeline.append((t, actions))
        if isinstance(actions[0], act.LeaveHold):
            break
        for a in actions:
            if isinstance(a, act.Say):
                assert a.text == "感谢您的耐心等待,我们正在为您处理。"
                voices.append(t)
                t += 4
            else:
                t += a.seconds
    assert isinstance(timeline[-1][1][0], act.LeaveHold)
    assert 59 <= t <= 65, "leaves the queue at the promised minute"
    gaps = [b - a for a, b in zip([0.0] + voices, voices + [t])]
    assert voices and max(gaps) <= 30.5


def test_e9_at_the_limit_thank_for_waiting_and_offer_choices():
    call = to_hold(Call())
    call.press("1")
    call.send(ev.HoldEnded("limit", waited=60))
    assert call.said == ["让您久等了。继续等待请按1,需要我们稍后给您回电请按2,留言请按3。"]
    call.press("1")
    assert call.last == act.Hold("accounts", 60), "keep waiting: back on hold with the same promise"
    call.send(ev.HoldEnded("limit", waited=60))
    call.press("3")
    assert "请在提示音后留言" in call.text and isinstance(call.last, act.Record)


def test_e9_served_goes_on_and_a_late_hold_is_a_breach():
    call = to_hold(Call())
    call.press("1")
    assert call.engine.hold_returning(call.state) == "让您久等了,感谢您的耐心等待。"
    call.send(ev.HoldEnded("served", waited=75))
    assert "还有其他可以帮助您的吗" in call.text
    assert call.facts("hold_ended")[-1]["breach"] is True


def test_e12_hanging_up_on_hold_is_a_dropped_call():
    call = to_hold(Call(caller=ZHANG))
    call.press("1")
    call.send(ev.CallerHungUp())
    assert call.facts("dropped") == [{"fact": "dropped", "step": "account_enquiry", "during": "hold",
                                      "caller": ZHANG}]


# --- E10 transfer --------------------------------------------------------------------

def to_transfer(call):
    call.press("0")
    if call.engine.flow.language == "cmn-CN":
        assert call.said[:2] == ["为了更好地为您服务,我需要为您转接人工客服,", "请问可以吗?"]
    else:
        assert call.said[:2] == ["So that we can help you better, I need to transfer you to one of our agents.",
                                 "Is that all right?"]
    return call


def test_e10_warm_transfer_asks_whispers_and_hands_over_only_when_accepted():
    call = to_transfer(Call(caller=ZHANG))
    call.say("可以")
    assert call.said == ["正在为您转接,请不要挂机。"]
    assert call.last == act.Transfer("sip:agents@pbx.huaxia-demo-bank.example.com", 30)
    whisper = call.engine.whisper(call.state)
    assert "来电号码8 6 1 3 8 0 0 1 3 8 0 0 0" in whisper and "张先生" in whisper and whisper.endswith("接听请按1。")
    call.send(ev.TransferEnded("connected"))
    assert "还有其他可以帮助您的吗" in call.text
    assert call.facts("transfer_ended")[-1]["outcome"] == "connected"


@pytest.mark.parametrize("outcome", ["no_answer", "busy", "declined", "failed"])
def test_e10_nobody_takes_the_call_apology_and_choice(outcome):
    call = to_transfer(Call())
    call.press("1")
    call.send(ev.TransferEnded(outcome))
    assert call.said == ["非常抱歉,现在暂时没有同事能接听您的电话。重新转接请按1,留言请按2,需要我们给您回电请按3。"]
    assert call.facts("transfer_ended")[-1]["outcome"] == outcome
    call.press("1")
    assert isinstance(call.last, act.Transfer), "try again"


def test_e10_declined_transfer_goes_back_to_the_menu():
    call = to_transfer(Call())
    call.press("2")
    assert "按1" in call.text and call.state.step == "main_menu"


def test_e10_unanswered_then_call_back():
    call = to_transfer(Call(EN))
    call.press("1")
    call.send(ev.TransferEnded("no_answer"))
    call.press("3")
    assert "arranged a call back" in call.text and call.facts("call_back_requested")


# --- E11 ending, E15 complaint -----------------------------------------------------------

def to_goodbye(call):
    call.press("3")
    call.send(ev.Recorded("https://api.twilio.com/rec/RE1", 12))
    call.press("2")
    assert call.said == ["感谢您的来电,再见!"]
    assert call.last == act.Pause(3)
    return call


def test_e11_goodbye_then_pause_then_we_hang_up():
    call = to_goodbye(Call())
    call.send(ev.PauseOver())
    assert isinstance(call.last, act.Hangup)
    assert call.facts("hung_up")[-1] == {"fact": "hung_up", "by": "engine", "after_goodbye": True}


def test_e11_the_caller_hangs_up_first_during_the_pause():
    call = to_goodbye(Call())
    call.send(ev.CallerHungUp())
    assert call.facts("hung_up")[-1]["by"] == "caller" and call.facts("hung_up")[-1]["after_goodbye"]


def test_e15_complaint_empathy_recording_and_reply_promise():
    call = Call()
    call.say("我要投诉")
    assert call.said == ["我非常理解您现在的心情,", "请在提示音后留下您的意见,说完请按井号键。"]
    assert call.last == act.Record(120, "#")
    call.send(ev.Recorded("https://api.twilio.com/rec/RE1", 42))
    assert call.said[0] == "谢谢您的宝贵意见,我们会在两个工作日内给您回复。"
    assert call.facts("recorded")[0]["url"].endswith("RE1")


# --- robustness -------------------------------------------------------------------------

def test_an_event_the_step_does_not_expect_is_an_engine_error():
    call = Call()
    with pytest.raises(EngineError):
        call.send(ev.HoldEnded("served"))


def test_a_corrupt_stored_step_is_an_engine_error():
    call = Call()
    call.state.step = "no_such_step"
    with pytest.raises(EngineError):
        call.engine.handle(call.state, ev.Silence())


def test_an_ended_call_only_hangs_up():
    call = Call()
    for _ in range(3):
        call.silence()
    assert call.silence().actions == [act.Hangup()]


def test_english_keywords_match_whole_words_only():
    call = to_transfer(Call(EN))
    # an unclear consent answer now hears the consent 'unsure' words and the keypad hint (issue 9.2)
    assert call.say("I know it").said == ["Sorry, I didn't quite understand.",
                                          "To agree, press 1 or say yes. If not, press 2."], "'know' is not 'no'"
    assert call.say("yes, okay").said == ["Connecting you now. Please stay on the line."]


def test_hanging_up_after_the_last_words_of_a_ladder_counts_as_after_goodbye():
    call = Call()
    call.silence()
    call.silence()  # 对不起,您的电话没有声音...再见!
    call.send(ev.CallerHungUp())
    assert call.facts("hung_up")[-1]["after_goodbye"] is True


def test_a_hold_one_second_over_its_promise_is_a_breach():
    call = to_hold(Call())
    call.press("1")
    call.send(ev.HoldEnded("limit", waited=61))
    assert call.facts("hold_ended")[-1]["breach"] is True


@pytest.mark.parametrize("answer, agreed", [("好的", True), ("可以", True), ("行", True), ("OK", True),
                                            ("ok吧", True), ("不行", False), ("不用了", False), ("2", False)])
def test_consent_words(answer, agreed):
    call = to_hold(Call())
    call.press(answer) if answer.isdigit() else call.say(answer)
    assert call.facts("consent")[-1]["given"] is agreed


def test_e10_a_flow_may_choose_where_an_unanswered_transfer_goes(tmp_path):
    call = Call(edited_zh(tmp_path, "      if_declined: main_menu\n    next: anything_else\n\n  complaint",
                          "      if_declined: main_menu\n      if_unanswered: agent\n"
                          "    next: anything_else\n\n  complaint"))
    call.press("2")
    call.press("1")
    call.send(ev.TransferEnded("busy"))
    assert call.said[0] == "非常抱歉,现在暂时没有同事能接听您的电话。"
    assert call.said[1].startswith("为了更好地为您服务") and call.state.step == "agent"


def test_e9_a_flow_may_choose_where_the_hold_limit_leads(tmp_path):
    call = to_hold(Call(edited_zh(tmp_path, "      if_declined: arrange_call_back\n",
                                  "      if_declined: arrange_call_back\n      if_limit: agent\n")))
    call.press("1")
    call.send(ev.HoldEnded("limit", waited=60))
    assert call.said[0] == "让您久等了,感谢您的耐心等待。" and call.state.step == "agent"


# --- issue 9.1: the last listening window listens ---------------------------------------

def _at_last_words(flow=ZH, how="silence"):
    call = Call(flow)
    for _ in range(2):
        if how == "silence":
            call.silence()
        else:
            call.say("挂...", 0.3)
    assert call.facts("final_words"), call.said
    listens(call, 5)
    return call


@pytest.mark.parametrize("event", [ev.Speech("喂?", 0.8), ev.Speech("请问你们几点下班", None),
                                   ev.Speech("喂,有人吗", 0.3), ev.Digits("7"), ev.Digits("#")])
def test_issue9_any_words_or_key_in_the_last_window_resume_with_an_apology_and_the_prompt(event):
    call = _at_last_words()
    menu = call.engine.render(call.engine.flow.steps["main_menu"].menu.prompt, call.state)
    call.send(event)
    assert call.said == ["对不起,我还在,我再说一遍。", menu]
    listens(call, 5)
    assert call.facts("resumed") and not call.state.ended
    assert call.silence().said == ["您好,请问有什么可以帮助您?"], "the ladder starts over"


@pytest.mark.parametrize("event", [ev.Silence(), ev.Speech("…", 0.9), ev.Speech("嗯", 0.05)])
def test_issue9_only_silence_or_line_noise_ends_the_last_window(event):
    call = _at_last_words()
    assert isinstance(call.send(event).last, act.Hangup)


def test_issue9_unclear_line_last_window_resumes_on_words_too():
    call = _at_last_words(how="noisy")
    assert call.say("hello?", 0.4).said[0] == "对不起,我还在,我再说一遍。"


def test_issue9_english_last_window_resumes():
    call = Call(EN)
    call.silence(), call.silence()
    assert call.say("hello? are you there?").said[0] == "Sorry, I'm still here. Let me say that again."


def test_issue9_a_choice_in_the_last_window_is_taken_directly():
    call = _at_last_words()
    assert "为了尽快为您办理挂失" in call.press("2").text


def test_issue9_the_whisper_reads_the_callers_number_digit_by_digit():
    call = Call(caller=ZHANG)
    assert "来电号码8 6 1 3 8 0 0 1 3 8 0 0 0" in call.engine.whisper(
        type(call.state)(**{**call.state.to_dict(), "step": "agent"}))
