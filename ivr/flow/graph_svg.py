"""A flow picture drawn without Graphviz: steps in rows by their distance from the start
(breadth-first), arrows between them, labels on a white ground so no line runs through them.
Plain SVG, no script: `ivr graph --format html` shows it where `dot` is not installed."""
from __future__ import annotations

from collections import deque
from html import escape

from ivr.flow.graph import FILL, FONT, START, Graph, heard_lines, kind_line, width

MAX_NODES = 300
CHAR = 8.2         # px per column at 14 px (a Chinese character is two columns)
LINE = 20          # px per text line
PAD, GAP_X, GAP_Y = 10, 36, 78


def _depths(graph: Graph) -> dict[str, int]:
    after: dict[str, list[str]] = {}
    for e in graph.edges:
        after.setdefault(e.src, []).append(e.dst)
    depth, todo = {START: 0}, deque([START])
    while todo:
        node = todo.popleft()
        for nxt in after.get(node, ()):
            if nxt not in depth:
                depth[nxt] = depth[node] + 1
                todo.append(nxt)
    last = max(depth.values(), default=0) + 1
    return {n.id: depth.get(n.id, last) for n in graph.nodes}


def _lines(node, special: dict) -> list[tuple[str, str]]:
    """(text, style) of each line of a box."""
    if node.kind == "special":
        return [(special[node.id], "special")]
    return [(node.name, "name"), (kind_line(node, icon=False), "kind")] + [(line, "heard") for line in heard_lines(node)]


def draw(graph: Graph, special: dict) -> str:
    depth = _depths(graph)
    nodes = sorted(graph.nodes, key=lambda n: depth[n.id])[:MAX_NODES]
    hidden = len(graph.nodes) - len(nodes)
    boxes, rows = {}, {}
    for n in nodes:
        lines = _lines(n, special)
        w = max(width(t) for t, _ in lines) * CHAR + 2 * PAD
        boxes[n.id] = {"node": n, "lines": lines, "w": w, "h": len(lines) * LINE + PAD}
        rows.setdefault(depth[n.id], []).append(n.id)
    row_w = {d: sum(boxes[i]["w"] for i in ids) + GAP_X * (len(ids) - 1) for d, ids in rows.items()}
    canvas_w = max(row_w.values(), default=200) + 2 * GAP_X + 160  # room for arrows that go back up
    y = 20.0
    for d in sorted(rows):
        x = (canvas_w - 160 - row_w[d]) / 2
        for i in rows[d]:
            boxes[i]["x"], boxes[i]["y"] = x, y
            x += boxes[i]["w"] + GAP_X
        y += max(boxes[i]["h"] for i in rows[d]) + GAP_Y
    canvas_h = y + (30 if hidden else 0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{canvas_w:.0f}" height="{canvas_h:.0f}" '
           f'viewBox="0 0 {canvas_w:.0f} {canvas_h:.0f}" font-family="{FONT}" font-size="14">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>']
    labels = []
    for k, e in enumerate(graph.edges):
        a, b = boxes.get(e.src), boxes.get(e.dst)
        if a is None or b is None:
            continue
        style = ' stroke-dasharray="6 4" stroke="#888"' if e.dashed else ' stroke="#333"'
        x1, y1 = a["x"] + a["w"] / 2, a["y"] + a["h"]
        x2, y2 = b["x"] + b["w"] / 2, b["y"]
        if b["y"] > a["y"]:  # down to a later row
            path = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{y1 + 40:.0f} {x2:.0f},{y2 - 40:.0f} {x2:.0f},{y2:.0f}"
            # near the arrow's head (each arrow into a box has its own x), staggered in height
            lx, ly = x1 + (x2 - x1) * 0.7, y1 + (y2 - y1) * 0.55 + (k % 3 - 1) * 12
        else:  # back up (or across): round the right-hand side
            x1, y1 = a["x"] + a["w"], a["y"] + a["h"] / 2
            x2, y2 = b["x"] + b["w"], b["y"] + b["h"] / 2
            bend = max(x1, x2) + 60 + (k % 4) * 18
            path = f"M{x1:.0f},{y1:.0f} C{bend:.0f},{y1:.0f} {bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
            lx, ly = bend + width(e.label) * 3.6 + 8, (y1 + y2) / 2
        out.append(f'<path d="{path}" fill="none" stroke-width="1.4"{style} marker-end="url(#arrow)"/>')
        if e.label:
            lw = width(e.label) * 7.2 + 8
            labels.append(f'<rect x="{lx - lw / 2:.0f}" y="{ly - 11:.0f}" width="{lw:.0f}" height="18" rx="3" '
                          f'fill="#fff" fill-opacity="0.92"/><text x="{lx:.0f}" y="{ly + 3:.0f}" '
                          f'text-anchor="middle" font-size="12" fill="#1a237e">{escape(e.label)}</text>')
    for i, box in boxes.items():
        n = box["node"]
        fill = "#f6f6f6" if n.kind == "special" else FILL.get(n.kind, "#ffffff")
        dash = ' stroke-dasharray="4 3"' if n.kind == "special" else ""
        out.append(f'<g><rect x="{box["x"]:.0f}" y="{box["y"]:.0f}" width="{box["w"]:.0f}" height="{box["h"]:.0f}" '
                   f'rx="8" fill="{fill}" stroke="#555"{dash}/>')
        for j, (text, style) in enumerate(box["lines"]):
            weight = ' font-weight="bold"' if style == "name" else ""
            colour = ' fill="#333"' if style == "heard" else ""
            out.append(f'<text x="{box["x"] + PAD:.0f}" y="{box["y"] + PAD / 2 + (j + 1) * LINE - 5:.0f}"'
                       f'{weight}{colour}>{escape(text)}</text>')
        out.append("</g>")
    out += labels  # last, so no line is drawn over a label
    if hidden:
        out.append(f'<text x="20" y="{canvas_h - 10:.0f}" fill="#c62828">… and {hidden:,} more steps '
                   f'(too many to draw here: use --format dot or svg)</text>')
    out.append("</svg>")
    return "\n".join(out)
