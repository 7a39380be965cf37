"""`record`: empathy first, then record what the caller says (E15 complaints)."""
from __future__ import annotations

from pydantic import Field

from ivr.call import facts
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.flow.types import Duration, Keys, Strict, Text, duration_text
from ivr.steps.base import Kind, Way, register


class Record(Strict):
    empathy: Text | None = Field(None, description="E15: said first, e.g. 我非常理解您现在的心情")
    prompt: Text
    max_length: Duration = 120
    finish_keys: Keys = "#"
    reply_promise: Text | None = Field(None, description="when the caller will hear back (E15)")


SILENT_RECORDING = 1.0  # seconds: Twilio saves silent recordings and reports 0-1 s for them


@register
class RecordKind(Kind):
    name, spec, icon, fill = "record", Record, "🎙", "#fde2e4"
    description = "record the caller (a complaint, a message), then the step in `next:`"

    def texts(self, spec, step, flow):
        return [(("record", f), getattr(spec, f)) for f in ("empathy", "prompt", "reply_promise") if getattr(spec, f)]

    def opening(self, spec, step, flow):
        return self.texts(spec, step, flow)[:2] if spec.empathy else self.texts(spec, step, flow)[:1]

    def ways_out(self, step, flow):
        return [Way(step.next, "after recording", ("next",))]

    def facts(self, spec, step, flow):
        return f"up to {duration_text(spec.max_length)}, ends with {spec.finish_keys}"

    def check(self, spec, step, flow, source, at):
        from ivr.twilio import limits

        message = limits.record_length(spec.max_length)
        return [source.problem(at + ("record", "max_length"), message)] if message else []

    def enter(self, run, spec):
        run.say(spec.empathy, spec.prompt)
        run.act(act.Record(spec.max_length, spec.finish_keys))
        run.state.phase = "recording"

    def handle(self, run, spec, event):
        if not isinstance(event, ev.Recorded):
            return super().handle(run, spec, event)
        if event.url and event.seconds > SILENT_RECORDING:
            run.note(facts.Recording("kept", step=run.state.step, url=event.url, seconds=event.seconds))
            run.say(spec.reply_promise)
        else:  # nothing (or a second of silence) was recorded: no promise to reply to nothing
            run.note(facts.Recording("empty", step=run.state.step, url=event.url or None, seconds=event.seconds))
            run.say(run.etiquette.nothing_recorded)
        run.goto(run.step.next)
