"""`ivr graph`: every step is a node and every way out of it an edge with the right label,
in Mermaid and DOT; labels are escaped for each format; the CLI fails like the others."""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from ivr import cli
from ivr.flow import graph
from ivr.flow.load import LADDERS, load_flow, step_targets

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [ROOT / "call_flows" / "bank_hotline.yaml", ROOT / "call_flows" / "bank_hotline_en.yaml"]
HAS_DOT = shutil.which("dot") is not None
NO_DOT = "Graphviz `dot` is not installed (apt-get install graphviz)"

QUIRKY = r"""
name: quirky
language: en-US
start: hello
offers: {call_back: cb, leave_message: msg}
steps:
  hello:
    say: '"hi" [x] <b>y</b> & #1 | `q`'  # under 30 characters: shown whole
    next: menu
  menu:
    menu:
      prompt: 'Press 1 for "yes" [really]'
      options:
        - {keys: "1", words: ['say "yes"', '[ok] \ fine'], go: wait}
        - {keys: "#", go: bye}
    etiquette:
      silence: {then: bye}
  wait:
    hold: {reason: 'A "short" wait', ask: 'OK?', limit: 90s}
    next: bye
  cb: {callback: {say: 'We call <you> back'}, next: bye}
  msg: {record: {prompt: 'Speak [now]'}, next: bye}
  bye: {goodbye: 'Bye "now"'}
"""


@pytest.fixture
def quirky(tmp_path) -> Path:
    path = tmp_path / "quirky.yaml"
    path.write_text(QUIRKY, encoding="utf-8")
    return path


# --- reading the output back --------------------------------------------------

def parse_mermaid(text: str):
    nodes = dict(re.findall(r'^\s+(\w+)\["<b>(.*?)</b>', text, re.M))  # id -> step name
    edges = [(src, dst, label, arrow == "-.->") for src, arrow, label, dst
             in re.findall(r'^\s+(\w+) (-->|-\.->)(?:\|"(.*?)"\|)? (\w+)$', text, re.M)]
    return nodes, edges


def parse_dot(text: str):
    nodes = dict(re.findall(r"^\s+(\w+) \[label=<<b>(.*?)</b>", text, re.M))
    edges = [(src, dst, html.unescape(label).strip(), "style=dashed" in rest)
             for src, dst, label, rest
             in re.findall(r'^\s+(\w+) -> (\w+)(?: \[label=<<table[^>]*><tr><td>(.*?)</td></tr></table>>)?(.*);$',
                           text, re.M)]
    return nodes, edges


PARSERS = {"mermaid": (graph.to_mermaid, parse_mermaid), "dot": (graph.to_dot, parse_dot)}


def expected_label(flow, step, path: tuple) -> str:
    """A fragment the label of the edge for one `step_targets` entry must contain."""
    consent = (step.etiquette or flow.etiquette).consent
    if path == ("next",):
        return f"yes ({consent.yes_keys})" if step.kind in ("hold", "transfer") else ""
    if path[0] == "menu":
        option = step.menu.options[path[2]]
        return option.keys or option.words[0]
    if path[-1] == "if_declined":
        return f"no ({consent.no_keys})"
    if path[:2] == ("branch", "cases"):
        return path[2] or "empty"
    if path == ("branch", "otherwise"):
        return "otherwise"
    if path[0] == "etiquette":
        return "then"
    raise AssertionError(f"no expectation for {path}")


def has_edge(edges, names, src: str, dst: str, fragment: str, dashed: bool = False) -> bool:
    return any(names.get(s, s) == src and names.get(d, d) == dst and fragment in label and bool(label) and dash == dashed
               for s, d, label, dash in edges)


def test_hold_and_ring_limits_and_special_nodes():
    text = graph.to_mermaid(load_flow(SHIPPED[1]))
    assert "waits ≤ 1m, check-in every 30s" in text
    assert "rings ≤ 30s" in text
    assert text.count("hang up after the script (E2/E3/E5)") == 1
    assert text.count("caller hangs up first (E11)") == 1


@pytest.mark.parametrize("fmt", PARSERS)
@pytest.mark.parametrize("path", SHIPPED + ["quirky"], ids=lambda p: getattr(p, "stem", p))
def test_every_step_and_every_way_out(fmt, path, quirky):
    loaded = load_flow(quirky if path == "quirky" else path)
    flow = loaded.flow
    render, parse = PARSERS[fmt]
    nodes, edges = parse(render(loaded))
    names = {i: html.unescape(n) if fmt == "dot" else n for i, n in nodes.items()}
    assert sorted(names.values()) == sorted(flow.steps)
    assert len(set(names.values())) == len(names)
    assert any(s == graph.START and names.get(d) == flow.start for s, d, _, _ in edges)
    for name, step in flow.steps.items():
        for where, dest in step_targets(step, flow):
            assert has_edge(edges, names, name, dest, expected_label(flow, step, where)), (name, where, dest)
        if step.kind == "hold":
            assert has_edge(edges, names, name, flow.offers.call_back, "at limit")
            assert has_edge(edges, names, name, flow.offers.leave_message, "at limit")
        if step.kind == "transfer":
            assert has_edge(edges, names, name, flow.offers.call_back, "no answer")
            assert has_edge(edges, names, name, flow.offers.leave_message, "no answer")
        ladders_end_call = any(getattr(step.etiquette or flow.etiquette, ladder).then is None for ladder in LADDERS)
        listens = step.kind in ("menu", "hold", "transfer")
        assert has_edge(edges, names, name, graph.HANG_UP, "after the retries", dashed=True) == (
            listens and ladders_end_call), name
        assert has_edge(edges, names, name, graph.CALLER_HANGS_UP, "wait", dashed=True) == (step.kind == "goodbye")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_mandarin_and_english_text_stay_readable(path):
    loaded = load_flow(path)
    says = [" ".join(s.say.split())[:12] for s in loaded.flow.steps.values() if s.say]
    assert says
    for text in (graph.to_mermaid(loaded), graph.to_dot(loaded)):
        for start in says:
            assert start in text


