"""Conformance tests: every call store behaves the same (memory, SQLite, Redis).

Redis tests use the `redis_url` fixture (tests/conftest.py) and are skipped, with the
reason shown, when neither redis-server nor $IVR_TEST_REDIS_URL is available.
"""
from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
import time
import uuid

import pytest

from ivr.store import MemoryStore, StoreError, open_store
from ivr.store.base import StoredCall
from ivr.store.sqlite import SqliteStore

GREETING = "您好，欢迎致电银行客服热线。普通话请按一。"


def state(turn: int, **extra) -> dict:
    return {"turn": turn, "flow": "hotline", "node": "menu", **extra}


def state_of(store, call_sid: str) -> dict | None:
    """The state saved for a call (None: unknown call)."""
    call = store.load(call_sid)
    return call.state if call is not None else None


def redis_store(url: str):
    """A RedisStore on a unique key prefix, and a cleanup deleting only that prefix's keys."""
    import redis

    from ivr.store.redis import RedisStore

    prefix = f"ivrtest:{uuid.uuid4().hex}:"
    store = RedisStore(url, prefix=prefix)

    def cleanup():
        with redis.Redis.from_url(url) as r:
            keys = list(r.scan_iter(match=prefix + "*"))
            if keys:
                r.delete(*keys)
    return store, cleanup


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    cleanup = None
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(str(tmp_path / "calls.db"))
    else:
        s, cleanup = redis_store(request.getfixturevalue("redis_url"))
    yield s
    s.close()
    if cleanup:
        cleanup()


# --- the interface, on every backend ------------------------------------------------

def test_load_round_trips_mandarin_and_unknown_is_none(store):
    s = state(0, prompt=GREETING, digits=["1", "2"], slots={"姓名": "王小明", "amount": 12.5, "ok": True})
    store.start("CA1", s, f"<Say language=\"zh-CN\">{GREETING}</Say>", [])
    assert state_of(store, "CA1") == s
    assert store.answer_for("CA1", 0) == f"<Say language=\"zh-CN\">{GREETING}</Say>"
    assert state_of(store, "CA-unknown") is None


def test_log_keeps_order_and_stamps_t(store):
    before = time.time()
    store.append_log("CA1", {"event": "start"})
    store.append_log("CA1", {"event": "say", "text": GREETING})
    store.append_log("CA1", {"event": "digits", "t": 42.0})   # an explicit t is kept
    store.append_log("CA2", {"event": "start"})
    log = store.call_log("CA1")
    assert [e["event"] for e in log] == ["start", "say", "digits"]
    assert log[1]["text"] == GREETING
    assert all(before <= e["t"] <= time.time() for e in log[:2])
    assert log[2]["t"] == 42.0
    assert len(store.call_log("CA2")) == 1
    assert store.call_log("CA-unknown") == []


def test_list_calls_filters_by_start_time(store):
    store.start("CA-old", state(0, flow="old"), "<Say/>", [])
    time.sleep(0.02)
    cutoff = time.time()
    time.sleep(0.02)
    store.start("CA-new", state(0, flow="new"), "<Say/>", [])
    calls = store.list_calls()
    assert [(c["call_sid"], c["flow"]) for c in calls] == [("CA-old", "old"), ("CA-new", "new")]
    assert calls[0]["started_at"] < cutoff < calls[1]["started_at"]
    assert [c["call_sid"] for c in store.list_calls(since=cutoff)] == ["CA-new"]
    assert store.list_calls(since=time.time() + 60) == []


def test_put_flow_is_idempotent_and_get_flow_unknown_is_none(store):
    store.put_flow("v1", "hotline", "call_flows/hotline.yaml", f"say: {GREETING}\n")
    store.put_flow("v1", "hotline", "call_flows/hotline.yaml", "say: changed\n")   # must not overwrite
    assert store.get_flow("v1") == {"version": "v1", "name": "hotline",
                                    "path": "call_flows/hotline.yaml", "text": f"say: {GREETING}\n"}
    assert store.get_flow("v-unknown") is None


# --- the one-read / one-write API, on every backend --------------------------------------

def entries(tag: str, n: int = 3) -> list[dict]:
    return [{"kind": "note", "tag": tag, "i": i} for i in range(n)]


