"""SQLite store: the default, one file shared by every thread and worker process on one host.

WAL mode lets readers proceed while one writer commits; busy_timeout makes a writer wait
for the lock instead of failing at once. Each thread (and each process, after a fork) opens
its own connection: sqlite3 connections must not be shared across either.

Per webhook: `load` is one SELECT (outside any transaction); `commit` is
BEGIN IMMEDIATE, one UPDATE of the calls row (compare-and-set on `turn`, the state,
the answer moved to `prev_answer` and the new one into `answer`), one executemany
INSERT of the log entries, COMMIT. Answers live in the calls row, so a call holds
the answers of its last two turns and no more.

WAL checkpoints run outside requests: request connections set wal_autocheckpoint=0,
and a daemon thread per process (started lazily, so in each gunicorn worker after the
fork) runs `PRAGMA wal_checkpoint(PASSIVE)` every `checkpoint_every` seconds. With
checkpoint_every=0 there is no thread and the server must call `checkpoint()` itself.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import weakref
from contextlib import contextmanager

from ivr.store import guard
from ivr.store.base import (LINE_WINDOWS_KEPT, CallStore, StoreError, StoreUnavailable, StoredCall, check_commit,
                             check_ended, check_update, stamp)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_sid    TEXT PRIMARY KEY,
    flow        TEXT NOT NULL,
    turn        INTEGER NOT NULL,      -- mirrors state["turn"], so commit is one UPDATE
    state       TEXT NOT NULL,         -- JSON
    started_at  REAL NOT NULL,
    answer      TEXT,                  -- TwiML answered when the call reached `turn`
    prev_answer TEXT,                  -- ... and when it reached `turn - 1`
    touched_at  REAL,                  -- last start/commit/end_call, for stale_calls
    ended       INTEGER NOT NULL DEFAULT 0   -- mirrors state["ended"]
);
CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at);
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
CREATE TABLE IF NOT EXISTS lines (     -- the line verdict per listening window (issue 11)
    call_sid TEXT NOT NULL,
    window   INTEGER NOT NULL,
    report   TEXT NOT NULL,           -- JSON
    PRIMARY KEY (call_sid, window)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS published (
    name    TEXT PRIMARY KEY,
    version TEXT NOT NULL
);
"""
# After MIGRATE: needs the columns an old file may lack. Only calls in progress are indexed.
INDEXES = "CREATE INDEX IF NOT EXISTS calls_live ON calls (touched_at) WHERE ended = 0;"

# Columns added since the first schema (calls.db files of earlier versions lack them).
NEW_COLUMNS = {"answer": "TEXT", "prev_answer": "TEXT", "touched_at": "REAL",
               "ended": "INTEGER NOT NULL DEFAULT 0"}

INSERT_LOG = "INSERT INTO log (call_sid, t, entry) VALUES (?, ?, ?)"


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _checkpoint_loop(path: str, stop: threading.Event, every: float) -> None:
    """Checkpoint the WAL into the database now and then, off the request path.
    PASSIVE never waits for readers or writers: it copies what it can and returns."""
    conn = None
    try:
        while not stop.wait(every):
            try:
                if conn is None:
                    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as e:   # e.g. the disk is full: try again next time
                log.warning("WAL checkpoint of SQLite store %s failed: %s", path, e)
    finally:
        if conn is not None:
            conn.close()


