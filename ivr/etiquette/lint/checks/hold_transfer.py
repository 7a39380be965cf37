"""E9 hold and E10 transfer: what the caller hears first asks a question and tells how long,
in words that agree with the `limit:` (or `ring_limit:`) the engine keeps; check-ins often
enough; a ring limit that gives the agent time without leaving the caller ringing.

A hold or transfer missing its reason, question or limit does not load at all: those
findings are the loader's own problems (see `ivr.etiquette.lint.run.load_finding`)."""
from __future__ import annotations

import re

from ivr.etiquette.lint.durations import agrees, said_durations, spoken
from ivr.etiquette.lint.engine import Lint, changed, check, etiquettes
from ivr.etiquette.lint.rules import normal

# the name of a finding for each field the loader requires (ivr/steps/hold.py, transfer.py `check`)
MISSING_NAMES = {("hold", "reason"): "hold-no-reason", ("hold", "ask"): "hold-no-consent",
                 ("hold", "limit"): "hold-no-limit", ("transfer", "reason"): "transfer-no-reason",
                 ("transfer", "ask"): "transfer-no-consent", ("transfer", "ring_limit"): "transfer-no-ring-limit"}


def is_question(lint: Lint, text: str) -> bool:
    return "?" in normal(text) or lint.rules.has_any(text, lint.rules.words("question_markers"))


def _promised(spec) -> float | None:
    """The longest wait a hold's or transfer's reason and question tell the caller of (None: none)."""
    found = said_durations(" ".join(t for t in (spec.reason, spec.ask) if t))
    return max(found) if found else None


def _must_ask(lint: Lint, rule: str, kind: str, at: tuple, ask: str | None, example: str) -> None:
    """E9, E10: the caller is asked whether they mind, in a question."""
    if ask is not None and not is_question(lint, ask):
        lint.report(rule, f"{kind}-not-asked", "error", at + ("ask",),
                    f"the {kind}'s ask: \"{ask}\" is not a question; the caller must be asked if they mind",
                    f"ask a question, e.g. {example}")


@check
def e9_hold(lint: Lint) -> None:
    language = lint.flow.language
    for name, step in lint.flow.steps.items():
        if not step.hold:
            continue
        at, hold = ("steps", name, "hold"), step.hold
        _must_ask(lint, "E9", "hold", at, hold.ask, "麻烦您稍等一下好吗? / May I put you on hold for a moment?")
        if hold.limit is not None:
            said = _promised(hold)
            if said is None:
                lint.report("E9", "hold-no-duration", "error", at + ("reason",),
                            f"the caller is not told how long the hold may take (limit: {spoken(hold.limit, 'en')})",
                            f"say it in the reason, e.g. 大约需要{spoken(hold.limit, 'cmn')} / "
                            f"it will take about {spoken(hold.limit, 'en')}")
            elif not agrees(said, hold.limit):
                lint.report("E9", "hold-duration-mismatch", "error", at + ("reason",),
                            f"the reason promises about {spoken(said, language)}, but the hold's limit is "
                            f"{spoken(hold.limit, language)}",
                            f"make the words and `limit:` agree (say {spoken(hold.limit, language)}, or set "
                            f"limit: {round(said)}s)")
        if hold.limit is not None and hold.limit > 300:
            lint.report("E9", "hold-long-limit", "warning", at + ("limit",),
                        f"the caller is asked to wait up to {hold.limit / 60:g} min",
                        "keep holds within 5 minutes; offer a call back instead")
        if hold.check_in_every is not None and hold.check_in_every > 30:
            lint.report("E9", "hold-rare-check-in", "error", at + ("check_in_every",),
                        f"the caller on hold hears from us only every {hold.check_in_every:g} s",
                        "check_in_every: 30s or less")
    for at, et, parent in etiquettes(lint.flow):
        every = et.hold.check_in_every
        if every > 30 and changed(et, parent, ("hold", "check_in_every")):
            lint.report("E9", "hold-rare-check-in", "error", at + ("hold", "check_in_every"),
                        f"callers on hold hear from us only every {every:g} s", "check_in_every: 30s or less")


def _ring_limit_problem(seconds: float) -> str | None:
    if seconds > 60:
        return f"the transfer rings for up to {seconds:g} s before the caller is told"
    if seconds < 10:
        return f"the transfer rings for only {seconds:g} s; the agent has no time to answer"
    return None


def _ring_limit_written(lint: Lint, name: str) -> bool:
    """A ring limit the author chose: on the step, in its `etiquette:`, or in the flow's."""
    positions = lint.loaded.source.positions
    return any(path in positions for path in (("steps", name, "transfer", "ring_limit"),
                                               ("steps", name, "etiquette", "transfer", "ring_limit"),
                                               ("etiquette", "transfer", "ring_limit")))


@check
def e10_transfer(lint: Lint) -> None:
    language = lint.flow.language
    for name, step in lint.flow.steps.items():
        if not step.transfer:
            continue
        at, tr = ("steps", name, "transfer"), step.transfer
        limit = tr.ring_limit if tr.ring_limit is not None else (step.etiquette or lint.flow.etiquette).transfer.ring_limit
        if not _ring_limit_written(lint, name):
            lint.report("E10", "transfer-no-ring-limit", "error", at,
                        "the transfer has no ring limit: how long the caller waits for an agent is not decided here",
                        f"add ring_limit: (e.g. ring_limit: {round(limit)}s)")
        _must_ask(lint, "E10", "transfer", at, tr.ask, "请问可以吗? / Is that all right?")
        said = _promised(tr)
        if said is not None and not agrees(said, limit):
            lint.report("E10", "transfer-duration-mismatch", "error", at + ("reason",),
                        f"the caller is told about {spoken(said, language)}, but the transfer rings for up to "
                        f"{spoken(limit, language)}", "make the words and `ring_limit:` agree")
        if tr.ring_limit is not None and (problem := _ring_limit_problem(tr.ring_limit)):
            lint.report("E10", "transfer-ring-limit", "warning", at + ("ring_limit",), problem,
                        "ring_limit between 10s and 60s (default 30s)")
        if not tr.whisper:
            lint.report("E10", "transfer-no-whisper", "warning", at,
                        "the receiving agent is not told who is calling and why",
                        "add whisper: e.g. 客户来电需要人工服务,来电号码{caller} / Customer call from {caller}, ...")
    for at, et, parent in etiquettes(lint.flow):
        problem = _ring_limit_problem(et.transfer.ring_limit)
        if problem and changed(et, parent, ("transfer", "ring_limit")):
            lint.report("E10", "transfer-ring-limit", "warning", at + ("transfer", "ring_limit"), problem,
                        "ring_limit between 10s and 60s (default 30s)")


_MISSING = re.compile(r"^(E\d+)\b.*?\b(hold|transfer)\b.*?'(\w+)'")


def missing_field(message: str) -> tuple[str, str] | None:
    """(rule, finding name) for a loader problem that says a hold or transfer lacks a field."""
    m = _MISSING.match(message)
    if m and (m.group(2), m.group(3)) in MISSING_NAMES:
        return m.group(1), MISSING_NAMES[(m.group(2), m.group(3))]
    return None