def logged(store, call_sid: str) -> list[tuple]:
    return [(e.get("tag"), e.get("i")) for e in store.call_log(call_sid)]


def test_start_inserts_once_with_its_answer_and_log(store):
    assert store.load("CA1") is None
    assert store.start("CA1", state(0, prompt=GREETING), "<Say>first</Say>", entries("start", 2))
    assert not store.start("CA1", state(0, node="other"), "<Say>second</Say>", entries("again"))
    call = store.load("CA1")
    assert call == StoredCall(state(0, prompt=GREETING), 0, "<Say>first</Say>")
    assert logged(store, "CA1") == [("start", 0), ("start", 1)]   # nothing of the second start
    assert all("t" in e for e in store.call_log("CA1"))
    assert store.answer_for("CA1", 0) == "<Say>first</Say>"
    assert [c["call_sid"] for c in store.list_calls()] == ["CA1"]


def test_commit_is_compare_and_set_with_state_answer_and_log_together(store):
    store.start("CA1", state(0), "<Say>0</Say>", entries("t0", 1))
    assert store.commit("CA1", 0, state(1, node="balance"), "<Say>1</Say>", entries("t1"))
    # A duplicate that also started from turn 0 loses: no state, no answer, no log entries.
    assert not store.commit("CA1", 0, state(1, node="transfer"), "<Say>dup</Say>", entries("dup"))
    assert store.load("CA1") == StoredCall(state(1, node="balance"), 1, "<Say>1</Say>")
    assert logged(store, "CA1") == [("t0", 0), ("t1", 0), ("t1", 1), ("t1", 2)]
    assert not store.commit("CA-unknown", 0, state(1), "<Say>x</Say>", entries("x"))
    assert store.load("CA-unknown") is None and store.call_log("CA-unknown") == []
    with pytest.raises(ValueError, match="turn is 2"):   # the saved state must carry the new turn
        store.commit("CA1", 1, state(5), "<Say>2</Say>", [])
    assert store.load("CA1").turn == 1


def test_update_saves_state_at_the_same_turn_and_keeps_the_answers(store):
    store.start("CA1", state(0), "<Say>0</Say>", entries("t0", 1))
    assert store.commit("CA1", 0, state(1, node="ringing"), "<Dial/>", [])
    assert store.update("CA1", 1, state(1, node="accepted"), entries("agent"))
    assert store.load("CA1") == StoredCall(state(1, node="accepted"), 1, "<Dial/>")
    assert store.answer_for("CA1", 0) == "<Say>0</Say>"
    assert not store.update("CA1", 0, state(0, node="late"), entries("late"))   # the call moved on
    assert not store.update("CA-unknown", 0, state(0), [])
    assert store.load("CA1").state == state(1, node="accepted")
    assert [tag for tag, _ in logged(store, "CA1")] == ["t0", "agent", "agent", "agent"]
    with pytest.raises(ValueError, match="turn is 1"):
        store.update("CA1", 1, state(2), [])


def test_duplicates_are_answered_for_the_last_two_turns_only(store):
    store.start("CA1", state(0), "<Say>turn 0</Say>", [])
    for turn in range(50):
        assert store.commit("CA1", turn, state(turn + 1), f"<Say>turn {turn + 1}</Say>", entries(f"t{turn}", 1))
    assert store.load("CA1").answer == "<Say>turn 50</Say>"
    assert store.answer_for("CA1", 50) == "<Say>turn 50</Say>"
    assert store.answer_for("CA1", 49) == "<Say>turn 49</Say>"
    assert [store.answer_for("CA1", t) for t in range(49)] == [None] * 49
    assert store.answer_for("CA1", 51) is None
    assert store.answer_for("CA-unknown", 0) is None
    assert len(store.call_log("CA1")) == 50   # the log keeps everything; only answers are bounded


