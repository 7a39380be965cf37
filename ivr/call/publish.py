"""`ivr publish FLOW...`: make checked flow files the versions new calls get, on every worker and host;
and the watcher `ivr serve` runs to do the same for files edited while it serves.

A version is published only if its file loads and validates; an invalid edit is reported (file:line,
what is wrong) and new calls keep the version published before. Workers pick a published version up
within a second (ivr.call.registry), never on a request's path.

The watcher polls the flow files' modification times (and the folder's list of flows with
--flows-dir) once a second. With a store other processes can reach (SQLite, Redis) it validates and
publishes in a child process, `ivr publish`, bounded in time and memory, so a pathological edit can
never stall or bloat the server; with the in-process memory store it publishes in its own thread.
"""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from ivr.call.every import Every
from ivr.call.registry import publish_file
from ivr.flow import FlowError
from ivr.flow.load import flows_in
from ivr.store import CallStore, open_store

log = logging.getLogger("ivr.flows")
PUBLISH_TIMEOUT = 30.0  # seconds a child `ivr publish` may take before the edit counts as invalid
CHILD_MEMORY = 1024 * 1024 * 1024  # address space of a child `ivr publish`, in bytes


def add_arguments(parser) -> None:
    parser.add_argument("flows", nargs="+", metavar="FLOW", help="flow files or folders of flows")
    parser.add_argument("--store", default="sqlite:///calls.db", help="sqlite:///calls.db | redis://host:6379/0")


def run(args) -> int:
    from ivr.cli import flow_paths

    store, failed = open_store(args.store), 0
    for path in flow_paths(args.flows):
        try:
            loaded = publish_file(store, path)
        except FlowError as exc:
            failed += 1
            print(exc, file=sys.stderr)
            print(f"not published: {path}; new calls keep the version published before", file=sys.stderr)
            continue
        print(f"published {path}: flow '{loaded.flow.name}' version {loaded.version} for new calls")
    return 1 if failed else 0


def _limit_child_memory() -> None:  # runs in the child before exec
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
    except (ImportError, ValueError, OSError):
        pass


class FlowWatcher:
    """Publishes flow files edited on disk (valid ones only), from a daemon thread."""

    def __init__(self, store: CallStore, store_url: str | None, paths: list[Path] | None = None,
                 directory: str | Path | None = None, every: float = 1.0):
        self.store, self.store_url, self.every = store, store_url, every
        self.paths, self.directory = [Path(p) for p in paths or []], Path(directory) if directory else None
        self._seen = {path: self._mtime(path) for path in self._files()}
        self._every: Every | None = None

    def _files(self) -> list[Path]:
        return flows_in(self.directory) if self.directory else list(self.paths)

    @staticmethod
    def _mtime(path: Path):
        try:
            stat = path.stat()
            return stat.st_mtime_ns, stat.st_size
        except OSError:
            return None

    def start(self) -> "FlowWatcher":
        self._every = Every("ivr-flow-watcher", self.every, self.check).start()
        return self

    def stop(self) -> None:
        if self._every is not None:
            self._every.stop()

    def check(self) -> list[Path]:
        """Publish what changed since the last look; the files it tried."""
        tried = []
        for path in self._files():
            mtime = self._mtime(path)
            if mtime is None or mtime == self._seen.get(path):
                continue
            self._seen[path] = mtime
            tried.append(path)
            self.publish(path)
        return tried

    def publish(self, path: Path) -> bool:
        if self.store_url and not self.store_url.startswith("memory:"):
            command = [sys.executable, "-m", "ivr.cli", "publish", str(path), "--store", self.store_url]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=PUBLISH_TIMEOUT,
                                      preexec_fn=_limit_child_memory)
            except subprocess.TimeoutExpired:
                log.error("edited flow %s took over %.0f s to load: not published; new calls keep the version "
                          "published before", path, PUBLISH_TIMEOUT)
                return False
            if done.returncode == 0:
                log.info("%s", done.stdout.strip())
                return True
            log.error("edited flow %s is invalid: not published; new calls keep the version published before:\n%s",
                      path, (done.stderr or done.stdout).strip()[-4000:] or f"exit status {done.returncode}")
            return False
        try:
            loaded = publish_file(self.store, path)
        except FlowError as exc:
            log.error("edited flow %s is invalid: not published; new calls keep the version published before:\n%s",
                      path, exc)
            return False
        log.info("published %s: flow '%s' version %s for new calls", path, loaded.flow.name, loaded.version)
        return True
