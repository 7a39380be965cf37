"""`ivr graph FLOW`: a picture of a call flow for the people who edit it.

Every step is a box (its name, its kind, the start of what the caller hears);
every arrow says what takes the caller there (a key or words, yes/no to a
hold or transfer, "at limit"/"no answer" to the flow's offers, a ladder's
`then`). Dashed arrows show where the built-in etiquette ends a call: after
the retries at any listening step (E2/E3/E5), and after goodbye (E11).

Formats: mermaid (GitHub/GitLab render it), dot (Graphviz), html (one
self-contained page: Graphviz's SVG when `dot` is installed, else a simple
layered picture drawn here (ivr.flow.graph_svg), never a script or a CDN),
svg and png (need Graphviz), json (steps and ways between them, for tools).

Chinese is drawn with a CJK font (Noto Sans CJK SC: Debian's fonts-noto-cjk, which
.ci/run and `./dev install` install); the SVG names it in font-family. The command
line is in ivr/cli.py.
"""
from __future__ import annotations

import html
import json
import shutil
import subprocess
import textwrap
import unicodedata
from dataclasses import asdict, dataclass, field

from ivr.flow.load import LADDERS, LoadedFlow
from ivr.flow.types import duration_text as duration
from ivr.steps import KINDS

FORMATS = ("mermaid", "dot", "html", "svg", "png", "json")
BY_SUFFIX = {".mmd": "mermaid", ".md": "mermaid", ".dot": "dot", ".gv": "dot", ".html": "html", ".svg": "svg",
             ".png": "png", ".json": "json"}
FONT = "Noto Sans CJK SC,Noto Sans,DejaVu Sans,sans-serif"  # CJK first: one font for Chinese and English
ICONS = {name: kind.icon for name, kind in KINDS.items()}
FILL = {name: kind.fill for name, kind in KINDS.items() if kind.fill}
LADDER_WORDS = {"silence": "silence", "quiet": "too quiet", "speakerphone": "speakerphone", "noisy": "too noisy", "not_understood": "not understood"}
START, HANG_UP, CALLER_HANGS_UP = "start", "hangup", "callerhangsup"
SPECIAL = {START: "▶ call starts",
           HANG_UP: "■ hang up after the script (E2/E3/E5)",
           CALLER_HANGS_UP: "☎ caller hangs up first (E11)"}
HEARD_WIDTH = 34   # columns per line of what the caller hears (a Chinese character is two)
HEARD_LINES = 3


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    kind: str
    facts: str = ""   # e.g. "waits ≤ 1m, check-in every 30s"
    heard: str = ""   # what the caller hears first (whole; drawings wrap it)


@dataclass(frozen=True)
class Edge:
    src: str  # node ids
    dst: str
    label: str = ""
    dashed: bool = False


@dataclass
class Graph:
    title: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


class GraphvizMissing(Exception):
    pass


# --- what to draw ------------------------------------------------------------