def test_threads_racing_commit_on_one_turn_have_exactly_one_winner_and_its_log(store):
    store.start("CA1", state(0), "<Say>0</Say>", [])
    n = 8
    barrier, results = threading.Barrier(n), [None] * n

    def worker(i):
        barrier.wait()
        results[i] = store.commit("CA1", 0, state(1, winner=i), f"<Say>{i}</Say>", entries(f"w{i}"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    winner = results.index(True)
    assert store.load("CA1") == StoredCall(state(1, winner=winner), 1, f"<Say>{winner}</Say>")
    assert logged(store, "CA1") == [(f"w{winner}", i) for i in range(3)]


def test_append_log_takes_several_entries_in_order(store):
    store.append_log("CA1", {"event": "a"}, {"event": "b", "t": 7.0}, {"event": "c"})
    store.append_log("CA1", {"event": "d"})
    store.append_log("CA1")   # nothing to add is fine
    log = store.call_log("CA1")
    assert [e["event"] for e in log] == ["a", "b", "c", "d"]
    assert log[1]["t"] == 7.0 and isinstance(log[0]["t"], float)


def test_publish_flow_sets_the_version_new_calls_get(store):
    assert store.published_flows() == {}
    store.publish_flow("bank_hotline", "v1")
    store.publish_flow("bank_hotline_en", "e1")
    store.publish_flow("bank_hotline", "v2")   # republishing replaces
    assert store.published_flows() == {"bank_hotline": "v2", "bank_hotline_en": "e1"}


def test_stale_calls_are_the_idle_calls_not_ended(store):
    store.start("CA-idle", state(0), "<Say/>", [])
    store.start("CA-busy", state(0), "<Say/>", [])
    store.start("CA-ended", state(0), "<Say/>", [])
    store.start("CA-hung-up", state(0), "<Say/>", [])
    store.end_call("CA-ended", state(1, ended=True), [])
    store.commit("CA-hung-up", 0, state(1, ended=True), "<Hangup/>", [])
    time.sleep(0.15)
    store.commit("CA-busy", 0, state(1), "<Say/>", [])
    assert store.stale_calls(0.1) == ["CA-idle"]
    assert store.stale_calls(60) == []
    assert sorted(store.stale_calls(0)) == ["CA-busy", "CA-idle"]


def test_end_call_force_saves_an_ended_state_and_log(store):
    store.start("CA1", state(0), "<Say>0</Say>", [])
    store.commit("CA1", 0, state(1), "<Say>1</Say>", [])
    store.end_call("CA1", state(2, ended=True, reason="lost"), entries("closed", 1))
    assert store.load("CA1") == StoredCall(state(2, ended=True, reason="lost"), 2, None)
    assert store.answer_for("CA1", 1) == "<Say>1</Say>"   # still there for a late duplicate
    assert store.answer_for("CA1", 0) is None
    assert logged(store, "CA1") == [("closed", 0)]
    # A webhook that loaded turn 1 before the call was closed loses its compare-and-set.
    assert not store.commit("CA1", 1, state(2), "<Say>late</Say>", entries("late"))
    assert store.load("CA1").state["ended"] is True
    # Unconditional: an unknown call is recorded as ended, a same-turn end keeps the answer.
    store.end_call("CA2", state(4, ended=True), [])
    assert store.load("CA2") == StoredCall(state(4, ended=True), 4, None)
    store.start("CA3", state(0), "<Say>3</Say>", [])
    store.end_call("CA3", state(0, ended=True), [])
    assert store.load("CA3").answer == "<Say>3</Say>"
    with pytest.raises(ValueError, match="ended"):
        store.end_call("CA3", state(0), [])
    assert store.stale_calls(0) == []


# --- across processes (gunicorn workers forked from one app) --------------------------

def _race_in_child(store, i, go, results):
    go.wait()
    won = store.commit("CA1", 0, state(1, winner=i), f"<Say>{i}</Say>", entries(f"w{i}"))
    checkpointing = any(t.name.startswith("sqlite-checkpoint") for t in threading.enumerate())
    results.put((i, (won, checkpointing)))


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_processes_racing_commit_have_exactly_one_winner(backend, tmp_path, request):
    cleanup = None
    if backend == "sqlite":
        store = SqliteStore(str(tmp_path / "calls.db"))
    else:
        store, cleanup = redis_store(request.getfixturevalue("redis_url"))
    # The parent has used its connection before forking, as a preloaded app would.
    store.start("CA1", state(0), "<Say>0</Say>", [])
    ctx = multiprocessing.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race_in_child, args=(store, i, go, results)) for i in range(4)]
    for p in procs:
        p.start()
    go.set()
    reports = dict(results.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    try:
        outcomes = {i: won for i, (won, _) in reports.items()}
        assert list(outcomes.values()).count(True) == 1
        winner = next(i for i, won in outcomes.items() if won)
        assert store.load("CA1") == StoredCall(state(1, winner=winner), 1, f"<Say>{winner}</Say>")
        assert store.answer_for("CA1", 1) == f"<Say>{winner}</Say>"
        assert logged(store, "CA1") == [(f"w{winner}", i) for i in range(3)]
        if backend == "sqlite":   # each forked worker started its own WAL checkpoint thread
            assert all(checkpointing for _, checkpointing in reports.values())
    finally:
        store.close()
        if cleanup:
            cleanup()


# --- SQLite specifics ------------------------------------------------------------------

def test_sqlite_data_survives_reopening(tmp_path):
    path = str(tmp_path / "deep" / "dir" / "calls.db")   # parent directories are created
    first = SqliteStore(path)
    first.start("CA1", state(0, prompt=GREETING), "<Say>0</Say>", [])
    first.append_log("CA1", {"event": "start"})
    first.close()
    second = SqliteStore(path)
    assert state_of(second, "CA1") == state(0, prompt=GREETING)
    assert [c["call_sid"] for c in second.list_calls()] == ["CA1"]
    assert second.call_log("CA1")[0]["event"] == "start"
    second.close()


def test_sqlite_is_in_wal_mode(tmp_path):
    path = tmp_path / "calls.db"
    SqliteStore(str(path)).close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_corrupt_rows_give_store_error(tmp_path):
    path = tmp_path / "calls.db"
    store = SqliteStore(str(path))
    store.start("CA1", state(0), "<Say>0</Say>", [])
    store.append_log("CA1", {"event": "start"})
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE calls SET state = '{\"turn\": 0, trunc'")
        raw.execute("UPDATE log SET entry = 'not json'")
    with pytest.raises(StoreError, match="corrupt state of call CA1"):
        state_of(store, "CA1")
    with pytest.raises(StoreError, match="corrupt log entry"):
        store.call_log("CA1")
    store.close()


def test_sqlite_unusable_path_gives_store_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="a-file"):   # names the path
        SqliteStore(str(blocker / "calls.db"))         # a file where a directory should be
    with pytest.raises(StoreError, match="SQLite store"):
        SqliteStore(str(tmp_path))                      # a directory where the file should be


