"""`ivr graph FLOW`: a picture of a call flow for the people who edit it.

Every step is a box (its name, its kind, the start of what the caller hears);
every arrow says what takes the caller there (a key or words, yes/no to a
hold or transfer, "at limit"/"no answer" to the flow's offers, a ladder's
`then`). Dashed arrows show where the built-in etiquette ends a call: after
the retries at any listening step (E2/E3/E5), and after goodbye (E11).

Formats: mermaid (GitHub/GitLab render it), dot (Graphviz), html (one
self-contained page: Graphviz's SVG when `dot` is installed, else the Mermaid
text with a note), svg (needs Graphviz).
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ivr.flow.load import LADDERS, LoadedFlow, load_flow
from ivr.flow.source import FlowError
from ivr.flow.types import duration_text as duration
from ivr.steps import KINDS

FORMATS = ("mermaid", "dot", "html", "svg")
BY_SUFFIX = {".mmd": "mermaid", ".md": "mermaid", ".dot": "dot", ".gv": "dot", ".html": "html", ".svg": "svg"}
ICONS = {name: kind.icon for name, kind in KINDS.items()}
FILL = {name: kind.fill for name, kind in KINDS.items() if kind.fill}
LADDER_WORDS = {"silence": "silence", "quiet": "too quiet", "noisy": "too noisy", "not_understood": "not understood"}
START, HANG_UP, CALLER_HANGS_UP = "start", "hangup", "callerhangsup"
SPECIAL = {START: "📞 call starts",
           HANG_UP: "✋ hang up after the script (E2/E3/E5)",
           CALLER_HANGS_UP: "☎ caller hangs up first (E11)"}
HEARD_CHARS = 30


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    kind: str
    facts: str = ""   # e.g. "waits ≤ 1m, check-in every 30s"
    heard: str = ""   # the first words the caller hears


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

def clip(text: str | None, limit: int = HEARD_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def build(loaded: LoadedFlow) -> Graph:
    flow = loaded.flow
    ids = {name: f"s{i}" for i, name in enumerate(flow.steps)}
    graph = Graph(f"{flow.name} (version {flow.version}, {flow.language})")
    graph.edges.append(Edge(START, ids[flow.start]))
    for name, step in flow.steps.items():
        graph.nodes.append(Node(ids[name], name, step.kind, _facts(step, flow), clip(_heard(step, flow))))
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


def label_lines(node, escape, heard_format: str) -> list[str]:
    """A step's box, whatever the format: its name in bold, its kind and facts, what the caller hears."""
    kind = " · ".join(p for p in (f"{ICONS[node.kind]} {node.kind}", node.facts) if p)
    lines = [f"<b>{escape(node.name)}</b>", escape(kind)]
    if node.heard:
        lines.append(heard_format.format(escape(node.heard)))
    return lines


def to_mermaid(loaded: LoadedFlow) -> str:
    graph = build(loaded)
    lines = [f"%% {graph.title}: solid arrows are what the caller does, "
             f"dashed ones where etiquette ends the call", "flowchart TD"]
    for node in graph.nodes:
        if node.kind == "special":
            lines.append(f'    {node.id}(["{mermaid_escape(SPECIAL[node.id])}"])')
            continue
        lines.append(f'    {node.id}["{"<br/>".join(label_lines(node, mermaid_escape, "“{}”"))}"]')
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
    font = 'fontname="sans-serif"'
    lines = [f"digraph {dot_quote(graph.title)} {{",
             f'    graph [label={dot_quote(graph.title)}, labelloc=t, fontsize=16, {font}, nodesep=0.35, ranksep=0.45];',
             f'    node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#555555", {font}, fontsize=11];',
             f'    edge [{font}, fontsize=10, color="#333333"];']
    for node in graph.nodes:
        if node.kind == "special":
            lines.append(f'    {node.id} [label={dot_quote(SPECIAL[node.id])}, shape=box, '
                         f'style="rounded,filled,dashed", fillcolor="#f6f6f6"];')
            continue
        heard = '<font point-size="10" color="#333333">“{}”</font>'
        lines.append(f'    {node.id} [label=<{"<br/>".join(label_lines(node, dot_html, heard))}>, '
                     f'fillcolor="{FILL.get(node.kind, "#ffffff")}"];')
    for edge in graph.edges:
        attrs = [f"label={dot_quote(edge.label)}"] if edge.label else []
        if edge.dashed:
            attrs += ["style=dashed", 'color="#888888"', 'fontcolor="#666666"']
        lines.append(f"    {edge.src} -> {edge.dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- SVG and HTML ---------------------------------------------------------------

def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def to_svg(loaded: LoadedFlow) -> str:
    if not graphviz_available():
        raise GraphvizMissing("--format svg needs Graphviz's `dot` program: install it "
                              "(apt-get install graphviz) or use --format mermaid or html")
    done = subprocess.run(["dot", "-Tsvg"], input=to_dot(loaded).encode("utf-8"), capture_output=True, timeout=120)
    if done.returncode != 0:
        raise GraphvizMissing(f"Graphviz could not draw the flow: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout.decode("utf-8")


def to_html(loaded: LoadedFlow) -> str:
    flow = loaded.flow
    title = html.escape(f"{flow.name} (version {flow.version})")
    if graphviz_available():
        svg = to_svg(loaded)
        body = svg[svg.find("<svg"):]
    else:
        body = ("<p><b>Graphviz is not installed here, so this page shows the flow as Mermaid text.</b> "
                "To see the picture, paste it into a GitHub or GitLab comment or Markdown file between "
                "<code>```mermaid</code> and <code>```</code>, or install Graphviz (apt-get install graphviz) "
                "and run <code>ivr graph --format html</code> again.</p>\n"
                f"<pre>{html.escape(to_mermaid(loaded))}</pre>")
    return (f'<!doctype html>\n<html lang="{html.escape(flow.language)}">\n<head><meta charset="utf-8">'
            f"<title>{title}</title>\n<style>body{{font-family:sans-serif;margin:1.5em}} svg{{max-width:100%;"
            f"height:auto}} pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head>\n<body>\n"
            f"<h1>Call flow {title}</h1>\n<p>Boxes are steps: name, kind, and the start of what the caller hears. "
            f"Solid arrows say what takes the caller on; dashed arrows show where the built-in etiquette ends "
            f"the call.</p>\n{body}\n</body>\n</html>\n")


RENDER = {"mermaid": to_mermaid, "dot": to_dot, "html": to_html, "svg": to_svg}


# --- command line -----------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("flow", metavar="FLOW", help="the flow .yaml file")
    parser.add_argument("--format", choices=FORMATS,
                        help="mermaid (default; GitHub/GitLab show it), dot (Graphviz), html (one page), "
                             "svg (needs Graphviz); guessed from --out's ending when not given")
    parser.add_argument("--out", metavar="FILE", help="write to this file instead of the screen")


def run(args) -> int:
    fmt = args.format or BY_SUFFIX.get(Path(args.out).suffix.lower() if args.out else "", "mermaid")
    try:
        text = RENDER[fmt](load_flow(args.flow))
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (GraphvizMissing, subprocess.TimeoutExpired) as exc:
        print(f"ivr graph: {exc}", file=sys.stderr)
        return 1
    if not args.out:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"ivr graph: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({fmt})")
    return 0
