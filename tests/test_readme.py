"""Every flow example in README.md loads (and lints without errors); every caller-script example
loads as a script. A flow example is a ```yaml block with `steps:`."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.etiquette.lint import lint_flow
from ivr.flow import load_flow_text

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"^```yaml\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), re.M | re.S)
FLOWS = [b for b in BLOCKS if re.search(r"^steps\s*:", b, re.M) and not re.search(r"^flow\s*:", b, re.M)]
SCRIPTS = [b for b in BLOCKS if re.search(r"^flow\s*:", b, re.M)]


def test_the_readme_has_examples():
    assert FLOWS and SCRIPTS


@pytest.mark.parametrize("text", FLOWS, ids=lambda t: t.split("\n", 1)[0])
def test_readme_flow_example_loads_and_lints(text):
    loaded = load_flow_text(text, "README.md")
    errors = [str(f) for f in lint_flow(loaded) if f.severity == "error"]
    assert errors == []


@pytest.mark.parametrize("text", SCRIPTS, ids=lambda t: t.split("\n", 1)[0])
def test_readme_caller_script_example_loads(text, tmp_path):
    from ivr.simulator.script import load_script

    calls = ROOT / "tests" / "calls"  # the script names its flow relative to tests/calls/
    flow = re.search(r"^flow\s*:\s*(\S+)", text, re.M).group(1)
    assert (calls / flow).resolve().is_file(), f"the example's flow {flow} is not there from tests/calls/"
    path = tmp_path / "example.yaml"
    path.write_text(text.replace(flow, str((calls / flow).resolve()), 1), encoding="utf-8")
    script = load_script(path)
    assert script.steps
