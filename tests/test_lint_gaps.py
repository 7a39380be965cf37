"""Issue 10's lint gaps: durations said in words (E9/E10), plain-text greetings (E1), prompt and
check-in timing, loader problems as findings, large outputs capped."""
from __future__ import annotations

from pathlib import Path

import pytest

from ivr.etiquette.lint import Finding, format_text, lint_flow, load_finding
from ivr.etiquette.lint.durations import agrees, said_durations
from ivr.flow import FlowError, load_flow_text

ROOT = Path(__file__).resolve().parent.parent
CLEAN_ZH = (ROOT / "tests" / "flows" / "lint" / "clean_zh.yaml").read_text(encoding="utf-8")
CLEAN_EN = (ROOT / "tests" / "flows" / "lint" / "clean_en.yaml").read_text(encoding="utf-8")


def lint_text(text: str) -> set[tuple[str, str]]:
    return {(f.rule, f.name) for f in lint_flow(load_flow_text(text, "inline.yaml"))}


@pytest.mark.parametrize("text, seconds", [
    ("大约需要一分钟", 60), ("两分钟", 120), ("30秒", 30), ("一分三十秒", 90), ("一分半", 90), ("半分钟", 30),
    ("二十五秒钟", 25), ("about one minute", 60), ("2 minutes", 120), ("30 seconds", 30),
    ("1 minute and 30 seconds", 90), ("half a minute", 30), ("one and a half minutes", 90),
    ("twenty-five seconds", 25), ("a couple of minutes", 120)])
def test_durations_said_in_words(text, seconds):
    assert said_durations(text) == [seconds]


@pytest.mark.parametrize("text", ["十分感谢您的耐心", "百分之百", "Press 1 for more", "I am here", "请按9重听"])
def test_words_that_are_not_durations(text):
    assert said_durations(text) == []


def test_about_one_minute_does_not_agree_with_ten():
    assert agrees(60, 60) and agrees(55, 60) and not agrees(60, 600) and not agrees(120, 30)


HOLD_ZH = CLEAN_ZH.replace('        - {keys: "1", go: farewell}\n', '        - {keys: "1", go: wait}\n') + """  wait:
    hold:
      reason: {reason}
      ask: {ask}
      limit: {limit}
    next: farewell
"""


def hold_flow(reason: str, ask: str, limit: str) -> str:
    return HOLD_ZH.replace("{reason}", reason).replace("{ask}", ask).replace("{limit}", limit)


@pytest.mark.parametrize("reason, ask, limit, found", [
    ("我需要为您查询一下账户信息,大约需要一分钟,", "麻烦您稍等一下好吗?", "1m", set()),
    ("我需要为您查询一下账户信息,大约需要一分钟,", "麻烦您稍等一下好吗?", "10m",
     {("E9", "hold-duration-mismatch"), ("E9", "hold-long-limit")}),
    ("我需要为您查询一下账户信息,大约需要30秒,", "麻烦您稍等一下好吗?", "30s", set()),
    ("我需要为您查询一下账户信息,", "麻烦您稍等一下好吗?", "1m", {("E9", "hold-no-duration")}),
    ("我需要为您查询一下账户信息,大约需要两分钟,", "请您稍等。", "2m", {("E9", "hold-not-asked")}),
])
def test_hold_words_must_ask_and_agree_with_the_limit(reason, ask, limit, found):
    assert lint_text(hold_flow(reason, ask, limit)) == found


def test_a_greeting_in_plain_text_is_fine():
    plain_zh = CLEAN_ZH.replace("{org}", "华夏示范银行").replace("{agent}", "客服专员小王")
    assert lint_text(plain_zh) == set()
    no_variables = plain_zh.replace("variables: {org: 华夏示范银行, agent: 客服专员小王}\n", "")
    assert lint_text(no_variables) == set()
    plain_en = CLEAN_EN.replace("{org}", "Example Bank").replace("{agent}", "Anna")
    assert lint_text(plain_en) == set()
    # ...but a greeting that names nobody is still a finding
    nobody = no_variables.replace("欢迎致电华夏示范银行客户服务热线,客服专员小王很高兴为您服务,", "")
    assert {("E1", "greeting-no-org"), ("E1", "greeting-no-agent")} <= lint_text(nobody)


def test_a_prompt_longer_than_its_listening_window_allows():
    long_menu = CLEAN_ZH.replace("查询余额请按1,结束通话请按2。", "查询余额请按1,结束通话请按2。" * 8)
    findings = [f for f in lint_flow(load_flow_text(long_menu, "inline.yaml")) if f.name == "prompt-too-long"]
    assert len(findings) == 1 and "5 s listening window" in findings[0].message
    longer_window = long_menu.replace("offers:", "etiquette: {silence: {listen: 15s}}\noffers:", 1)
    assert "prompt-too-long" not in {n for _, n in lint_text(longer_window)}


def test_a_check_in_too_long_for_its_interval():
    text = hold_flow("我需要为您查询一下账户信息,大约需要一分钟,", "麻烦您稍等一下好吗?", "1m")
    text = text.replace("      limit: 1m\n", "      limit: 1m\n      check_in_every: 10s\n"
                        "      check_in: 感谢您的耐心等待,我们正在为您处理您的业务,请您不要挂机,我们会尽快为您服务。\n")
    assert ("E9", "check-in-too-long") in lint_text(text)


@pytest.mark.parametrize("kind, field, name", [
    ("hold", "reason", "hold-no-reason"), ("hold", "ask", "hold-no-consent"), ("hold", "limit", "hold-no-limit"),
    ("transfer", "reason", "transfer-no-reason"), ("transfer", "ask", "transfer-no-consent")])
def test_missing_fields_come_from_the_loaders_own_problems(kind, field, name):
    """One source of truth: the loader refuses the flow; lint names the loader's problem."""
    spec = {"hold": "      reason: 我需要为您查询一下,大约需要一分钟,\n      ask: 好吗?\n      limit: 1m\n",
            "transfer": "      to: \"+861095500001\"\n      reason: 我需要为您转接,\n      ask: 可以吗?\n"
                        "      ring_limit: 30s\n"}[kind]
    spec = "".join(line + "\n" for line in spec.splitlines() if not line.strip().startswith(field + ":"))
    text = CLEAN_ZH.replace('        - {keys: "1", go: farewell}\n', '        - {keys: "1", go: x}\n') + \
        f"  x:\n    {kind}:\n{spec}    next: farewell\n"
    with pytest.raises(FlowError) as exc:
        load_flow_text(text, "inline.yaml")
    names = {(f.rule, f.name) for f in map(load_finding, exc.value.problems)}
    assert names == {("E9" if kind == "hold" else "E10", name)}


def test_large_text_output_is_capped_with_a_count():
    findings = [Finding("E13", "jargon", "error", "f.yaml", i, 1, "m", "fix") for i in range(5000)]
    text = format_text(findings, limit=200).splitlines()
    assert len(text) == 202 and text[-2].startswith("… and 4,800 more") and text[-1] == "5,000 errors, 0 warnings"
    assert len(format_text(findings, limit=None).splitlines()) == 5001
