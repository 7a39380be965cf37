"""Which flow answers a call, and the exact flow version each call pinned.

New calls get the current text of their flow: a file edited on disk is
reloaded on the next new call if it still validates (an invalid edit is
logged and the last good version keeps serving). Calls in progress keep the
version they started with: it is kept in the store by content hash, so any
worker, even after a restart, runs a call on the text it began with.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from ivr.engine.engine import Engine
from ivr.flow import FlowError, load_flow, load_flow_text
from ivr.flow.load import flows_in
from ivr.store import CallStore

log = logging.getLogger("ivr.flows")


class FlowRegistry:
    def __init__(self, paths: list[str | Path], store: CallStore):
        self.store = store
        self.paths = [Path(p) for p in paths]
        self._lock = threading.Lock()
        self._current: dict[str, Engine] = {}  # flow name -> engine of its current version
        self._mtimes: dict[Path, float] = {}
        self._by_version: dict[str, Engine] = {}
        problems = []
        for path in self.paths:
            try:
                self._load(path)
            except FlowError as exc:
                problems += exc.problems
        if problems:
            raise FlowError(problems)
        if not self._current:
            raise FlowError([])

    @classmethod
    def from_dir(cls, directory: str | Path, store: CallStore) -> "FlowRegistry":
        return cls(flows_in(directory), store)

    def _load(self, path: Path) -> Engine:
        loaded = load_flow(path)
        engine = Engine(loaded)
        self.store.put_flow(loaded.version, loaded.flow.name, str(path), loaded.source.text)
        with self._lock:
            self._current[loaded.flow.name] = engine
            self._by_version[loaded.version] = engine
            self._mtimes[path] = path.stat().st_mtime
        return engine

    def refresh(self) -> None:
        """Pick up edited flow files for new calls; keep the old version if the edit is broken."""
        for path in self.paths:
            try:
                changed = path.stat().st_mtime != self._mtimes.get(path)
            except OSError:
                continue
            if changed:
                try:
                    engine = self._load(path)
                    log.info("flow %s reloaded from %s (version %s)", engine.flow.name, path, engine.loaded.version)
                except FlowError as exc:
                    self._mtimes[path] = path.stat().st_mtime
                    log.error("edited flow %s is invalid; still serving the last good version:\n%s", path, exc)

    @property
    def default(self) -> Engine:
        return next(iter(self._current.values()))

    def names(self) -> list[str]:
        return list(self._current)

    def for_new_call(self, name: str | None = None, called: str = "") -> Engine | None:
        self.refresh()
        if name:
            return self._current.get(name)
        for engine in self._current.values():
            if called and called in engine.flow.numbers:
                return engine
        return self.default

    def for_version(self, version: str) -> Engine | None:
        """The engine of the exact flow text a call pinned, from memory or the store."""
        engine = self._by_version.get(version)
        if engine is None:
            row = self.store.get_flow(version)
            if row is None:
                return None
            engine = Engine(load_flow_text(row["text"], row["path"]))
            with self._lock:
                self._by_version[version] = engine
        return engine