def test_mermaid_escapes_quotes_and_markup(quirky):
    text = graph.to_mermaid(load_flow(quirky))
    for line in text.splitlines():
        if re.match(r"^\s+\w+[\[(]", line) or "-->" in line or "-.->" in line:
            assert line.count('"') in (0, 2), line  # one quoted label, nothing inside breaks out
            body = re.sub(r"</?b>|<br/>", "", line)
            assert "<" not in body.split('"', 1)[-1], line
    assert "#quot;hi#quot; [x] #lt;b#gt;y#lt;/b#gt; #amp; #35;1 #124; #96;q#96;" in text
    assert '|"1 / say #quot;yes#quot;, [ok] \\ fine"|' in text
    assert '|"#35;"|' in text


def test_dot_escapes_quotes_and_markup(quirky):
    text = graph.to_dot(load_flow(quirky))
    assert "&quot;hi&quot; [x] &lt;b&gt;y&lt;/b&gt; &amp; #1 | `q`" in text
    assert "<td>1 / say &quot;yes&quot;, [ok] \\ fine</td>" in text


@pytest.mark.skipif(not HAS_DOT, reason=NO_DOT)
@pytest.mark.parametrize("path", SHIPPED + ["quirky"], ids=lambda p: getattr(p, "stem", p))
def test_graphviz_accepts_the_dot(path, quirky):
    dot = graph.to_dot(load_flow(quirky if path == "quirky" else path))
    done = subprocess.run(["dot", "-Tsvg"], input=dot.encode("utf-8"), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Warning" not in done.stderr, done.stderr.decode()
    assert b"<svg" in done.stdout


@pytest.mark.skipif(not HAS_DOT, reason=NO_DOT)
def test_html_embeds_graphviz_svg():
    page = graph.to_html(load_flow(SHIPPED[0]))
    assert page.startswith("<!doctype html>") and "<svg" in page and "<?xml" not in page
    assert "<script" not in page and "<link" not in page and "<img" not in page


def test_html_without_graphviz_still_shows_a_picture(monkeypatch, quirky):
    monkeypatch.setattr(graph, "graphviz_available", lambda: False)
    loaded = load_flow(quirky)
    page = graph.to_html(loaded)
    assert page.count("<svg") == 1 and "<script" not in page and "<link" not in page and "<img" not in page
    svg = page[page.index("<svg"):page.index("</svg>") + 6]
    import xml.etree.ElementTree as ET
    root = ET.fromstring(svg)   # well-formed: every hostile label escaped
    texts = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for name in loaded.flow.steps:
        assert name in texts
    assert '"hi" [x] <b>y</b> & #1 | `q`' in texts
    assert "Noto Sans CJK SC" in root.get("font-family")
    assert "<pre>" in page and "flowchart TD" in page and "&lt;b&gt;" in page  # the Mermaid text too, escaped


def test_svg_without_graphviz_is_one_clear_line(monkeypatch, quirky, capsys):
    monkeypatch.setattr(graph, "graphviz_available", lambda: False)
    assert cli.cmd_graph(Namespace(flow=str(quirky), format="svg", out=None)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Graphviz" in err and "apt-get install graphviz" in err


def test_out_file_and_format_from_its_ending(tmp_path, quirky, capsys):
    out = tmp_path / "flow.dot"
    assert cli.cmd_graph(Namespace(flow=str(quirky), format=None, out=str(out))) == 0
    assert out.read_text(encoding="utf-8").startswith('digraph "quirky')
    assert "wrote" in capsys.readouterr().out


# --- through the CLI ------------------------------------------------------------

def ivr(*args, **env):
    return subprocess.run([sys.executable, "-m", "ivr.cli", "graph", *args], cwd=ROOT, capture_output=True,
                          text=True, encoding="utf-8", timeout=120, env={**os.environ, **env})


@pytest.fixture
def ivr_main(ivr):
    """`ivr ARGS...` in this process (tests/conftest.py); `ivr` here is the subprocess helper above."""
    return ivr


def test_cli_draws_the_shipped_flow():  # the one `ivr graph` run in a process of its own
    done = ivr("call_flows/bank_hotline.yaml")
    assert done.returncode == 0, done.stderr
    assert "flowchart TD" in done.stdout and "main_menu" in done.stdout


def test_cli_svg_without_graphviz(tmp_path, monkeypatch, ivr_main):
    monkeypatch.setenv("PATH", str(tmp_path))
    done = ivr_main("graph", "call_flows/bank_hotline.yaml", "--format", "svg")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "Graphviz" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_cli_broken_flow_says_file_and_line(tmp_path, quirky, ivr_main):
    broken = tmp_path / "broken.yaml"
    text = quirky.read_text(encoding="utf-8").replace("go: wait", "go: nowhere")
    broken.write_text(text, encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "nowhere" in row)
    done = ivr_main("graph", str(broken))
    assert done.returncode == 1
    assert f"{broken}:{line}:" in done.stderr and "nowhere" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_one_line_prompt_is_quoted_on_both_sides():
    from ivr.flow.graph import Node, heard_lines

    assert heard_lines(Node("s1", "bye", "goodbye", "", "Thank you. Goodbye.")) == ["“Thank you. Goodbye.”"]
