"""`ivr lint`: the static etiquette linter.

Every prompt and setting of a flow is checked against the rules of ETIQUETTE.md;
each finding cites its rule ID (E1..E15, or `load` for a file that does not load)
and points at the line of the offending value.

- `findings`: the Finding; `rules`: the word lists and settings (ivr/etiquette/rules/<language>.yaml,
  which ops may extend, plus an extra rules file and the flow's own `jargon:`);
- `engine`: the context a check works in and the registry of checks (`@check`);
- `checks/`: one module per rule family (greeting, ladders, hold_transfer, ending, wording,
  complaint, timing); `durations`: durations said in words;
- `run`: linting flows, files and folders; `output`: text and JSON.
"""
from ivr.etiquette.lint.findings import Finding, count, has_errors
from ivr.etiquette.lint.output import DEFAULT_LIMIT, format_json, format_text
from ivr.etiquette.lint.rules import Rules, RulesError, load_rules
from ivr.etiquette.lint.run import flow_files, lint_file, lint_flow, lint_paths, load_finding

__all__ = ["DEFAULT_LIMIT", "Finding", "Rules", "RulesError", "count", "flow_files", "format_json", "format_text",
           "has_errors", "lint_file", "lint_flow", "lint_paths", "load_finding", "load_rules", "main_lint"]


def main_lint(paths: list[str], fmt: str = "text", rules: str | None = None, limit: int | None = DEFAULT_LIMIT) -> int:
    """Lint, print the findings (text or json) and return the exit code: 1 if any error, 2 for
    an unknown format."""
    import sys

    if fmt not in ("text", "json"):
        print(f"unknown format '{fmt}'; use text or json", file=sys.stderr)
        return 2
    findings = lint_paths(paths, extra_rules=rules)
    print(format_json(findings) if fmt == "json" else format_text(findings, limit))
    return 1 if has_errors(findings) else 0
