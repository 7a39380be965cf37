"""`ivr` itself: every command is there (a module that fails to import fails loudly), --version,
help for every option, and --format json wherever there are results.

The commands run in this process (the `ivr` fixture, tests/conftest.py); each has its subprocess
smoke test beside its other tests (`ivr validate` in test_flow_errors.py, `ivr graph` in
test_graph.py, `ivr test` in test_calls.py, ...)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ivr import cli

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {"serve", "validate", "schema", "lint", "graph", "report", "simulate", "test", "replay", "publish", "reconcile", "line"}


def subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def test_every_command_is_there():
    assert {name for name, _ in subparsers(cli.build_parser())} == COMMANDS


def test_no_command_is_imported_by_name():
    text = (ROOT / "ivr" / "cli.py").read_text(encoding="utf-8")
    assert "import_module" not in text and "DELEGATED" not in text


def test_version(ivr):
    done = ivr("--version")
    assert done.returncode == 0 and done.stdout.startswith("ivr ") and done.stdout.strip() != "ivr"


def test_every_option_has_help():
    missing = []

    def walk(parser, where):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{where} {name}")
            elif action.help is None or not str(action.help).strip():
                missing.append(f"{where} {'/'.join(action.option_strings) or action.dest}")

    walk(cli.build_parser(), "ivr")
    assert missing == []


@pytest.mark.parametrize("command", ["validate", "lint", "graph", "report", "simulate", "test", "replay"])
def test_format_json_is_offered(command):
    sub = dict(subparsers(cli.build_parser()))[command]
    fmt = next(a for a in sub._actions if a.dest == "format")
    assert "json" in fmt.choices


def test_validate_json(ivr):
    done = ivr("validate", "--format", "json", "call_flows")
    data = json.loads(done.stdout)
    assert done.returncode == 0 and data["failed"] == 0 and {f["flow"] for f in data["flows"]} == {
        "bank_hotline", "bank_hotline_en"}
    bad = ivr("validate", "--format", "json", "call_flows/callers.yaml")
    data = json.loads(bad.stdout)
    assert bad.returncode == 1 and data["flows"][0]["problems"][0]["line"] >= 1


def test_graph_json(ivr):
    done = ivr("graph", "--format", "json", "call_flows/bank_hotline.yaml")
    data = json.loads(done.stdout)
    assert done.returncode == 0 and {n["name"] for n in data["nodes"]} >= {"greeting", "main_menu"}


def test_test_json(ivr):
    done = ivr("test", "--format", "json", "tests/calls/e2_silent_line_zh.yaml")
    assert json.loads(done.stdout)["passed"] == 1, done.stderr


def test_png_needs_a_file(ivr):
    done = ivr("graph", "--format", "png", "call_flows/bank_hotline.yaml")
    assert done.returncode == 1 and "--out" in done.stderr and done.stdout == ""


def test_a_setting_that_is_not_a_number_is_one_line_not_a_traceback(tmp_path):
    import os
    import subprocess
    import sys

    from harness import free_port

    env = {**os.environ, "IVR_WEBHOOK_BUDGET": "three seconds"}
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "serve", "--port", str(free_port()),
                           "--store", f"sqlite:///{tmp_path}/calls.db"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # were the setting taken, the server would run: the timeout fails it
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "IVR_WEBHOOK_BUDGET='three seconds' is not a number of seconds" in done.stderr