def width(text: str) -> int:
    """Columns on screen: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap(text: str | None, columns: int = HEARD_WIDTH, lines: int = HEARD_LINES) -> list[str]:
    """What the caller hears in a few lines of about `columns` columns: English by words,
    Chinese by characters; what does not fit ends with "…"."""
    text = " ".join((text or "").split())
    if not text:
        return []
    out: list[str] = []
    if text.isascii():  # no wide characters: wrap at words
        out = textwrap.wrap(text, columns, break_long_words=True)
    else:
        line, used = "", 0
        for ch in text:
            w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
            if used + w > columns:
                out.append(line)
                line, used = "", 0
            line, used = line + ch, used + w
        out.append(line)
    if len(out) > lines:
        out = out[:lines]
        last = out[-1].rstrip()
        out[-1] = (last.rsplit(" ", 1)[0] if " " in last else last[:-1]) + "…"
    return out


def build(loaded: LoadedFlow) -> Graph:
    flow = loaded.flow
    ids = {name: f"s{i}" for i, name in enumerate(flow.steps)}
    graph = Graph(f"{flow.name} (version {flow.version}, {flow.language})")
    graph.edges.append(Edge(START, ids[flow.start]))
    for name, step in flow.steps.items():
        graph.nodes.append(Node(ids[name], name, step.kind, _facts(step, flow), _heard(step, flow)))
        graph.edges += [Edge(ids[name], ids.get(dst, dst), label, dashed) for dst, label, dashed in _ways_out(step, flow)]
    used = {e.dst for e in graph.edges}
    graph.nodes = [Node(START, "", "special")] + graph.nodes + [
        Node(n, "", "special") for n in (HANG_UP, CALLER_HANGS_UP) if n in used]
    return graph


def _heard(step, flow) -> str:
    spec = getattr(step, step.kind)
    if step.kind == "goodbye" and not spec:  # the flow's own goodbye words
        return (step.etiquette or flow.etiquette).goodbye.say
    return " ".join(text for _, text in KINDS[step.kind].opening(spec, step, flow))


def _facts(step, flow) -> str:
    return KINDS[step.kind].facts(getattr(step, step.kind), step, flow)


def _ways_out(step, flow) -> list[tuple[str, str, bool]]:
    """(target step or special node, label, dashed) for every way out of a step."""
    kind, et = KINDS[step.kind], step.etiquette or flow.etiquette
    out = [(way.to, way.label, False) for way in kind.ways_out(step, flow)]
    if step.etiquette or kind.listens:
        thens: dict[str, list[str]] = {}
        for ladder in LADDERS:
            then = getattr(et, ladder).then
            thens.setdefault(then, []).append(LADDER_WORDS[ladder])
        out += [(dst, f"then ({', '.join(why)})", False) for dst, why in thens.items() if dst]
        if kind.listens and None in thens:
            why = "" if len(thens[None]) == len(LADDERS) else f" ({', '.join(thens[None])})"
            out.append((HANG_UP, f"after the retries{why}", True))
    if step.kind == "goodbye":
        out.append((CALLER_HANGS_UP, f"we wait {duration(et.goodbye.wait)}", True))
    return out


# --- Mermaid -------------------------------------------------------------------

_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "|": "#124;", "`": "#96;"}


def mermaid_escape(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text)


def heard_lines(node) -> list[str]:
    lines = wrap(node.heard)
    if lines:  # one after the other: a one-line prompt gets both quotes
        lines[0] = "“" + lines[0]
        lines[-1] = lines[-1] + "”"
    return lines


def kind_line(node, icon: bool = True) -> str:
    """The step's kind and facts; `icon` only where the reader's font has emoji (Mermaid in a browser):
    Graphviz draws with the flow's CJK font, which has none."""
    kind = f"{ICONS[node.kind]} {node.kind}" if icon else node.kind
    return " · ".join(p for p in (kind, node.facts) if p)


def label_lines(node, escape, heard_format: str, icon: bool = True) -> list[str]:
    """A step's box, whatever the format: its name in bold, its kind and facts, what the caller hears."""
    lines = [f"<b>{escape(node.name)}</b>", escape(kind_line(node, icon))]
    lines += [heard_format.format(escape(line)) for line in heard_lines(node)]
    return lines


def to_mermaid(loaded: LoadedFlow) -> str:
    graph = build(loaded)
    lines = [f"%% {graph.title}: solid arrows are what the caller does, "
             f"dashed ones where etiquette ends the call", "flowchart TD"]
    for node in graph.nodes:
        if node.kind == "special":
            lines.append(f'    {node.id}(["{mermaid_escape(SPECIAL[node.id])}"])')
            continue
        lines.append(f'    {node.id}["{"<br/>".join(label_lines(node, mermaid_escape, "{}"))}"]')
    for edge in graph.edges:
        arrow = "-.->" if edge.dashed else "-->"
        label = f'|"{mermaid_escape(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.src} {arrow}{label} {edge.dst}")
    for kind, fill in FILL.items():
        members = [n.id for n in graph.nodes if n.kind == kind]
        if members:
            lines.append(f"    classDef {kind} fill:{fill},stroke:#555")
            lines.append(f"    class {','.join(members)} {kind}")
    lines.append("    classDef special fill:#f6f6f6,stroke:#888,stroke-dasharray:4 3")
    lines.append(f"    class {','.join(n.id for n in graph.nodes if n.kind == 'special')} special")
    return "\n".join(lines) + "\n"


# --- Graphviz DOT ----------------------------------------------------------------

