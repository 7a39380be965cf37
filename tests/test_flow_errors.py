"""Every mistake a flow file can have is reported as file:line:col with what is wrong
and what would be right; `ivr validate` prints it without a traceback and exits 1."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ivr.flow import FlowError, load_flow

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
name: tiny
language: cmn-CN
start: hello
offers: {call_back: bye, leave_message: bye}
steps:
  hello:
    say: 您好,欢迎致电示范银行客户服务热线,请问有什么可以帮助您?
    next: menu
  menu:
    menu:
      prompt: 查询请按1。
      options:
        - {keys: "1", words: [查询], go: bye}
  bye:
    goodbye: 感谢您的来电,再见!
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path, text):
    with pytest.raises(FlowError) as err:
        load_flow(write(tmp_path, text))
    return err.value.problems


def line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


def test_the_minimal_flow_loads(tmp_path):
    assert load_flow(write(tmp_path, GOOD)).flow.name == "tiny"


@pytest.mark.parametrize("old, new, marker, expected", [
    ("        - {keys: \"1\", words: [查询], go: bye}", "        - {keys: \"1\", words: [查询], go: byebye}",
     "byebye", "there is no step named 'byebye'"),
    ("    next: menu", "    next: 5s", "next: 5s", "there is no step named '5s'"),
    ("start: hello", "start: hello\nstart: menu", "start: menu", "'start' is defined twice (first at line 3)"),
    ("  bye:\n", "  hello:  # again\n    say: again\n    next: menu\n  bye:\n", "# again", "defined twice"),
    ("    goodbye: 感谢您的来电,再见!", "    goodbye: 感谢您的来电,再见!\n    on: menu", "on: menu",
     "read by YAML as the boolean True"),
    ("        - {keys: \"1\", words: [查询], go: bye}", "        - {keys: \"1\", words: [yes], go: bye}",
     "[yes]", "must be in quotes"),
    ("      prompt: 查询请按1。", "      promt: 查询请按1。", "promt", "'promt' is not a known setting here"),
    ("        - {keys: \"1\"", "        - {keys: \"1a\"", "1a", "phone keys: digits 0-9, * or #"),
    ("language: cmn-CN", "language: klingon", "klingon", "'klingon' is not allowed for 'language'"),
    ("    say: 您好", "    goodbye: oops\n    say: 您好", "  hello:", "a step does exactly one thing"),
    ("    next: menu", "", "  hello:", "needs 'next:'"),
])
def test_mistakes_are_reported_at_their_line(tmp_path, old, new, marker, expected):
    text = GOOD.replace(old, new)
    assert text != GOOD
    found = problems(tmp_path, text)
    assert any(expected in p.message for p in found), [str(p) for p in found]
    hit = next(p for p in found if expected in p.message)
    assert hit.line == line_of(text, marker), str(hit)
    assert hit.file.endswith("flow.yaml")


def test_unreachable_step(tmp_path):
    text = GOOD + "  orphan:\n    goodbye: 再见\n"
    (p,) = problems(tmp_path, text)
    assert "can never be reached" in p.message and p.line == line_of(text, "orphan:")


@pytest.mark.parametrize("value, hint", [("5 sekunden", "write it like 5s"), ("-3", "out of range"), ("true", "read by YAML as true")])
def test_bad_durations(tmp_path, value, hint):
    text = GOOD.replace("steps:\n", f"etiquette:\n  silence:\n    listen: {value}\nsteps:\n")
    (p,) = problems(tmp_path, text)
    assert hint in p.message and p.line == line_of(text, "listen:")


HOLD = """\
  wait:
    hold:
      queue: accounts
{fields}    next: bye
"""


@pytest.mark.parametrize("missing", ["reason", "ask", "limit"])
def test_a_hold_needs_reason_consent_and_limit(tmp_path, missing):
    fields = {"reason": "我需要为您查询一下账户信息,大约需要一分钟,", "ask": "麻烦您稍等一下好吗?", "limit": "1m"}
    del fields[missing]
    body = "".join(f"      {k}: {v}\n" for k, v in fields.items())
    text = GOOD.replace("go: bye}", "go: wait}") + HOLD.format(fields=body)
    found = problems(tmp_path, text)
    assert [p.message.split(":")[0] for p in found] == ["E9 hold"]
    assert f"'{missing}' is missing" in found[0].message and found[0].line == line_of(text, "    hold:")


@pytest.mark.parametrize("missing", ["reason", "ask"])
def test_a_transfer_needs_reason_and_consent(tmp_path, missing):
    fields = {"to": '"+861095500001"', "reason": "需要为您转接人工客服,", "ask": "请问可以吗?"}
    del fields[missing]
    body = "".join(f"      {k}: {v}\n" for k, v in fields.items())
    text = GOOD.replace("go: bye}", "go: agent}") + f"  agent:\n    transfer:\n{body}    next: bye\n"
    (p,) = problems(tmp_path, text)
    assert p.message.startswith("E10 transfer") and f"'{missing}'" in p.message


def test_a_transfer_number_must_be_a_phone_number(tmp_path):
    text = GOOD.replace("go: bye}", "go: agent}") + (
        "  agent:\n    transfer:\n      to: call-centre\n      reason: r\n      ask: a\n    next: bye\n")
    (p,) = problems(tmp_path, text)
    assert "E.164" in p.message and p.line == line_of(text, "to: call-centre")


def test_yaml_syntax_error_has_position_and_hint(tmp_path):
    text = GOOD.replace("    next: menu", "   next: menu")
    (p,) = problems(tmp_path, text)
    assert p.line == line_of(text, "   next: menu") and "indentation" in p.message


def test_missing_required_fields_and_empty_file(tmp_path):
    found = problems(tmp_path, GOOD.replace("start: hello\n", ""))
    assert any("'start' is missing" in p.message for p in found)
    (p,) = problems(tmp_path, "")
    assert "empty" in p.message


def test_missing_caller_directory(tmp_path):
    text = GOOD.replace("start: hello", "start: who") + (
        "  who:\n    lookup:\n      directory: nobody.yaml\n      set: {surname: surname}\n    next: hello\n")
    (p,) = problems(tmp_path, text)
    assert "nobody.yaml" in p.message and p.line == line_of(text, "directory: nobody.yaml")


def test_several_problems_are_all_reported_in_line_order(tmp_path):
    text = GOOD.replace("next: menu", "next: nowhere").replace("go: bye}", "go: gone}")
    found = problems(tmp_path, text)
    assert [p.line for p in found] == sorted(p.line for p in found)
    assert {"nowhere", "gone"} <= {w for p in found for w in ("nowhere", "gone") if w in p.message}


def run_ivr(*args):
    return subprocess.run([sys.executable, "-m", "ivr.cli", *args], capture_output=True, text=True, cwd=REPO)


def test_validate_passes_the_shipped_flows(ivr):
    result = ivr("validate", "call_flows/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok  ") == 2


def test_validate_reports_a_broken_flow_without_traceback(tmp_path):  # `ivr validate` in its own process
    path = write(tmp_path, GOOD.replace("next: menu", "next: nowhere"))
    result = run_ivr("validate", str(path))
    assert result.returncode == 1
    assert f"{path}:8:11: there is no step named 'nowhere'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_schema_describes_the_language():  # `ivr schema` in its own process
    import json

    result = run_ivr("schema")
    schema = json.loads(result.stdout)
    assert "steps" in schema["properties"] and "Hold" in schema["$defs"]
    limit = schema["$defs"]["Hold"]["properties"]["limit"]["anyOf"][0]
    assert limit["examples"] == ["5s", "30s", "1m"]


@pytest.mark.parametrize("flow", ["bank_hotline.yaml", "bank_hotline_en.yaml"])
def test_shipped_flows_pass_the_published_schema(flow, ivr):
    """What an editor checks with the schema agrees with what the loader accepts."""
    import json

    import jsonschema
    import yaml

    schema = json.loads(ivr("schema").stdout)
    data = yaml.safe_load((REPO / "call_flows" / flow).read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "steps": {"x": {"say": "hi", "nxt": "y"}}}, schema)


@pytest.mark.parametrize("store", ["foo://x", "redis://127.0.0.1:1/0"])
def test_serve_with_a_bad_store_says_so_without_traceback(store, ivr, monkeypatch):
    # in this process: if serve got as far as starting gunicorn, fail instead of serving forever
    # (`ivr serve` runs in a process of its own in tests/test_calls.py)
    from gunicorn.app.base import BaseApplication

    def started(self):
        raise AssertionError("ivr serve started serving despite the bad store")

    monkeypatch.setattr(BaseApplication, "run", started)
    result = ivr("serve", "--store", store, "--port", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("ivr serve: ") and "sqlite:///calls.db" in result.stderr


# --- issue 9.8: Twilio's limits refused at load, with file:line ------------------------------------

from ivr.flow.source import FlowError as _FlowError  # noqa: E402

_REPO_FLOWS = Path(__file__).resolve().parent.parent / "call_flows"


def _load_edited(tmp_path, old, new, flow="bank_hotline.yaml"):
    from ivr.flow import load_flow

    text = (_REPO_FLOWS / flow).read_text(encoding="utf-8")
    assert old in text, old
    (tmp_path / "callers.yaml").write_text((_REPO_FLOWS / "callers.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "f.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(_FlowError) as err:
        load_flow(tmp_path / "f.yaml")
    return str(err.value)


@pytest.mark.parametrize("old, new, expect", [
    ("ring_limit: 30s", "ring_limit: 5s", "Twilio rings 5-600 s"),
    ("ring_limit: 30s", "ring_limit: 20m", "Twilio rings 5-600 s"),
    ("max_length: 2m", "max_length: 1s", "more than 1 s"),
    ("queue: accounts", "queue: " + "q" * 65, "64 at most"),
    ("voice: Polly.Zhiyu-Neural", "voice: Polly.Joanna-Neural", "does not speak cmn-CN"),
    ("    say: 您好,欢迎致电{org}", "    say: " + "长" * 3001 + "您好,欢迎致电{org}", "at most 3000"),
    ("words: [余额, 账户, 查询]", "words: [" + ", ".join(f"w{i}" for i in range(501)) + "]", "at most 500"),
    ("words: [余额, 账户, 查询]", "words: [" + "字" * 101 + "]", "100 at most"),
])
def test_issue9_twilio_limits_are_refused_at_load_with_the_line(tmp_path, old, new, expect):
    message = _load_edited(tmp_path, old, new)
    assert expect in message and "f.yaml:" in message
