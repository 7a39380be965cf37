"""A lint finding: which rule, where, what is wrong and how to fix it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    rule: str       # "E9", or "load" for a file that does not load
    name: str       # "hold-no-limit"
    severity: str   # "error" | "warning"
    file: str
    line: int
    col: int
    message: str    # what is wrong
    fix: str        # how to fix it

    def __str__(self) -> str:
        return (f"{self.file}:{self.line}:{self.col}: {self.severity} {self.rule} {self.name}: "
                f"{self.message} — {self.fix}")


def unique_sorted(findings) -> list[Finding]:
    return sorted(set(findings), key=lambda f: (f.file, f.line, f.col, f.rule, f.name, f.message))


def count(findings) -> tuple[int, int]:
    """(errors, warnings)."""
    errors = sum(f.severity == "error" for f in findings)
    return errors, len(findings) - errors


def has_errors(findings) -> bool:
    return any(f.severity == "error" for f in findings)
