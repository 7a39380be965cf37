"""Load + validate time of generated flows of growing size (issue 10): it must grow linearly.

Each generated flow repeats a block of a menu, a say, a set, a branch, a hold and a transfer
(so every check runs: templates, menus, offers, the turn walk), with a listening step at least
every few steps. Prints ms per flow and per step, and the ratio 10k/1k (10.0x = linear).

    .venv/bin/python bench/bench_authoring_load.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.flow import load_flow_text  # noqa: E402

HEAD = """\
name: bench
language: cmn-CN
variables: {org: 示范银行, who: ""}
start: s0_menu
offers: {call_back: cb, leave_message: msg}
steps:
  cb:
    callback: {say: "好的,我们会给您回电。"}
    next: bye
  msg:
    record: {prompt: 请在提示音后留言。}
    next: bye
  bye:
    goodbye: 感谢您的来电,再见!
"""

BLOCK = """\
  s{i}_menu:
    menu:
      prompt: "{{org}}: 查询请按1,转人工请按2。"
      options:
        - {{keys: "1", words: [查询, 余额], go: s{i}_say}}
        - {{keys: "2", words: [人工], go: s{i}_agent}}
        - {{keys: "3", words: [结束], go: bye}}
  s{i}_say:
    say: "{{who}}您好,正在为您查询。"
    next: s{i}_set
  s{i}_set:
    set: {{who: "{{org}}客户"}}
    next: s{i}_branch
  s{i}_branch:
    branch: {{variable: who, cases: {{"": s{i}_hold}}, otherwise: s{i}_hold}}
  s{i}_hold:
    hold: {{reason: "我需要为您查询一下账户信息。", ask: "麻烦您稍等一下好吗?", limit: 1m, queue: q}}
    next: {next}
  s{i}_agent:
    transfer: {{to: "+861095500001", reason: "需要为您转接人工客服。", ask: "请问可以吗?", ring_limit: 30s}}
    next: {next}
"""
PER_BLOCK = 6


def flow(steps: int) -> str:
    blocks = max(1, steps // PER_BLOCK)
    return HEAD + "".join(BLOCK.format(i=i, next=f"s{i + 1}_menu" if i + 1 < blocks else "bye")
                          for i in range(blocks))


def timed(text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        load_flow_text(text, "bench.yaml")
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    results = {}
    print(f"{'steps':>7} {'KB':>7} {'load+validate s':>16} {'µs/step':>9}")
    for steps in (100, 1000, 10000):
        text = flow(steps)
        n = len(load_flow_text(text, "bench.yaml").flow.steps)
        seconds = timed(text, 5 if steps < 10000 else 2)
        results[steps] = seconds
        print(f"{n:>7} {len(text.encode()) / 1024:>7.0f} {seconds:>16.3f} {seconds / n * 1e6:>9.1f}")
    print(f"10k / 1k: {results[10000] / results[1000]:.2f}x (10.00x = linear)")


if __name__ == "__main__":
    main()
