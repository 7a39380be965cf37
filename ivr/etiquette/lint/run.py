"""Running the checks: on a loaded flow, a file, or files and folders of them. A file that
does not load gives the loader's own problems as findings (the same words `ivr validate`
prints); those that are etiquette (a hold without a limit) keep their rule."""
from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from pathlib import Path

from ivr.etiquette.lint import checks  # noqa: F401  (registers every check)
from ivr.etiquette.lint.checks.hold_transfer import missing_field
from ivr.etiquette.lint.engine import CHECKS, Lint
from ivr.etiquette.lint.findings import Finding, unique_sorted
from ivr.etiquette.lint.rules import Rules, RulesError, load_rules, read_rules
from ivr.flow.load import LoadedFlow, flows_in, load_flow
from ivr.flow.source import FlowError, Problem


@contextmanager
def no_cyclic_gc():
    """Loading and linting a big flow builds many objects and no garbage cycles; Python's cyclic
    collector would walk them all again and again (half the time of a 10,000-step load: PyYAML's
    node tree). The authoring commands (validate, lint, graph) run inside this."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def lint_flow(loaded: LoadedFlow, rules: Rules | str | Path | None = None) -> list[Finding]:
    """All findings for a loaded flow. `rules`: the Rules to use, or the path of an extra
    rules file added to the flow language's own; by default the language's own."""
    if not isinstance(rules, Rules):
        rules = load_rules(loaded.flow.language, str(rules) if rules else None)
    lint = Lint(loaded, rules)
    for fn in CHECKS:
        fn(lint)
    return unique_sorted(lint.findings)


LOAD_FIX = "fix the flow so that it loads (`ivr validate` shows the same)"


def load_finding(problem: Problem) -> Finding:
    """A loader problem as a finding: E9/E10 ones keep their rule, the rest are `load`."""
    message = problem.message
    missing = missing_field(message)
    if missing:
        rule, name = missing
        text, _, add = message.partition(": add ")
        text = re.sub(rf"^{rule}\b:?\s*", "", text)
        return Finding(rule, name, "error", problem.file, problem.line, problem.col, text,
                       f"add {add}" if add else LOAD_FIX)
    m = re.match(r"^(E\d+)\b", message)
    if m:
        return Finding(m.group(1), "etiquette-required", "error", problem.file, problem.line, problem.col,
                       message, LOAD_FIX)
    fix = LOAD_FIX
    if "; " in message:
        message, _, fix = message.partition("; ")
    return Finding("load", "flow-does-not-load", "error", problem.file, problem.line, problem.col, message, fix)


def rules_finding(exc: RulesError) -> Finding:
    return Finding("load", "rules-file-unusable", "error", exc.file, 1, 1, exc.message,
                   "fix the rules file (same layout as ivr/etiquette/rules/cmn-CN.yaml)")


def lint_file(path: str | Path, extra_rules: str | Path | None = None) -> list[Finding]:
    """A flow file's findings; a file that is not a flow (empty, or no `steps:`) fails to load,
    exactly as `ivr validate` says."""
    try:
        loaded = load_flow(path)
    except FlowError as exc:
        return unique_sorted([load_finding(p) for p in exc.problems])
    try:
        rules = load_rules(loaded.flow.language, str(extra_rules) if extra_rules else None)
    except RulesError as exc:
        return [rules_finding(exc)]
    return lint_flow(loaded, rules)


def flow_files(paths) -> tuple[list[Path], list[Finding]]:
    """The files named (each one is linted as a flow) and the flows found (*.yaml, *.yml
    with `steps:`) in the folders named; a folder's other YAML (callers.yaml) is skipped."""
    files, missing = [], []
    for p in map(Path, paths):
        if p.is_dir():
            files += flows_in(p)
        elif p.exists():
            files.append(p)
        else:
            missing.append(Finding("load", "no-such-file", "error", str(p), 1, 1,
                                   "no such file or directory", "give the path of a flow .yaml file or a folder of them"))
    return files, missing


def lint_paths(paths, extra_rules: str | Path | None = None) -> list[Finding]:
    """Lint flow files and folders of them."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files, findings = flow_files(paths)
    if extra_rules:
        try:
            read_rules(Path(extra_rules))
        except RulesError as exc:
            return findings + [rules_finding(exc)]
    for file in files:
        with no_cyclic_gc():
            findings += lint_file(file, extra_rules)
    return unique_sorted(findings)
