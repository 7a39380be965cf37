"""Issue 9.2: consent answers understood with negation and idioms, in both languages; an unclear
answer is asked again (with the keypad hint), "say that again" repeats, and nothing unclear is a no."""
from __future__ import annotations

from pathlib import Path

import pytest

from ivr.engine import events as ev
from ivr.flow import load_flow
from ivr.steps.consent import NO, REPEAT, UNSURE, YES, understand

FLOWS = Path(__file__).resolve().parent.parent / "call_flows"
ZH = load_flow(FLOWS / "bank_hotline.yaml").flow.etiquette.consent
EN = load_flow(FLOWS / "bank_hotline_en.yaml").flow.etiquette.consent

ZH_TABLE = [
    ("好的", YES), ("好", YES), ("好啊", YES), ("可以", YES), ("可以的", YES), ("行", YES), ("行吧", YES),
    ("是的", YES), ("嗯嗯", YES), ("没问题", YES), ("没关系", YES), ("不介意", YES), ("我不介意", YES),
    ("不麻烦", YES), ("没事,你转吧", YES), ("好的没问题", YES), ("当然可以", YES), ("OK", YES), ("ok吧", YES),
    ("那好吧", YES), ("不要紧", YES), ("没有问题,等一下吧", YES), ("完全没问题", YES),
    ("不", NO), ("不行", NO), ("不可以", NO), ("不用了", NO), ("不要", NO), ("算了", NO), ("不太方便", NO),
    ("现在不方便", NO), ("不好", NO), ("我介意", NO), ("还是算了吧", NO), ("不用麻烦了", NO), ("不同意", NO),
    ("我不想等", NO), ("不不不", NO),
    ("不好意思您说什么", REPEAT), ("您说什么?", REPEAT), ("啥?", REPEAT), ("没听清", REPEAT),
    ("请再说一遍", REPEAT), ("不好意思,什么?", REPEAT),
    ("我不知道", UNSURE), ("要等多久啊", UNSURE), ("喂?", UNSURE), ("好不好啊", UNSURE),
    ("嗯……不用了", UNSURE), ("不确定", UNSURE), ("我想查一下余额", UNSURE), ("不好意思", UNSURE),
]

EN_TABLE = [
    ("yes", YES), ("Yeah.", YES), ("yep", YES), ("sure", YES), ("OK", YES), ("okay", YES), ("fine", YES),
    ("alright", YES), ("go ahead", YES), ("of course", YES), ("yes please", YES), ("no problem", YES),
    ("No problem at all.", YES), ("not a problem", YES), ("I don't mind", YES), ("I don’t mind at all", YES),
    ("no worries", YES), ("sure, why not", YES), ("that's fine", YES), ("I guess so", YES),
    ("yes, I can wait", YES), ("by all means", YES), ("sounds good", YES), ("put me through", YES),
    ("no", NO), ("nope", NO), ("no thanks", NO), ("no, thank you", NO), ("not now", NO), ("I'd rather not", NO),
    ("not really", NO), ("of course not", NO), ("absolutely not", NO), ("that's not okay", NO),
    ("I'm not okay with that", NO), ("don't transfer me", NO), ("I can't wait", NO), ("not good", NO),
    ("sorry, what?", REPEAT), ("what?", REPEAT), ("pardon?", REPEAT), ("could you say that again", REPEAT),
    ("sorry I didn't catch that", REPEAT), ("come again?", REPEAT),
    ("I know it", UNSURE), ("I'm not sure", UNSURE), ("hello?", UNSURE), ("how long will it take?", UNSURE),
    ("no, that's fine", UNSURE), ("I want my balance", UNSURE), ("maybe", UNSURE), ("sorry", UNSURE),
]


@pytest.mark.parametrize("said, meaning", ZH_TABLE)
def test_mandarin_consent_answers(said, meaning):
    assert understand(said, ZH) == meaning


@pytest.mark.parametrize("said, meaning", EN_TABLE)
def test_english_consent_answers(said, meaning):
    assert understand(said, EN) == meaning


def test_the_tables_are_big_enough():
    assert len(ZH_TABLE) >= 30 and len(EN_TABLE) >= 30


# --- in a call ------------------------------------------------------------------------------

from test_shipped_flows import EN as EN_FLOW, Call, to_hold, to_transfer  # noqa: E402


def test_an_affirmative_idiom_agrees_to_the_hold():
    call = to_hold(Call())
    assert call.say("没关系").said == ["好的,请您稍等。"]
    assert call.facts("consent")[-1]["given"] is True


def test_asking_to_hear_it_again_repeats_the_question_and_books_nothing():
    call = to_hold(Call())
    question = list(call.state.last_said)
    call.say("不好意思您说什么")
    assert call.said[1:] == question and not call.facts("consent") and not call.facts("call_back_requested")


def test_an_unsure_answer_asks_again_with_the_keypad_hint_never_a_no():
    call = to_transfer(Call(EN_FLOW))
    assert call.say("hmm, how long will it take?").said == [
        "Sorry, I didn't quite understand.", "To agree, press 1 or say yes. If not, press 2."]
    assert not call.facts("consent")
    assert call.say("no problem").said == ["Connecting you now. Please stay on the line."]


def test_unsure_answers_follow_the_ladder_and_never_default_to_no():
    call = to_hold(Call())
    for _ in range(3):
        call.say("我不知道")
    assert not [f for f in call.facts("consent") if f["given"] is False]
    assert not call.facts("call_back_requested")


def test_keys_still_decide():
    call = to_hold(Call())
    assert call.send(ev.Digits("2")).facts("consent")[-1]["given"] is False
