"""`ivr report`: the compliance scorecard of ETIQUETTE.md, per call and per flow, from the call log.

- `log`: a call's log read back as typed entries (the facts of ivr.call.facts via `parse`, the
  requests and answers); untrusted, so anything unreadable is skipped;
- `scorecard`: one call's card (`score_call(log) -> dict`);
- `sums`: per-flow sums and rates (`summarise(cards) -> {flow: dict}`);
- `store`: reading the call store;
- `text`, `html`: rendering, which never changes a figure (JSON is the report dict itself).

Every string taken from the log (caller speech, parameters, step names) is untrusted: the
HTML is rendered by Jinja2 with autoescaping, links are only made of http(s) URLs, terminal
text has its control characters replaced, and no output format executes anything it reads.
"""
from ivr.etiquette.report.html import render_html
from ivr.etiquette.report.log import printable, read_log
from ivr.etiquette.report.scorecard import score_call, time_to_greeting_s
from ivr.etiquette.report.store import ReportError, build_report, load_call, load_cards
from ivr.etiquette.report.sums import summarise, summarise_flow
from ivr.etiquette.report.text import format_call_detail, format_text, print_rich, timeline

__all__ = ["ReportError", "build_report", "format_call_detail", "format_text", "load_call", "load_cards",
           "print_rich", "printable", "read_log", "render_html", "score_call", "summarise", "summarise_flow",
           "time_to_greeting_s", "timeline"]