def test_open_store_urls(tmp_path):
    sqlite_store = open_store(f"sqlite:///{tmp_path / 'calls.db'}")   # sqlite:////abs/path
    assert isinstance(sqlite_store, SqliteStore)
    assert sqlite_store.start("CA1", state(0), "<Say/>", [])
    sqlite_store.close()
    assert isinstance(open_store("memory://"), MemoryStore)


OLD_SCHEMA = """
CREATE TABLE calls (call_sid TEXT PRIMARY KEY, flow TEXT NOT NULL, turn INTEGER NOT NULL,
                    state TEXT NOT NULL, started_at REAL NOT NULL);
CREATE INDEX calls_started_at ON calls (started_at);
CREATE TABLE responses (call_sid TEXT NOT NULL, turn INTEGER NOT NULL, twiml TEXT NOT NULL,
                        PRIMARY KEY (call_sid, turn));
CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, call_sid TEXT NOT NULL, t REAL NOT NULL,
                  entry TEXT NOT NULL);
CREATE INDEX log_call_sid ON log (call_sid);
CREATE TABLE flows (version TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, text TEXT NOT NULL);
"""


def test_sqlite_file_of_the_old_schema_is_migrated(tmp_path):
    path = tmp_path / "calls.db"
    with sqlite3.connect(path) as raw:   # a calls.db written by the previous version
        raw.executescript(OLD_SCHEMA)
        raw.execute("INSERT INTO calls VALUES ('CA-live', 'hotline', 2, ?, 100.0)", (json.dumps(state(2)),))
        raw.execute("INSERT INTO calls VALUES ('CA-done', 'hotline', 1, ?, 50.0)",
                    (json.dumps(state(1, ended=True)),))
        raw.executemany("INSERT INTO responses VALUES ('CA-live', ?, ?)", [(t, f"<Say>{t}</Say>") for t in range(3)])
        raw.execute("INSERT INTO log (call_sid, t, entry) VALUES ('CA-live', 1.0, ?)",
                    (json.dumps({"t": 1.0, "kind": "old"}),))
        raw.execute("INSERT INTO flows VALUES ('v1', 'hotline', 'p.yaml', 'text')")
    raw.close()
    store = SqliteStore(str(path))
    assert store.load("CA-live") == StoredCall(state(2), 2, "<Say>2</Say>")
    assert store.answer_for("CA-live", 1) == "<Say>1</Say>"
    assert store.answer_for("CA-live", 0) is None
    assert store.stale_calls(60) == ["CA-live"]   # last touched when it started, long ago; CA-done ended
    assert store.commit("CA-live", 2, state(3), "<Say>3</Say>", [{"kind": "new"}])
    assert [e["kind"] for e in store.call_log("CA-live")] == ["old", "new"]
    assert store.get_flow("v1")["text"] == "text"
    assert [c["call_sid"] for c in store.list_calls()] == ["CA-done", "CA-live"]
    store.close()
    SqliteStore(str(path)).close()   # opening a migrated file again changes nothing