def dot_quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, no line breaks."""
    return '"' + " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_html(text: str) -> str:
    """Text for inside a DOT HTML-like label."""
    return html.escape(text, quote=True)


def to_dot(loaded: LoadedFlow) -> str:
    graph = build(loaded)
    font = f'fontname="{FONT}"'
    lines = [f"digraph {dot_quote(graph.title)} {{",
             f'    graph [label={dot_quote(graph.title)}, labelloc=t, fontsize=20, {font}, nodesep=0.5, ranksep=0.6, '
             f'pad=0.3];',
             f'    node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#555555", {font}, fontsize=14, '
             f'margin="0.15,0.08"];',
             f'    edge [{font}, fontsize=12, color="#333333", fontcolor="#1a237e"];']
    for node in graph.nodes:
        if node.kind == "special":
            lines.append(f'    {node.id} [label={dot_quote(SPECIAL[node.id])}, shape=box, '
                         f'style="rounded,filled,dashed", fillcolor="#f6f6f6"];')
            continue
        heard = '<font point-size="13" color="#333333">{}</font>'
        lines.append(f'    {node.id} [label=<{"<br/>".join(label_lines(node, dot_html, heard, icon=False))}>, '
                     f'fillcolor="{FILL.get(node.kind, "#ffffff")}"];')
    for edge in graph.edges:
        # on a white ground, so no line runs through a label
        attrs = [f'label=<<table border="0" cellborder="0" cellpadding="1" bgcolor="white"><tr><td>'
                 f'{dot_html(" ".join(edge.label.split()))}</td></tr></table>>'] if edge.label else []
        if edge.dashed:
            attrs += ["style=dashed", 'color="#888888"', 'fontcolor="#666666"']
        lines.append(f"    {edge.src} -> {edge.dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- SVG, PNG and HTML -------------------------------------------------------------

def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def _graphviz(loaded: LoadedFlow, fmt: str) -> bytes:
    if not graphviz_available():
        raise GraphvizMissing(f"--format {fmt} needs Graphviz's `dot` program: install it "
                              "(apt-get install graphviz) or use --format mermaid or html")
    done = subprocess.run(["dot", f"-T{fmt}"], input=to_dot(loaded).encode("utf-8"), capture_output=True, timeout=120)
    if done.returncode != 0:
        raise GraphvizMissing(f"Graphviz could not draw the flow: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout


def to_svg(loaded: LoadedFlow) -> str:
    return _graphviz(loaded, "svg").decode("utf-8")


def to_png(loaded: LoadedFlow) -> bytes:
    return _graphviz(loaded, "png")


def to_json(loaded: LoadedFlow) -> str:
    graph = build(loaded)
    return json.dumps({"title": graph.title, "nodes": [asdict(n) for n in graph.nodes],
                       "edges": [asdict(e) for e in graph.edges]}, ensure_ascii=False, indent=2) + "\n"


def to_html(loaded: LoadedFlow) -> str:
    from ivr.flow.graph_svg import draw

    flow = loaded.flow
    title = html.escape(f"{flow.name} (version {flow.version})")
    if graphviz_available():
        svg = to_svg(loaded)
        body = svg[svg.find("<svg"):]
    else:
        body = (draw(build(loaded), SPECIAL)
                + "\n<p>Graphviz is not installed here, so this is a simple drawing (steps in rows by how many "
                  "steps they are from the start). For Graphviz's layout install it (apt-get install graphviz); "
                  "the same flow as Mermaid text (GitHub and GitLab draw it between <code>```mermaid</code> and "
                  "<code>```</code>):</p>\n"
                + f"<details><summary>Mermaid text</summary><pre>{html.escape(to_mermaid(loaded))}</pre></details>")
    return (f'<!doctype html>\n<html lang="{html.escape(flow.language)}">\n<head><meta charset="utf-8">'
            f"<title>{title}</title>\n<style>body{{font-family:'Noto Sans CJK SC','Noto Sans',sans-serif;"
            f"margin:1.5em;font-size:16px}} .picture{{overflow:auto;border:1px solid #ddd;padding:8px;cursor:zoom-in}} "
            f".picture svg{{max-width:100%;height:auto}} .picture.full{{cursor:zoom-out}} "
            f".picture.full svg{{max-width:none}} "
            f"pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head>\n<body>\n"
            f"<h1>Call flow {title}</h1>\n<p>Boxes are steps: name, kind, and what the caller hears first. "
            f"Solid arrows say what takes the caller on; dashed arrows show where the built-in etiquette ends "
            f"the call. The whole flow fits the page; click the picture to see it full size (and again to fit).</p>\n"
            f"<div class=\"picture\" onclick=\"this.classList.toggle('full')\">{body}</div>\n</body>\n</html>\n")


RENDER = {"mermaid": to_mermaid, "dot": to_dot, "html": to_html, "svg": to_svg, "png": to_png, "json": to_json}
