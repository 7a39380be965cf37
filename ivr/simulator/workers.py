"""Spreading in-process calls over worker processes (`ivr test --jobs`, `ivr replay --jobs`).

Each worker is its own process with its own apps (each flow loaded once per worker), so N workers
use N cores; results come back in the order the work was given, as if it ran here one by one.
"""
from __future__ import annotations

import multiprocessing
from typing import Callable, Iterable, Iterator, TypeVar

Chunk = TypeVar("Chunk")
Result = TypeVar("Result")


def chunked(items: list, jobs: int, largest: int = 50) -> list[list]:
    """`items` cut into chunks small enough to keep `jobs` workers busy to the end (4 per worker at least)."""
    size = max(1, min(largest, len(items) // (jobs * 4)))
    return [items[i:i + size] for i in range(0, len(items), size)]


def in_workers(work: Callable[[Chunk], Result], chunks: Iterable[Chunk], jobs: int) -> Iterator[Result]:
    """`work(chunk)` for each chunk in `jobs` worker processes, yielded in order. `work` must be a module-level
    function (it is sent to the workers by name).

    Not "fork": the calling process has threads (SQLite checkpoints, flow sync), and a child forked while
    one of them is inside SQLite inherits its locks held forever (seen: a worker hung in sqlite3.connect).
    A fork server forks the workers from a clean process of its own."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with context.Pool(jobs) as pool:
        yield from pool.imap(work, chunks)