def _main_file_has_call(path, tmp_path, call_sid) -> bool:
    """Whether the database file alone, without its WAL, holds the call: i.e. checkpointed."""
    copy_path = tmp_path / f"copy-{uuid.uuid4().hex}.db"
    copy_path.write_bytes(path.read_bytes())
    raw = sqlite3.connect(copy_path)
    try:
        return raw.execute("SELECT 1 FROM calls WHERE call_sid = ?", (call_sid,)).fetchone() is not None
    except sqlite3.OperationalError:   # not even the table is in the main file yet
        return False
    finally:
        raw.close()


def test_sqlite_checkpoints_outside_requests(tmp_path):
    path = tmp_path / "calls.db"
    # No checkpoint thread: request connections never checkpoint (wal_autocheckpoint=0) ...
    manual = SqliteStore(str(path), checkpoint_every=0)
    assert manual._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    manual.start("CA1", state(0), "<Say/>", [])
    assert not _main_file_has_call(path, tmp_path, "CA1")
    manual.checkpoint()   # ... until the server asks for it
    assert _main_file_has_call(path, tmp_path, "CA1")
    # With the background thread (default), the WAL reaches the file within a second or so.
    background = SqliteStore(str(path), checkpoint_every=0.05)
    background.start("CA2", state(0), "<Say/>", [])
    deadline = time.monotonic() + 5
    while not _main_file_has_call(path, tmp_path, "CA2"):
        assert time.monotonic() < deadline, "the checkpoint thread never checkpointed"
        time.sleep(0.05)
    thread = background._checkpointer[2]  # this store's one thread (other tests' stores have their own)
    assert thread.is_alive() and thread.name == "sqlite-checkpoint calls.db"
    background.close()
    manual.close()
    thread.join(timeout=5)
    assert not thread.is_alive(), "closing the store stops its checkpoint thread"


def test_sqlite_write_failure_gives_store_error_and_writes_nothing(tmp_path):
    path = tmp_path / "calls.db"
    SqliteStore(str(path)).close()
    store = SqliteStore(str(path))
    store.start("CA1", state(0), "<Say/>", [])
    store._conn().execute("PRAGMA query_only = 1")   # every write now fails inside SQLite
    with pytest.raises(StoreError, match=r"SQLite store .*calls.db: .*; check the file"):
        store.commit("CA1", 0, state(1), "<Say/>", [{"kind": "x"}])
    store._conn().execute("PRAGMA query_only = 0")
    assert store.load("CA1").turn == 0 and store.call_log("CA1") == []
    store.close()


# --- Redis specifics -------------------------------------------------------------------

def test_redis_nobody_listening_gives_store_error():
    from ivr.store.redis import RedisStore

    from harness import free_port

    port = free_port()  # a port that was free a moment ago: nobody listens on it
    with pytest.raises(StoreError, match=rf"cannot reach Redis at redis://127.0.0.1:{port}/0.*redis-server"):
        RedisStore(f"redis://127.0.0.1:{port}/0")


def test_redis_corrupt_state_gives_store_error(redis_url):
    import redis

    store, cleanup = redis_store(redis_url)
    try:
        store.start("CA1", state(0), "<Say>0</Say>", [])
        with redis.Redis.from_url(redis_url) as r:
            r.hset(f"{store.prefix}call:CA1", "state", "{broken")
        with pytest.raises(StoreError, match="corrupt state of call CA1"):
            state_of(store, "CA1")
    finally:
        store.close()
        cleanup()



