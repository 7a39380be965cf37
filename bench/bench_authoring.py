"""Authoring tools on big flows: load + validate + lint + graph of a generated flow.

    .venv/bin/python bench/bench_authoring.py            # 1,000 and 10,000 steps
    .venv/bin/python bench/bench_authoring.py --sizes 1000 2000 4000

The flow is a long chain (menu, say and set steps in turn, a hold and a transfer every 25 steps,
each menu also offering the way back to the first one), so any check that walks the chain once per step
shows up as quadratic growth. Targets (issue 10): 1,000 steps under 1 s in total, 10,000 under
10 s, and a 10k/1k ratio near 10 (linear). Writes bench/results/authoring.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.etiquette.lint import lint_flow  # noqa: E402
from ivr.etiquette.lint.run import no_cyclic_gc  # noqa: E402
from ivr.flow import graph  # noqa: E402
from ivr.flow.load import load_flow_text  # noqa: E402

HEAD = """name: big_{n}
language: cmn-CN
variables: {{org: 华夏示范银行, agent: 客服专员小王}}
start: greeting
offers: {{call_back: call_back, leave_message: message}}
steps:
  greeting:
    say: 您好,欢迎致电{{org}}客户服务热线,{{agent}}很高兴为您服务,请问有什么可以帮助您?
    next: s0
  call_back:
    callback:
      say: 好的,我们已为您登记回电,正常情况下会在三十分钟内给您回电。
    next: farewell
  message:
    record:
      prompt: 请在提示音后留言,说完请按井号键。
      reply_promise: 我们会在一个工作日内给您回复。
    next: farewell
  farewell:
    goodbye: 感谢您的来电,再见!
"""


def step(i: int, n: int) -> str:
    nxt = f"s{i + 1}" if i + 1 < n else "farewell"
    kind = 2 if i % 25 == 12 else 3 if i % 25 == 24 else (0, 1, 4)[i % 3]
    if kind == 0:
        return (f"  s{i}:\n    menu:\n      prompt: 第{i}项服务请按1,返回请按2。\n      options:\n"
                f"        - {{keys: \"1\", words: [继续], go: {nxt}}}\n"
                f"        - {{keys: \"2\", words: [返回], go: s0}}\n")
    if kind == 1:
        return f"  s{i}:\n    say: 好的,请您留意以下信息,第{i}项。\n    next: {nxt}\n"
    if kind == 2:
        return (f"  s{i}:\n    hold:\n      reason: 我需要为您查询一下账户信息,大约需要一分钟,\n"
                f"      ask: 麻烦您稍等一下好吗?\n      limit: 1m\n      if_declined: {nxt}\n      if_limit: {nxt}\n"
                f"    next: {nxt}\n")
    if kind == 3:
        return (f"  s{i}:\n    transfer:\n      to: \"+861095500001\"\n      reason: 为了更好地为您服务,我需要为您转接人工客服,\n"
                f"      ask: 请问可以吗?\n      ring_limit: 30s\n      whisper: 客户来电,来电号码{{caller}}。\n"
                f"      if_unanswered: {nxt}\n    next: {nxt}\n")
    return f"  s{i}:\n    set: {{item: \"{i}\"}}\n    next: {nxt}\n"


def generate(n: int) -> str:
    return HEAD.format(n=n) + "".join(step(i, n) for i in range(n))


def measure(n: int) -> dict:
    text = generate(n)
    with no_cyclic_gc():  # as `ivr validate`, `ivr lint` and `ivr graph` run
        return _measure(n, text)


def _measure(n: int, text: str) -> dict:
    t0 = time.perf_counter()
    loaded = load_flow_text(text, f"big_{n}.yaml")   # load + validate (types, targets, reachability)
    t1 = time.perf_counter()
    findings = lint_flow(loaded)
    t2 = time.perf_counter()
    dot = graph.to_dot(loaded)
    mermaid = graph.to_mermaid(loaded)
    t3 = time.perf_counter()
    return {"steps": n, "load_validate_s": round(t1 - t0, 3), "lint_s": round(t2 - t1, 3),
            "graph_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3), "findings": len(findings),
            "graph_chars": len(dot) + len(mermaid)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "authoring.json"))
    args = parser.parse_args(argv)
    measure(50)  # warm up imports and caches
    rows = []
    print(f"{'steps':>7} {'load+validate':>14} {'lint':>8} {'graph':>8} {'total':>8} {'findings':>9}")
    for n in args.sizes:
        r = measure(n)
        rows.append(r)
        print(f"{n:>7} {r['load_validate_s']:>13.3f}s {r['lint_s']:>7.3f}s {r['graph_s']:>7.3f}s "
              f"{r['total_s']:>7.3f}s {r['findings']:>9}")
    result = {"python": platform.python_version(), "machine": platform.machine(),
              "yaml_parser": "libyaml (ivr/flow/source.py's _FastLoader)", "runs": rows}
    if len(rows) >= 2:
        ratio = rows[-1]["total_s"] / rows[0]["total_s"]
        size_ratio = rows[-1]["steps"] / rows[0]["steps"]
        result["ratio"] = {"time": round(ratio, 2), "size": size_ratio}
        print(f"time {rows[-1]['steps']}/{rows[0]['steps']} steps: {ratio:.2f}x for {size_ratio:g}x the steps "
              f"({'linear' if ratio <= size_ratio * 1.3 else 'FASTER THAN LINEAR GROWTH'})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
