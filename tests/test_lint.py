"""`ivr lint`: each bad flow under tests/flows/lint/ marks its offending lines with
`# <- E13 negative-refusal` comments; the findings must be exactly those (rule, name, line)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ivr.etiquette.lint import (Finding, format_json, format_text, lint_file, lint_flow, lint_paths,
                                load_rules, main_lint)
from ivr.flow import load_flow, load_flow_text

ROOT = Path(__file__).resolve().parent.parent
LINT_FLOWS = ROOT / "tests" / "flows" / "lint"
SHIPPED = [ROOT / "call_flows" / "bank_hotline.yaml", ROOT / "call_flows" / "bank_hotline_en.yaml"]
MARKER = re.compile(r"\b(E\d+|load) ([a-z][a-z0-9-]*)")


def expected(path: Path) -> set[tuple[str, str, int]]:
    """(rule, name, line) of every `# <- RULE name` marker in the file."""
    out = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if "# <-" in line:
            out |= {(rule, name, number) for rule, name in MARKER.findall(line.split("# <-", 1)[1])}
    return out


def found(findings: list[Finding]) -> set[tuple[str, str, int]]:
    return {(f.rule, f.name, f.line) for f in findings}


def marker_line(path: Path, marker: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if marker in line)


BAD_FLOWS = sorted(p.name for p in LINT_FLOWS.glob("*.yaml") if not p.name.startswith("clean_"))


@pytest.mark.parametrize("name", BAD_FLOWS)
def test_each_bad_flow_has_exactly_its_marked_findings(name):
    path = LINT_FLOWS / name
    want = expected(path)
    assert want, f"{name} has no `# <- RULE name` markers"
    assert found(lint_file(path)) == want


@pytest.mark.parametrize("rule", ["E1", "E2", "E3", "E4", "E5", "E6", "E8", "E9", "E10", "E11", "E13", "E15", "load"])
def test_every_rule_has_a_bad_flow(rule):
    assert any(r == rule for name in BAD_FLOWS for r, _, _ in expected(LINT_FLOWS / name))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_flows_lint_clean(path):
    assert lint_file(path) == []


@pytest.mark.parametrize("name", ["clean_zh.yaml", "clean_en.yaml"])
def test_clean_minimal_flows(name):
    assert lint_file(LINT_FLOWS / name) == []


def test_a_folder_skips_yaml_that_is_not_a_flow():
    assert lint_paths([ROOT / "call_flows"]) == []  # callers.yaml is skipped, not an error


def validate_problems(path) -> set[tuple[int, int]]:
    from ivr.flow import FlowError

    with pytest.raises(FlowError) as exc:
        load_flow(path)
    return {(p.line, p.col) for p in exc.value.problems}


def test_naming_a_non_flow_file_fails_like_validate():
    path = ROOT / "call_flows" / "callers.yaml"
    findings = lint_paths([path])
    assert findings and all((f.rule, f.severity) == ("load", "error") for f in findings)
    assert {(f.line, f.col) for f in findings} == validate_problems(path)
    assert main_lint([str(path)]) == 1


@pytest.mark.parametrize("text", ["", "\n# nothing but a comment\n", "- a\n- list\n"])
def test_an_empty_or_non_flow_file_fails(tmp_path, text, capsys):
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    findings = lint_paths([path])
    assert findings and all((f.rule, f.severity) == ("load", "error") for f in findings)
    assert main_lint([str(path)]) == 1
    assert "skipped" not in capsys.readouterr().out


def test_missing_path_is_a_finding():
    findings = lint_paths(["no/such/flow.yaml"])
    assert [(f.rule, f.name, f.severity) for f in findings] == [("load", "no-such-file", "error")]


def test_lint_flow_on_a_loaded_flow():
    loaded = load_flow(LINT_FLOWS / "e5_noisy.yaml")
    [finding] = lint_flow(loaded)
    assert (finding.rule, finding.name, finding.severity) == ("E5", "noisy-no-keypad", "warning")
    assert finding.line == marker_line(LINT_FLOWS / "e5_noisy.yaml", "# <- E5")
    assert finding.file == str(LINT_FLOWS / "e5_noisy.yaml")
    assert finding.message and finding.fix


def test_yaml_syntax_error_is_a_load_finding(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\nsteps:\n  a: [unclosed\n", encoding="utf-8")
    findings = lint_paths([tmp_path])
    assert findings and all(f.rule == "load" and f.severity == "error" for f in findings)


def test_e9_missing_limit_keeps_its_rule_id():
    path = LINT_FLOWS / "e9_hold_no_limit.yaml"
    [finding] = lint_file(path)
    assert (finding.rule, finding.name, finding.line) == ("E9", "hold-no-limit", marker_line(path, "# <- E9"))
    assert finding.fix.startswith("add ")


# --- language specifics --------------------------------------------------------------

def test_english_matches_whole_words_in_any_case():
    path = LINT_FLOWS / "e13_wording_en.yaml"
    findings = lint_file(path)
    phrases = {f.message.split('"')[1] for f in findings if f.rule in ("E13", "E2")}
    assert {"I won't", "I can't", "but", "guarantee", "escalation queue", "say something"} <= phrases
    button_line = marker_line(path, "pound button")
    assert not [f for f in findings if f.line == button_line]  # "button" is not "but"


def test_mandarin_you_is_found_but_polite_you_is_not():
    findings = lint_file(LINT_FLOWS / "e8_address.yaml")
    informal = [f for f in findings if f.name == "informal-you"]
    assert len(informal) == 1  # 您 elsewhere in the flow is never taken for 你


def test_overlapping_forbidden_phrases_give_one_finding():
    [finding] = lint_file(LINT_FLOWS / "e4_speakerphone.yaml")
    assert finding.rule == "E4" and '"喂,大声一点儿"' in finding.message


def test_pack_values_are_not_linted_but_step_overrides_are():
    text = (LINT_FLOWS / "clean_zh.yaml").read_text(encoding="utf-8").replace(
        "        - {keys: \"2\", go: farewell}\n",
        "        - {keys: \"2\", go: farewell}\n    etiquette:\n      noisy: {retries: [我没听清。]}\n")
    findings = lint_flow(load_flow_text(text, "inline.yaml"))
    assert found(findings) == {("E5", "noisy-no-keypad", text.splitlines().index("      noisy: {retries: [我没听清。]}") + 1)}


# --- rules data ----------------------------------------------------------------------

def test_rules_load_by_language():
    assert "你" in load_rules("cmn-CN").words("wording", "informal_you", "phrases")
    assert load_rules("en-US").whole_words and not load_rules("cmn-CN").whole_words


def test_an_extra_rules_file_adds_a_forbidden_word(tmp_path):
    extra = tmp_path / "more_rules.yaml"
    extra.write_text("wording:\n  forbidden:\n    phrases: [余额, {phrase: balance, rule: E14, fix: say account}]\n",
                     encoding="utf-8")
    zh, en = LINT_FLOWS / "clean_zh.yaml", LINT_FLOWS / "clean_en.yaml"
    assert lint_paths([zh, en]) == []
    findings = lint_paths([zh, en], extra_rules=extra)
    assert {(Path(f.file).name, f.rule, f.name, f.line) for f in findings} == {
        ("clean_zh.yaml", "E13", "forbidden-wording", marker_line(zh, "查询余额")),
        ("clean_en.yaml", "E14", "forbidden-wording", marker_line(en, "your balance")),
    }


def test_an_extra_rules_file_for_one_language_only(tmp_path):
    extra = tmp_path / "zh_only.yaml"
    extra.write_text("language: cmn-CN\nwording:\n  forbidden:\n    phrases: [balance]\n", encoding="utf-8")
    assert lint_paths([LINT_FLOWS / "clean_en.yaml"], extra_rules=extra) == []


def test_an_unreadable_extra_rules_file_is_a_finding(tmp_path):
    findings = lint_paths([LINT_FLOWS / "clean_zh.yaml"], extra_rules=tmp_path / "missing.yaml")
    assert [(f.rule, f.name) for f in findings] == [("load", "rules-file-unusable")]


# --- output --------------------------------------------------------------------------

def test_text_format_one_line_each_and_a_summary():
    path = LINT_FLOWS / "e9_hold.yaml"
    findings = lint_file(path)
    lines = format_text(findings).splitlines()
    assert len(lines) == len(findings) + 1
    line = marker_line(path, "limit: 10m")
    assert any(re.match(rf"^{re.escape(str(path))}:{line}:\d+: warning E9 hold-long-limit: .+ — .+$", l) for l in lines)
    assert lines[-1] == "2 errors, 1 warning"
    assert format_text([]) == "no etiquette problems found"


def test_json_format_parses_and_has_the_fields():
    data = json.loads(format_json(lint_file(LINT_FLOWS / "e10_transfer.yaml")))
    assert data["errors"] == 0 and data["warnings"] == 3
    for item in data["findings"]:
        assert set(item) == {"rule", "name", "severity", "file", "line", "col", "message", "fix"}
        assert item["rule"] == "E10" and isinstance(item["line"], int)


def test_main_lint_exit_codes(capsys):
    assert main_lint([str(p) for p in SHIPPED]) == 0
    assert "no etiquette problems found" in capsys.readouterr().out
    assert main_lint([str(LINT_FLOWS / "e5_noisy.yaml")]) == 0  # warnings only
    capsys.readouterr()
    assert main_lint([str(LINT_FLOWS / "e15_complaint.yaml")], fmt="json") == 1
    assert json.loads(capsys.readouterr().out)["errors"] == 2
    assert main_lint([str(LINT_FLOWS)], fmt="xml") == 2


def test_ivr_lint_command_exit_codes(ivr):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    ok = ivr("lint", "call_flows")  # in this process (tests/conftest.py)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the one `ivr lint` run in a process of its own
    bad = subprocess.run([sys.executable, "-m", "ivr.cli", "lint", "--format", "json", "tests/flows/lint"],
                         cwd=repo, capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert {f["rule"] for f in json.loads(bad.stdout)["findings"]} >= {"E1", "E2", "E9", "E10", "E11", "E13", "E15"}