class SqliteStore(CallStore):
    def __init__(self, path: str, busy_timeout_ms: int = 5000, checkpoint_every: float = 1.0):
        self.path = os.path.abspath(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.checkpoint_every = checkpoint_every
        self._local = threading.local()
        self._all: list[tuple[int, sqlite3.Connection]] = []   # (pid, connection) opened, for close()
        self._all_lock = threading.Lock()
        self._checkpointer: tuple[int, threading.Event, threading.Thread] | None = None
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the directory for SQLite store {self.path}: {e}; "
                             "choose a writable location with --store sqlite:///path/calls.db") from e
        # Fails here, at startup, if the file is unusable. Not inside BEGIN: executescript
        # commits any open transaction first; each CREATE ... IF NOT EXISTS is atomic anyway.
        with self._tx(write=False) as db:
            db.executescript(SCHEMA)
        self._migrate()
        with self._tx(write=False) as db:
            db.executescript(INDEXES)

    def _migrate(self) -> None:
        """Bring a calls.db of an earlier version up to date, in one transaction (re-checked
        inside it, so workers starting together migrate once): add the new columns, fill
        touched_at/ended from the rows, and move the kept answers from the old responses table."""
        def missing(db):
            have = {row[1] for row in db.execute("PRAGMA table_info(calls)")}
            return [name for name in NEW_COLUMNS if name not in have]

        with self._tx(write=False) as db:
            if not missing(db):
                return
        with self._tx() as db:
            todo = missing(db)
            for name in todo:
                db.execute(f"ALTER TABLE calls ADD COLUMN {name} {NEW_COLUMNS[name]}")
            if "touched_at" in todo:
                db.execute("UPDATE calls SET touched_at = started_at")
            if "ended" in todo:
                db.execute("UPDATE calls SET ended = coalesce(json_extract(state, '$.ended'), 0) != 0 "
                           "WHERE json_valid(state)")
            if "answer" in todo and db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'responses'").fetchone():
                # The old table stays (read by nothing now) so an older version still running keeps working.
                db.execute("UPDATE calls SET "
                           "answer = (SELECT twiml FROM responses r WHERE r.call_sid = calls.call_sid "
                           "AND r.turn = calls.turn), "
                           "prev_answer = (SELECT twiml FROM responses r WHERE r.call_sid = calls.call_sid "
                           "AND r.turn = calls.turn - 1)")
            log.info("SQLite store %s: added columns %s", self.path, ", ".join(todo))

    # --- connections and transactions -----------------------------------------
    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():   # first use in this thread, or we were forked
            # isolation_level=None: no implicit transactions; we issue BEGIN IMMEDIATE ourselves.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")   # persistent: stored in the file
            conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL, much faster commits
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # no checkpoint inside a request's COMMIT
            local.conn, local.pid, local.busy = conn, os.getpid(), int(self.busy_timeout_ms)
            with self._all_lock:
                self._all.append((local.pid, conn))
            self._start_checkpointer()
        return local.conn

    def _start_checkpointer(self) -> None:
        """One checkpoint thread per process using this store, started on first use: a thread
        started before gunicorn forks would not exist in the workers."""
        if self.checkpoint_every <= 0:
            return
        with self._all_lock:
            if self._checkpointer is not None and self._checkpointer[0] == os.getpid():
                return
            stop = threading.Event()
            thread = threading.Thread(target=_checkpoint_loop, args=(self.path, stop, self.checkpoint_every),
                                      name=f"sqlite-checkpoint {os.path.basename(self.path)}", daemon=True)
            thread.start()
            self._checkpointer = (os.getpid(), stop, thread)
        weakref.finalize(self, stop.set)   # a store dropped without close() stops its thread too

    def checkpoint(self) -> None:
        """Copy the WAL into the database now (PASSIVE: never waits); for servers that run
        with checkpoint_every=0 and schedule it themselves."""
        with self._tx(write=False) as db:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    @contextmanager
    def _tx(self, write: bool = True):
        """One transaction; BEGIN IMMEDIATE takes the write lock up front, so two writers never
        both read and then deadlock on upgrading. sqlite3 errors become StoreError."""
        try:
            db = self._conn()
            self._cap_busy_wait(db)
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
            if isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e)):
                raise StoreUnavailable(f"SQLite store {self.path}: {e} (another writer held it too long)") from e
            raise StoreError(f"SQLite store {self.path}: {e}; check the file and its directory are "
                             "writable and not on a network filesystem, or pass --store "
                             "sqlite:///other/path.db") from e

    def _cap_busy_wait(self, db: sqlite3.Connection) -> None:
        """Wait for the write lock no longer than what is left of the webhook's budget (ivr.store.guard)."""
        left = guard.remaining()
        # in 100 ms steps, so a webhook's few transactions set it at most once or twice
        wait = self.busy_timeout_ms if left is None else max(1, min(self.busy_timeout_ms, int(left * 10) * 100))
        if getattr(self._local, "busy", None) != wait:
            db.execute(f"PRAGMA busy_timeout = {wait}")
            self._local.busy = wait

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
            checkpointer, self._checkpointer = self._checkpointer, None
            for pid, conn in self._all:
                if pid == os.getpid():
                    conn.close()
            self._all = [(pid, conn) for pid, conn in self._all if pid != os.getpid()]
        self._local = threading.local()
        if checkpointer is not None and checkpointer[0] == os.getpid():
            checkpointer[1].set()
            checkpointer[2].join(timeout=2)

    @staticmethod
    def _log_rows(call_sid: str, entries: list[dict]) -> list[tuple]:
        return [(call_sid, entry["t"], _dumps(entry)) for entry in entries]

    # --- one webhook: one read, one write ----------------------------------------
    def load(self, call_sid, line_window=None):
        with self._tx(write=False) as db:
            if line_window is None:
                row = db.execute("SELECT state, turn, answer, NULL FROM calls WHERE call_sid = ?",
                                 (call_sid,)).fetchone()
            else:  # the window's line verdict in the same statement
                row = db.execute("SELECT state, turn, answer, (SELECT report FROM lines WHERE call_sid = ? "
                                 "AND window = ?) FROM calls WHERE call_sid = ?",
                                 (call_sid, int(line_window), call_sid)).fetchone()
        if row is None:
            return None
        line = self._loads(row[3], f"line of call {call_sid}") if row[3] is not None else None
        return StoredCall(self._loads(row[0], f"state of call {call_sid}"), row[1], row[2], line)

    def start(self, call_sid, state, answer, entries):
        now = self.now()
        row = (call_sid, state.get("flow", ""), state.get("turn", 0), _dumps(state), now, answer, now,
               1 if state.get("ended") else 0)
        logs = self._log_rows(call_sid, stamp(entries, now))
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO calls (call_sid, flow, turn, state, started_at, answer, "
                             "touched_at, ended) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            if cur.rowcount == 0:
                return False
            if logs:
                db.executemany(INSERT_LOG, logs)
            return True

    def commit(self, call_sid, expected_turn, state, answer, entries):
        check_commit(expected_turn, state)
        now = self.now()
        args = (_dumps(state), expected_turn + 1, answer, now, 1 if state.get("ended") else 0,
                call_sid, expected_turn)
        logs = self._log_rows(call_sid, stamp(entries, now))
        with self._tx() as db:
            cur = db.execute("UPDATE calls SET state = ?, turn = ?, prev_answer = answer, answer = ?, "
                             "touched_at = ?, ended = ? WHERE call_sid = ? AND turn = ?", args)
            if cur.rowcount == 0:
                return False   # nothing written: COMMIT of an empty transaction
            if logs:
                db.executemany(INSERT_LOG, logs)
            return True

    def update(self, call_sid, expected_turn, state, entries):
        check_update(expected_turn, state)
        now = self.now()
        logs = self._log_rows(call_sid, stamp(entries, now))
        with self._tx() as db:
            cur = db.execute("UPDATE calls SET state = ?, touched_at = ? WHERE call_sid = ? AND turn = ?",
                             (_dumps(state), now, call_sid, expected_turn))
            if cur.rowcount == 0:
                return False
            if logs:
                db.executemany(INSERT_LOG, logs)
            return True

    def answer_for(self, call_sid, turn):
        with self._tx(write=False) as db:
            row = db.execute("SELECT CASE ? WHEN turn THEN answer WHEN turn - 1 THEN prev_answer END "
                             "FROM calls WHERE call_sid = ?", (turn, call_sid)).fetchone()
        return row[0] if row else None

    def end_call(self, call_sid, state, entries, expected_turn=None):
        check_ended(state)
        now = self.now()
        logs = self._log_rows(call_sid, stamp(entries, now))
        turn = state.get("turn", 0)
        if expected_turn is not None:
            with self._tx() as db:
                cur = db.execute(
                    "UPDATE calls SET prev_answer = CASE ? WHEN turn THEN prev_answer WHEN turn + 1 THEN answer END, "
                    "answer = CASE ? WHEN turn THEN answer END, state = ?, turn = ?, touched_at = ?, ended = 1 "
                    "WHERE call_sid = ? AND turn = ?", (turn, turn, _dumps(state), turn, now, call_sid, expected_turn))
                if cur.rowcount == 0:
                    return False
                if logs:
                    db.executemany(INSERT_LOG, logs)
                return True
        with self._tx() as db:
            # In SET, every column on the right is the old row's value.
            db.execute(
                "INSERT INTO calls (call_sid, flow, turn, state, started_at, touched_at, ended) "
                "VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (call_sid) DO UPDATE SET "
                "prev_answer = CASE excluded.turn WHEN turn THEN prev_answer WHEN turn + 1 THEN answer END, "
                "answer = CASE excluded.turn WHEN turn THEN answer END, "
                "state = excluded.state, turn = excluded.turn, touched_at = excluded.touched_at, ended = 1",
                (call_sid, state.get("flow", ""), state.get("turn", 0), _dumps(state), now, now))
            if logs:
                db.executemany(INSERT_LOG, logs)
        return True

    def stale_calls(self, idle_for):
        with self._tx(write=False) as db:
            rows = db.execute("SELECT call_sid FROM calls WHERE ended = 0 AND touched_at < ? ORDER BY touched_at",
                              (self.now() - idle_for,)).fetchall()
        return [sid for (sid,) in rows]

    # --- line verdicts per listening window -----------------------------------------
    def put_line(self, call_sid, window, report):
        """One transaction: the window is the call's turn unless given (one INSERT ... SELECT from
        the calls row, which also refuses unknown and ended calls), older windows deleted."""
        text = _dumps(report)
        with self._tx() as db:
            row = db.execute("INSERT INTO lines (call_sid, window, report) "
                             "SELECT call_sid, coalesce(?, turn), ? FROM calls WHERE call_sid = ? AND ended = 0 "
                             "ON CONFLICT (call_sid, window) DO UPDATE SET report = excluded.report "
                             "RETURNING window", (window, text, call_sid)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM lines WHERE call_sid = ? AND window <= ?", (call_sid, row[0] - LINE_WINDOWS_KEPT))
            return row[0]

    def get_line(self, call_sid, window):
        with self._tx(write=False) as db:
            row = db.execute("SELECT report FROM lines WHERE call_sid = ? AND window = ?",
                             (call_sid, int(window))).fetchone()
        return self._loads(row[0], f"line of call {call_sid}") if row else None

    # --- published flow versions -------------------------------------------------
    def publish_flow(self, name, version):
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO published (name, version) VALUES (?, ?)", (name, version))

    def published_flows(self):
        with self._tx(write=False) as db:
            return dict(db.execute("SELECT name, version FROM published").fetchall())

    # --- call log ---------------------------------------------------------------
    def append_log(self, call_sid, *entries):
        logs = self._log_rows(call_sid, stamp(entries, self.now()))
        with self._tx() as db:
            db.executemany(INSERT_LOG, logs)

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
