"""Replay: calls recorded through the simulator into SQLite, re-driven against the same or an edited flow."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.simulator.replay import heard_in_log, rebuild_script, replay_call
from ivr.simulator.runner import InProcessRun, run_script
from ivr.simulator.script import load_script
from ivr.store import open_store

REPO = Path(__file__).resolve().parent.parent
CALLS = REPO / "tests" / "calls"
RECORDED = ["e2_silent_line_zh", "e7_cannot_hear_zh", "e9_hold_agent_takes_zh", "e9_hold_limit_zh",
            "e10_transfer_accepted_zh", "e10_agent_declines_zh", "e15_complaint_zh", "e11_caller_hangs_up_first_zh",
            "e10_transfer_no_answer_en", "e3_quiet_en"]
OLD = "谢谢您的宝贵意见,我们会在两个工作日内给您回复。"
NEW = "谢谢您的宝贵意见,我们会在三个工作日内给您答复。"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Flows copied to tmp (so they can be edited), and calls made through the simulator into SQLite.
    Recorded once for the module: a test that edits these flow files puts them back."""
    tmp_path = tmp_path_factory.mktemp("recorded")
    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("bank_hotline.yaml", "bank_hotline_en.yaml", "callers.yaml"):
        shutil.copy(REPO / "call_flows" / name, flows / name)
    url = f"sqlite:///{tmp_path}/calls.db"
    store = open_store(url)
    run = InProcessRun(store)
    sids = {}
    for name in RECORDED:
        script = load_script(CALLS / f"{name}.yaml")
        script.flow = flows / script.flow.name
        outcome = run_script(script, run=run)
        assert outcome.passed, outcome.failure
        sids[name] = outcome.result.call_sid
    return url, flows, sids


def test_replay_against_the_unchanged_flow_shows_no_differences(recorded, capsys):
    url, _, sids = recorded
    assert main(["replay", *sids.values(), "--store", url]) == 0
    out = capsys.readouterr().out
    assert out.count("no differences") == len(sids)
    assert f"{len(sids)} call(s) replayed, 0 would sound different" in out


def test_replay_against_a_reworded_prompt_shows_exactly_that_change(recorded, tmp_path, capsys):
    url, flows, sids = recorded
    edited = tmp_path / "edited.yaml"
    edited.write_text((flows / "bank_hotline.yaml").read_text(encoding="utf-8").replace(OLD, NEW), "utf-8")
    shutil.copy(flows / "callers.yaml", tmp_path / "callers.yaml")
    assert main(["replay", sids["e15_complaint_zh"], "--store", url, "--flow", str(edited)]) == 1
    out = capsys.readouterr().out
    changes = [line for line in out.splitlines() if line[:1] in "+-" and not line.startswith(("---", "+++"))]
    assert changes == [f"-{OLD}", f"+{NEW}"]
    assert main(["replay", sids["e9_hold_agent_takes_zh"], "--store", url, "--flow", str(edited)]) == 0


def test_replay_defaults_to_the_file_of_the_pinned_flow_version(recorded, capsys):
    url, flows, sids = recorded
    path = flows / "bank_hotline.yaml"
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace(OLD, NEW), encoding="utf-8")
    try:
        assert main(["replay", "--all", "--store", url, "--json"]) == 1
    finally:
        path.write_text(original, encoding="utf-8")  # the recorded flows are shared by the module's tests
    report = json.loads(capsys.readouterr().out)
    differing = {c["call_sid"] for c in report["calls"] if c["differs"]}
    assert differing == {sids["e15_complaint_zh"]}
    diff = next(c["diff"] for c in report["calls"] if c["differs"])
    assert [d for d in diff if d[:1] in "+-" and not d.startswith(("---", "+++"))] == [f"-{OLD}", f"+{NEW}"]
    assert report["replayed"] == len(sids) and report["errors"] == 0