def test_redis_timeouts_come_from_the_url_or_default_to_one_second(redis_url):
    from ivr.store.redis import RedisStore

    default = RedisStore(redis_url)
    kwargs = default._r.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (1.0, 1.0)
    default.close()
    sep = "&" if "?" in redis_url else "?"
    tuned = RedisStore(f"{redis_url}{sep}socket_timeout=0.25&socket_connect_timeout=0.5")
    kwargs = tuned._r.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.25, 0.5)
    tuned.close()


def test_redis_wrong_key_type_gives_one_line_store_error(redis_url):
    import redis

    store, cleanup = redis_store(redis_url)
    try:
        with redis.Redis.from_url(redis_url) as r:
            r.set(f"{store.prefix}call:CA1", "not a hash")
        with pytest.raises(StoreError, match=r"^Redis at .*WRONGTYPE[^\n]*$"):
            store.load("CA1")
    finally:
        store.close()
        cleanup()


def test_frozen_redis_gives_store_error_within_the_timeout():
    """A Redis that accepts connections but never answers (SIGSTOP: a hung or swapping server)
    must fail a webhook within its socket timeout (1 s by default, see the test above; 0.3 s here,
    set in the URL), not block it for the OS's TCP timeouts."""
    from harness import RedisServer

    from ivr.store.redis import RedisStore

    try:
        server = RedisServer().start()
    except FileNotFoundError:
        pytest.skip("redis-server not installed")
    timeout = 0.3
    url = f"{server.url}?socket_timeout={timeout}&socket_connect_timeout={timeout}"
    try:
        store = RedisStore(url)
        store.start("CA1", state(0), "<Say/>", [])   # a pooled connection, already open
        server.freeze()
        try:
            began = time.monotonic()
            with pytest.raises(StoreError, match="did not answer in time"):
                store.load("CA1")
            assert time.monotonic() - began < 2.5 * timeout
            began = time.monotonic()   # a new connection to the frozen server: the same bound
            with pytest.raises(StoreError):
                RedisStore(url)
            assert time.monotonic() - began < 2.5 * timeout
        finally:
            server.thaw()
        assert store.load("CA1").turn == 0   # back to normal once Redis is
        store.close()
    finally:
        server.stop()


# --- line verdicts per listening window (issue 11) ---------------------------------------------

def test_put_line_files_under_the_calls_turn_and_keeps_two_windows(store):
    assert store.put_line("CAnone", None, {"condition": "clear"}) is None  # unknown call: nothing kept
    assert store.get_line("CAnone", 0) is None
    store.start("CAline", state(0), "<Response/>", [])
    assert store.put_line("CAline", None, {"condition": "silent", "at": 1.5}) == 0
    assert store.put_line("CAline", None, {"condition": "quiet", "note": "静音"}) == 0  # replaces window 0
    assert store.get_line("CAline", 0) == {"condition": "quiet", "note": "静音"}
    assert store.commit("CAline", 0, state(1), "<Response/>", [])
    assert store.put_line("CAline", None, {"condition": "noisy"}) == 1
    assert store.put_line("CAline", 5, {"condition": "speakerphone"}) == 5  # an explicit window
    assert store.get_line("CAline", 1) is None and store.get_line("CAline", 0) is None  # only the last two kept
    assert store.get_line("CAline", 5) == {"condition": "speakerphone"}
    assert store.get_line("CAline", 4) is None


def test_load_brings_the_windows_line_in_the_same_read(store):
    store.start("CA1", state(0), "<Say/>", [])
    store.put_line("CA1", None, {"condition": "quiet", "seconds": 2.0})
    assert store.load("CA1").line is None, "not asked for"
    assert store.load("CA1", line_window=0).line == {"condition": "quiet", "seconds": 2.0}
    assert store.load("CA1", line_window=1).line is None, "no verdict for that window"


def test_put_line_refuses_an_ended_call(store):
    store.start("CAend", state(0), "<Response/>", [])
    assert store.put_line("CAend", None, {"condition": "clear"}) == 0
    store.end_call("CAend", state(1, ended=True), [])
    assert store.put_line("CAend", None, {"condition": "clear"}) is None
