"""SQLite store: the default, one file shared by every thread and worker process on one host.

WAL mode lets readers proceed while one writer commits; busy_timeout makes a writer wait
for the lock instead of failing at once. Each thread (and each process, after a fork) opens
its own connection: sqlite3 connections must not be shared across either.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager

from ivr.store.base import CallStore, StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_sid   TEXT PRIMARY KEY,
    flow       TEXT NOT NULL,
    turn       INTEGER NOT NULL,      -- mirrors state["turn"], so advance is one UPDATE
    state      TEXT NOT NULL,         -- JSON
    started_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at);
CREATE TABLE IF NOT EXISTS responses (
    call_sid TEXT NOT NULL,
    turn     INTEGER NOT NULL,
    twiml    TEXT NOT NULL,
    PRIMARY KEY (call_sid, turn)
);
CREATE TABLE IF NOT EXISTS log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    call_sid TEXT NOT NULL,
    t        REAL NOT NULL,
    entry    TEXT NOT NULL            -- JSON, includes "t"
);
CREATE INDEX IF NOT EXISTS log_call_sid ON log (call_sid);
CREATE TABLE IF NOT EXISTS flows (
    version TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    path    TEXT NOT NULL,
    text    TEXT NOT NULL
);
"""


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


class SqliteStore(CallStore):
    def __init__(self, path: str, busy_timeout_ms: int = 5000):
        self.path = os.path.abspath(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[tuple[int, sqlite3.Connection]] = []   # (pid, connection) opened, for close()
        self._all_lock = threading.Lock()
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the directory for SQLite store {self.path}: {e}; "
                             "choose a writable location with --store sqlite:///path/calls.db") from e
        # Fails here, at startup, if the file is unusable. Not inside BEGIN: executescript
        # commits any open transaction first; each CREATE ... IF NOT EXISTS is atomic anyway.
        with self._tx(write=False) as db:
            db.executescript(SCHEMA)

    # --- connections and transactions -----------------------------------------
    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():   # first use in this thread, or we were forked
            # isolation_level=None: no implicit transactions; we issue BEGIN IMMEDIATE ourselves.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")   # persistent: stored in the file
            conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL, much faster commits
            local.conn, local.pid = conn, os.getpid()
            with self._all_lock:
                self._all.append((local.pid, conn))
        return local.conn

    @contextmanager
    def _tx(self, write: bool = True):
        """One transaction; BEGIN IMMEDIATE takes the write lock up front, so two writers never
        both read and then deadlock on upgrading. sqlite3 errors become StoreError."""
        try:
            db = self._conn()
            if not write:
                yield db
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:   # some errors (disk full, ...) have rolled back already
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StoreError(f"SQLite store {self.path}: {e}; check the file and its directory are "
                             "writable and not on a network filesystem, or pass --store "
                             "sqlite:///other/path.db") from e

    def _loads(self, text: str, what: str):
        try:
            return json.loads(text)
        except (TypeError, ValueError) as e:
            raise StoreError(f"corrupt {what} in SQLite store {self.path}: {e}; "
                             "the row is not valid JSON (edited by hand or truncated?)") from e

    def close(self) -> None:
        # Close only this process's connections. One inherited through fork must never be
        # closed (nor garbage-collected) here: closing may checkpoint the parent's WAL.
        with self._all_lock:
            for pid, conn in self._all:
                if pid == os.getpid():
                    conn.close()
            self._all = [(pid, conn) for pid, conn in self._all if pid != os.getpid()]
        self._local = threading.local()

    # --- call state -------------------------------------------------------------
    def create_call(self, call_sid, state, response):
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO calls (call_sid, flow, turn, state, started_at) VALUES (?, ?, ?, ?, ?)",
                (call_sid, state.get("flow", ""), state.get("turn", 0), _dumps(state), self.now()))
            if cur.rowcount == 0:
                return False
            db.execute("INSERT OR REPLACE INTO responses (call_sid, turn, twiml) VALUES (?, 0, ?)",
                       (call_sid, response))
            return True

    def get_call(self, call_sid):
        with self._tx(write=False) as db:
            row = db.execute("SELECT state FROM calls WHERE call_sid = ?", (call_sid,)).fetchone()
        return self._loads(row[0], f"state of call {call_sid}") if row else None

    def advance(self, call_sid, expected_turn, state, response):
        with self._tx() as db:
            cur = db.execute("UPDATE calls SET state = ?, turn = ? WHERE call_sid = ? AND turn = ?",
                             (_dumps(state), state.get("turn", 0), call_sid, expected_turn))
            if cur.rowcount == 0:
                return False
            db.execute("INSERT OR REPLACE INTO responses (call_sid, turn, twiml) VALUES (?, ?, ?)",
                       (call_sid, expected_turn + 1, response))
            return True

    def response_for(self, call_sid, turn):
        with self._tx(write=False) as db:
            row = db.execute("SELECT twiml FROM responses WHERE call_sid = ? AND turn = ?",
                             (call_sid, turn)).fetchone()
        return row[0] if row else None

    # --- call log ---------------------------------------------------------------
    def append_log(self, call_sid, entry):
        entry = {"t": self.now(), **entry}
        with self._tx() as db:
            db.execute("INSERT INTO log (call_sid, t, entry) VALUES (?, ?, ?)",
                       (call_sid, entry["t"], _dumps(entry)))

    def call_log(self, call_sid):
        with self._tx(write=False) as db:
            rows = db.execute("SELECT id, entry FROM log WHERE call_sid = ? ORDER BY id", (call_sid,)).fetchall()
        return [self._loads(text, f"log entry {id_} of call {call_sid}") for id_, text in rows]

    def list_calls(self, since=None):
        with self._tx(write=False) as db:
            rows = db.execute("SELECT call_sid, flow, started_at FROM calls WHERE started_at >= ? "
                              "ORDER BY started_at, rowid", (since if since is not None else float("-inf"),))
            return [{"call_sid": sid, "flow": flow, "started_at": t} for sid, flow, t in rows]

    # --- flow texts ---------------------------------------------------------------
    def put_flow(self, version, name, path, text):
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO flows (version, name, path, text) VALUES (?, ?, ?, ?)",
                       (version, name, path, text))

    def get_flow(self, version):
        with self._tx(write=False) as db:
            row = db.execute("SELECT version, name, path, text FROM flows WHERE version = ?", (version,)).fetchone()
        return dict(zip(("version", "name", "path", "text"), row)) if row else None
