"""Which flow answers a call, and the exact flow version each call pinned.

The version NEW calls get is a fact in the store (`publish_flow`), not whatever file a worker
happened to read last: every worker on every host serves the same version (issue 12 item 9).

- A version is published only after it has been loaded and checked, off any request's path:
  `publish_file` (used by `ivr publish FLOW`, by `ivr serve` at start, and by the watcher of
  `ivr serve`, ivr.call.publish) validates the file, keeps its exact text in the store by content
  hash (`put_flow`) and publishes it. An invalid edit is logged and never published.
- Each worker process runs a daemon thread (started lazily, so it exists after gunicorn's fork)
  that reads `published_flows()` every SYNC_EVERY seconds and, when a version changed, builds its
  engine from the text in the store and swaps it in. So every worker agrees within a second, and a
  request never loads or stats a flow file (item 8: a hot-edited alias bomb once hung new calls on
  the request path for 31-40 s).
- Calls in progress keep the version they pinned: `for_version` finds it in memory or in the
  store by content hash, so any worker, even after a restart, runs a call on the text it began with.

`for_new_call` is a dictionary lookup: no I/O.
"""
from __future__ import annotations

import logging
import os
import threading
import weakref
from pathlib import Path

from ivr.engine.engine import Engine
from ivr.flow import FlowError, load_flow, load_flow_text
from ivr.flow.load import LoadedFlow, flows_in
from ivr.store import CallStore

log = logging.getLogger("ivr.flows")
SYNC_EVERY = 0.5  # seconds between two reads of the published versions (one small read)


def publish_file(store: CallStore, path: str | Path) -> LoadedFlow:
    """Load and check a flow file, keep its text in the store and make it the version new calls get.
    Raises FlowError (nothing published) when the file does not validate."""
    loaded = load_flow(path)
    store.put_flow(loaded.version, loaded.flow.name, str(path), loaded.source.text)
    store.publish_flow(loaded.flow.name, loaded.version)
    return loaded


def _sync_loop(ref: "weakref.ref[FlowRegistry]", stop: threading.Event, every: float) -> None:
    """Holds the registry only weakly: a registry (and its store) dropped by its app stops its thread."""
    while not stop.wait(every):
        registry = ref()
        if registry is None:
            return
        registry.sync()
        del registry


class FlowRegistry:
    def __init__(self, paths: list[str | Path], store: CallStore, publish: bool = True,
                 sync_every: float = SYNC_EVERY):
        """Load the given flow files (FlowError if any is invalid). With `publish` (a server starting:
        deploying is publishing) they become the versions new calls get; without, the store's published
        versions win and the files only fill in flows nobody published yet."""
        self.store, self.sync_every = store, sync_every
        self.paths = [Path(p) for p in paths]
        self._lock = threading.Lock()
        self._by_version: dict[str, Engine] = {}
        self._current: dict[str, Engine] = {}  # flow name -> engine of its published version
        self._syncing_pid: int | None = None
        self._stop = threading.Event()
        problems, loaded = [], []
        for path in self.paths:
            try:
                loaded.append(load_flow(path))
            except FlowError as exc:
                problems += exc.problems
        if problems:
            raise FlowError(problems)
        if not loaded:
            raise FlowError([])
        published = {} if publish else self.store.published_flows()
        for flow in loaded:
            engine = self._remember(Engine(flow))
            self.store.put_flow(flow.version, flow.flow.name, str(flow.path), flow.source.text)
            if publish or flow.flow.name not in published:
                self.store.publish_flow(flow.flow.name, flow.version)
            self._current[flow.flow.name] = engine  # configured order: the first answers unmatched numbers
        self.sync()

    @classmethod
    def from_dir(cls, directory: str | Path, store: CallStore, **options) -> "FlowRegistry":
        return cls(flows_in(directory), store, **options)

    def _remember(self, engine: Engine) -> Engine:
        return self._by_version.setdefault(engine.loaded.version, engine)  # atomic under the GIL

    # --- off the request path -------------------------------------------------------
    def sync(self) -> bool:
        """Adopt the versions published in the store (one read; a changed version's engine is built from
        the text kept in the store). True if anything changed. Never raises: a store or flow problem is
        logged and the versions in use stay."""
        try:
            published = self.store.published_flows()
        except Exception as exc:  # noqa: BLE001 - the store may be down: keep serving what we have
            log.warning("could not read the published flow versions: %s", exc)
            return False
        current, changed = dict(self._current), False
        for name, version in published.items():
            engine = current.get(name)
            if engine is not None and engine.loaded.version == version:
                continue
            try:
                new = self.for_version(version)
            except Exception as exc:  # noqa: BLE001 - keep the version in use
                log.error("flow %s version %s is published but cannot be loaded (%s); new calls keep %s",
                          name, version, exc, engine.loaded.version if engine else "nothing")
                continue
            if new is None:
                log.error("flow %s version %s is published but its text is not in the store", name, version)
                continue
            current[name], changed = new, True
            log.info("new calls of flow %s now get version %s", name, version)
        if changed:
            self._current = current  # one assignment: readers see the old or the new dict, never a mix
        return changed

    def start_syncing(self) -> None:
        """One sync thread per process (a thread started before gunicorn forks would not exist in the
        workers). The process first syncs once itself, so a worker forked (or re-spawned) long after the
        registry was built never serves a version from before. `ivr serve` calls this in each worker
        right after the fork; other servers get it on the first new call."""
        if self._syncing_pid == os.getpid() or self.sync_every <= 0:
            return
        with self._lock:
            if self._syncing_pid == os.getpid():
                return
            self.sync()
            self._syncing_pid = os.getpid()
            threading.Thread(target=_sync_loop, args=(weakref.ref(self), self._stop, self.sync_every),
                             name="ivr-flow-sync", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    # --- on the request path: lookups only ---------------------------------------------
    @property
    def default(self) -> Engine:
        return next(iter(self._current.values()))

    def names(self) -> list[str]:
        return list(self._current)

    def for_new_call(self, name: str | None = None, called: str = "") -> Engine | None:
        self.start_syncing()
        current = self._current
        if name:
            return current.get(name)
        for engine in current.values():
            if called and called in engine.flow.numbers:
                return engine
        return next(iter(current.values()))

    def for_version(self, version: str) -> Engine | None:
        """The engine of the exact flow text a call pinned, from memory or the store."""
        engine = self._by_version.get(version)
        if engine is None:
            row = self.store.get_flow(version)
            if row is None:
                return None
            engine = self._remember(Engine(load_flow_text(row["text"], row["path"])))
        return engine
