"""The report as one self-contained HTML page (Jinja2, autoescaped; charts as inline SVG)."""
from __future__ import annotations

from pathlib import Path

from ivr.etiquette.report.text import OUTCOME_LABELS, HANG_UP_LABELS, _pct_text, _s, call_row

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
HOLD_COLOURS = {"ok": "#2e7d32", "breach": "#c62828", "dropped": "#9e9e9e", "open": "#f9a825"}
OUTCOME_COLOURS = {"connected": "#2e7d32", "no-consent": "#78909c", "in progress": "#f9a825"}
HANG_UP_COLOURS = {"caller": "#2e7d32", "engine": "#1565c0", "caller, before goodbye": "#ef6c00",
                   "engine, without goodbye": "#c62828"}


def hold_chart(cards: list[dict], width: int = 760, label_w: int = 230, row_h: int = 28) -> dict:
    """Geometry of the hold chart: one bar per hold (actual length), the promise marked on it."""
    rows = [(c, h) for c in cards for h in c["holds"]]
    top = max([h["waited"] or 0 for _, h in rows] + [h["promised"] or 0 for _, h in rows] + [1]) * 1.1
    scale = (width - label_w - 60) / top
    bars = []
    for i, (card, h) in enumerate(rows):
        status = ("breach" if h["breach"] else "ok" if h["result"] in ("served", "limit")
                  else "open" if h["result"] == "in progress" else "dropped")
        waited = h["waited"] or 0
        bars.append({
            "y": 30 + i * row_h, "x": label_w, "w": max(1.0, round(waited * scale, 1)),
            "promise_x": None if h["promised"] is None else round(label_w + h["promised"] * scale, 1),
            "label": f"…{str(card['call_sid'])[-6:]} · {h['step']}", "call_sid": card["call_sid"],
            "value": ("?" if h["waited"] is None else f"{'~' if h['estimated'] else ''}{h['waited']:g} s"),
            "promised": _s(h["promised"]), "status": status, "colour": HOLD_COLOURS[status],
        })
    ticks = [round(label_w + v * scale, 1) for v in range(0, int(top) + 1, 30 if top <= 300 else 60)]
    return {"bars": bars, "width": width, "height": 50 + len(rows) * row_h, "label_w": label_w, "row_h": row_h,
            "ticks": list(zip(ticks, range(0, int(top) + 1, 30 if top <= 300 else 60)))}


def count_chart(counts: dict, labels: dict, colours: dict, default: str = "#ef6c00",
                width: int = 520, label_w: int = 200, row_h: int = 26) -> dict:
    """A small horizontal bar chart of counts (zero rows left out)."""
    items = [(k, v) for k, v in counts.items() if v]
    top = max([v for _, v in items] + [1])
    scale = (width - label_w - 40) / top
    bars = [{"y": 10 + i * row_h, "x": label_w, "w": max(2.0, round(v * scale, 1)), "value": v,
             "label": labels.get(k, k), "colour": colours.get(k, default)} for i, (k, v) in enumerate(items)]
    return {"bars": bars, "width": width, "height": 20 + max(len(items), 1) * row_h, "label_w": label_w,
            "row_h": row_h}


def _safe_link(url) -> str | None:
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def render_html(report: dict) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["s"] = _s
    env.filters["pct"] = _pct_text
    env.filters["safe_link"] = _safe_link
    by_flow: dict[str, list[dict]] = {}
    for card in report["calls"]:
        by_flow.setdefault(card["flow"], []).append(card)
    flows = [{"name": name, "s": s, "hold_chart": hold_chart(by_flow.get(name, [])),
              "transfer_chart": count_chart(s["transfers_by_outcome"], OUTCOME_LABELS, OUTCOME_COLOURS),
              "hang_up_chart": count_chart(s["hung_up_first"], HANG_UP_LABELS, HANG_UP_COLOURS)}
             for name, s in report["flows"].items()]
    return env.get_template("report.html.j2").render(report=report, flows=flows, calls=report["calls"],
                                                     outcome_labels=OUTCOME_LABELS, row=call_row)
