"""E15 complaints: a complaint recording starts with empathy and says when the caller hears back."""
from __future__ import annotations

from ivr.etiquette.lint.engine import Lint, check, step_texts
from ivr.etiquette.lint.rules import normal


@check
def e15_complaint(lint: Lint) -> None:
    markers = [normal(m) for m in lint.rules.words("complaint_markers")]
    for name, step in lint.flow.steps.items():
        if not step.record:
            continue
        words = [normal(w) for w in [name] + [t for _, t in step_texts(name, step, lint.flow)]]
        if not any(m in w for m in markers for w in words):
            continue
        at = ("steps", name, "record")
        if not step.record.empathy:
            lint.report("E15", "complaint-no-empathy", "error", at,
                        f"the complaint recording in step '{name}' starts without a word of empathy",
                        "add empathy: 我非常理解您现在的心情, / I completely understand how you feel.")
        if not step.record.reply_promise:
            lint.report("E15", "complaint-no-reply-promise", "error", at,
                        f"the caller who complains in step '{name}' is not told when they will hear back",
                        "add reply_promise: 我们会在两个工作日内给您回复 / We will get back to you within two working days.")