def test_the_rebuilt_caller_side_has_what_twilio_sent(recorded):
    url, flows, sids = recorded
    store = open_store(url)
    hold = rebuild_script(store.call_log(sids["e9_hold_agent_takes_zh"]), flows / "bank_hotline.yaml")
    kinds = [type(step.action).__name__ for step in hold.steps]
    assert kinds == ["Press", "Speak", "AgentTakes", "Press"]
    assert hold.steps[2].action.after == 45
    transfer = rebuild_script(store.call_log(sids["e10_transfer_accepted_zh"]), flows / "bank_hotline.yaml")
    assert [type(s.action).__name__ for s in transfer.steps] == ["Press", "Press", "AgentAnswers", "Press", "HangUp"]
    declined = rebuild_script(store.call_log(sids["e10_agent_declines_zh"]), flows / "bank_hotline.yaml")
    assert "AgentDeclines" in [type(s.action).__name__ for s in declined.steps]
    complaint = rebuild_script(store.call_log(sids["e15_complaint_zh"]), flows / "bank_hotline.yaml")
    record = next(s.action for s in complaint.steps if type(s.action).__name__ == "RecordSpeech")
    assert (record.seconds, record.then) == (25, "#")


def test_what_was_heard_comes_from_the_logged_twiml(recorded):
    url, flows, sids = recorded
    store = open_store(url)
    heard = heard_in_log(store.call_log(sids["e2_silent_line_zh"]))
    assert heard[2:] == ["您好,请问有什么可以帮助您?", "对不起,您的电话没有声音,请您换一部电话再次打来,好吗?再见!"]
    replay = replay_call(store, sids["e2_silent_line_zh"])
    assert replay.would_hear == heard and not replay.differs and replay.error is None


def test_replay_explains_what_it_cannot_do(recorded, capsys):
    url, _, _ = recorded
    assert main(["replay", "CA" + "0" * 32, "--store", url]) == 2
    assert "no such call in the store" in capsys.readouterr().out
    assert main(["replay", "--store", url]) == 2
    assert "--since" in capsys.readouterr().err
    assert main(["replay", "--since", "2000-01-01T00:00", "--store", url]) == 0


def test_a_changed_menu_shows_where_the_logged_caller_could_no_longer_follow(recorded, tmp_path, capsys):
    url, flows, sids = recorded
    edited = tmp_path / "moved.yaml"
    text = (flows / "bank_hotline.yaml").read_text(encoding="utf-8")
    edited.write_text(text.replace("words: [投诉, 建议, 意见]", "words: [建议, 意见]"), encoding="utf-8")
    shutil.copy(flows / "callers.yaml", tmp_path / "callers.yaml")
    replay = replay_call(open_store(url), sids["e15_complaint_zh"], edited)
    assert replay.differs and replay.note and "recording" in replay.note
    assert "-我非常理解您现在的心情," in replay.diff


def test_replay_of_an_empty_store_or_no_calls_since_says_so(recorded, tmp_path, ivr):
    url, _, _ = recorded
    empty = f"sqlite:///{tmp_path}/empty.db"
    open_store(empty).close()
    done = ivr("replay", "--all", "--store", empty)
    assert done.returncode == 0 and done.stdout.startswith("the store is empty") and done.stderr == ""
    later = ivr("replay", "--since", "2999-01-01T00:00", "--store", url)
    assert later.returncode == 0 and later.stdout.startswith("no calls since 2999-01-01T00:00")


def test_replay_shows_progress_only_when_asked_or_on_a_terminal(recorded, ivr):
    url, _, sids = recorded
    quiet = ivr("replay", "--all", "--store", url)  # stderr is not a terminal here: no bar
    assert quiet.returncode == 0 and "replaying" not in quiet.stderr and "━" not in quiet.stderr
    shown = ivr("replay", "--all", "--store", url, "--progress")
    assert shown.returncode == 0 and "replaying" in shown.stderr and f"{len(sids)}/{len(sids)}" in shown.stderr
    assert shown.stdout == quiet.stdout


def test_ivr_replay_never_creates_a_store(tmp_path):  # the one `ivr replay` run in a process of its own
    import subprocess
    import sys

    missing = tmp_path / "missing.db"
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "replay", "--all", "--store", f"sqlite:///{missing}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.startswith("ivr replay: no SQLite store at") and len(done.stderr.strip().splitlines()) == 1
    assert not missing.exists(), "replay only reads: it never creates a store"


def test_replay_on_several_workers_says_exactly_what_one_says(recorded, ivr):
    url, _, sids = recorded
    alone = ivr("replay", "--all", "--store", url, "--json", "--jobs", "1")
    shared = ivr("replay", "--all", "--store", url, "--json", "--jobs", "2")
    assert alone.returncode == shared.returncode == 0
    assert json.loads(shared.stdout) == json.loads(alone.stdout)
    assert [c["call_sid"] for c in json.loads(shared.stdout)["calls"]] == list(sids.values())
