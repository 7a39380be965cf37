"""Findings for people (one line each, file:line:col first, capped with a count) and for
tools (JSON, every finding)."""
from __future__ import annotations

import json
from dataclasses import asdict

from ivr.etiquette.lint.findings import Finding, count

DEFAULT_LIMIT = 200


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def more_line(hidden: int, what: str = "more") -> str:
    return f"… and {hidden:,} {what}"


def format_text(findings: list[Finding], limit: int | None = None) -> str:
    """One line per finding (at most `limit`, then "… and N more"), then a summary."""
    errors, warnings = count(findings)
    summary = (f"{plural(errors, 'error')}, {plural(warnings, 'warning')}" if findings
               else "no etiquette problems found")
    shown = findings if not limit or len(findings) <= limit else findings[:limit]
    lines = [str(f) for f in shown]
    if len(shown) < len(findings):
        lines.append(more_line(len(findings) - len(shown), "more (--limit 0 shows all)"))
    return "\n".join(lines + [summary])


def format_json(findings: list[Finding]) -> str:
    errors, warnings = count(findings)
    return json.dumps({"findings": [asdict(f) for f in findings], "errors": errors, "warnings": warnings},
                      ensure_ascii=False, indent=2)
