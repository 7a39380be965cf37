"""Every caller script under tests/calls, in-process; and the same scripts against `ivr serve` over HTTP,
which must give identical transcripts (the simulator and the served app agree)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import Served, close_sessions
from ivr.simulator.runner import InProcessRun, find_scripts, over_http, run_script
from ivr.simulator.transcript import describe

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = find_scripts([REPO / "tests" / "calls"])
FLOWS = [REPO / "call_flows" / "bank_hotline.yaml", REPO / "call_flows" / "bank_hotline_en.yaml"]
TOKEN = "served-test-token-0123456789abcdef"


def explain(outcome) -> str:
    transcript = "\n".join(describe(line) for line in outcome.result.transcript.lines) if outcome.result else ""
    return f"{outcome.failure}\n{transcript}"


@pytest.fixture(scope="module")
def in_process_run():
    """One in-process run for the module, as `ivr test` does: each flow loaded once, one app per flow."""
    return InProcessRun()


@pytest.fixture(scope="module")
def local_outcomes():
    """Each script's in-process outcome, kept by test_caller_script for the comparison over HTTP."""
    return {}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_caller_script(script, in_process_run, local_outcomes):
    outcome = run_script(script, run=in_process_run)
    local_outcomes[script] = outcome
    assert outcome.passed, explain(outcome)


def test_every_rule_is_scripted_on_both_flows():
    import yaml

    covered = set()
    for path in SCRIPTS:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        covered.add((data.get("rule"), Path(data["flow"]).name))
    for rule in [f"E{n}" for n in range(1, 12)] + ["E15"]:
        for flow in FLOWS:
            assert (rule, flow.name) in covered, f"no caller script for {rule} on {flow.name}"


# --- the same scripts through a served app --------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`ivr serve` with both shipped flows, one worker (its default threads), a SQLite store and a known token."""
    tmp = tmp_path_factory.mktemp("served")
    server = Served(f"sqlite:///{tmp}/calls.db", workers=1, threads=32, flows=FLOWS,
                    env={"TWILIO_AUTH_TOKEN": TOKEN}, log=tmp / "server.log").start()
    try:
        yield server.url
    finally:
        server.stop()


def test_in_process_and_served_calls_hear_the_same(served, in_process_run, local_outcomes):
    transport = over_http(served, TOKEN)
    try:
        for script in SCRIPTS:
            local = local_outcomes.get(script) or run_script(script, run=in_process_run)  # when run on its own
            remote = run_script(script, transport, run=in_process_run)  # flows loaded once, here too
            assert remote.passed, f"{script.name} over HTTP: {explain(remote)}"
            assert remote.result.transcript.caller_side() == local.result.transcript.caller_side(), script.name
            assert (remote.result.ended_by, remote.result.duration) == (local.result.ended_by, local.result.duration)
    finally:  # no kept-alive connection left: the server's graceful stop would wait 2 s for it
        close_sessions(transport.session)


def test_ivr_test_against_the_server_with_the_wrong_token_reports_the_signature(served):  # `ivr test`'s own process
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "test", str(SCRIPTS[0]), "--url", served,
                           "--token", "wrong-token"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "FAILED" in done.stdout and "403" in done.stdout and "X-Twilio-Signature" in done.stdout
    assert "0 passed, 1 failed" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_ivr_test_on_two_workers_says_exactly_what_one_says(ivr, tmp_path):
    """`ivr test --jobs 2` spreads the scripts over two processes: the same outcomes, in the scripts' order,
    a failing script included."""
    calls = REPO / "tests" / "calls"
    failing = tmp_path / "expects_words_never_said.yaml"
    failing.write_text(f"flow: {REPO / 'call_flows' / 'bank_hotline.yaml'}\nsteps:\n  - hear: 这句话从来没人说过\n",
                       encoding="utf-8")
    scripts = sorted(calls.glob("e2_*.yaml"))[:3] + [failing] + sorted(calls.glob("e9_*.yaml"))[:3]
    alone = ivr("test", "--json", *scripts)
    shared = ivr("test", "--json", "--jobs", "2", *scripts)
    assert alone.returncode == shared.returncode == 1

    def results(ran):
        return [{k: v for k, v in r.items() if k not in ("seconds", "call_sid")} for r in json.loads(ran.stdout)["results"]]

    assert results(shared) == results(alone)
    assert [r["script"] for r in results(shared)] == [str(s) for s in scripts]
    assert [r["passed"] for r in results(shared)] == [True] * 3 + [False] + [True] * 3
