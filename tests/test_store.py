"""Conformance tests: every call store behaves the same (memory, SQLite, Redis).

Redis tests use the `redis_url` fixture (tests/conftest.py) and are skipped, with the
reason shown, when neither redis-server nor $IVR_TEST_REDIS_URL is available.
"""
from __future__ import annotations

import multiprocessing
import socket
import sqlite3
import threading
import time
import uuid

import pytest

from ivr.store import MemoryStore, StoreError, open_store
from ivr.store.sqlite import SqliteStore

GREETING = "您好，欢迎致电银行客服热线。普通话请按一。"


def state(turn: int, **extra) -> dict:
    return {"turn": turn, "flow": "hotline", "node": "menu", **extra}


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

def test_create_call_is_insert_once(store):
    assert store.create_call("CA1", state(0), "<Say>first</Say>")
    assert not store.create_call("CA1", state(0, node="other"), "<Say>second</Say>")
    assert store.get_call("CA1") == state(0)
    assert store.response_for("CA1", 0) == "<Say>first</Say>"


def test_get_call_round_trips_mandarin_and_unknown_is_none(store):
    s = state(0, prompt=GREETING, digits=["1", "2"], slots={"姓名": "王小明", "amount": 12.5, "ok": True})
    store.create_call("CA1", s, f"<Say language=\"zh-CN\">{GREETING}</Say>")
    assert store.get_call("CA1") == s
    assert store.response_for("CA1", 0) == f"<Say language=\"zh-CN\">{GREETING}</Say>"
    assert store.get_call("CA-unknown") is None


def test_advance_succeeds_once_per_turn_and_stale_turn_changes_nothing(store):
    store.create_call("CA1", state(0), "<Say>0</Say>")
    assert store.advance("CA1", 0, state(1, node="balance"), "<Say>1</Say>")
    # A duplicate webhook started from turn 0 too: it must not overwrite.
    assert not store.advance("CA1", 0, state(1, node="transfer"), "<Say>dup</Say>")
    assert store.get_call("CA1") == state(1, node="balance")
    assert store.response_for("CA1", 1) == "<Say>1</Say>"
    assert not store.advance("CA-unknown", 0, state(1), "<Say>x</Say>")
    assert store.get_call("CA-unknown") is None


def test_response_for_returns_the_answers_of_the_last_two_turns(store):
    store.create_call("CA1", state(0), "<Say>turn 0</Say>")
    assert store.response_for("CA1", 0) == "<Say>turn 0</Say>"
    for turn in range(3):
        assert store.advance("CA1", turn, state(turn + 1), f"<Say>turn {turn + 1}</Say>")
    # Duplicates come for the latest turn or the one before; older answers are not kept.
    assert [store.response_for("CA1", t) for t in range(4)] == [None, None, "<Say>turn 2</Say>", "<Say>turn 3</Say>"]
    assert store.response_for("CA1", 4) is None
    assert store.response_for("CA-unknown", 0) is None


def test_threads_racing_advance_on_one_turn_have_exactly_one_winner(store):
    store.create_call("CA1", state(0), "<Say>0</Say>")
    n = 8
    barrier, results = threading.Barrier(n), [None] * n

    def worker(i):
        barrier.wait()   # release all threads at once to maximise contention
        results[i] = store.advance("CA1", 0, state(1, winner=i), f"<Say>{i}</Say>")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    winner = results.index(True)
    # State and kept answer come from the same request.
    assert store.get_call("CA1") == state(1, winner=winner)
    assert store.response_for("CA1", 1) == f"<Say>{winner}</Say>"


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
    store.create_call("CA-old", state(0, flow="old"), "<Say/>")
    time.sleep(0.02)
    cutoff = time.time()
    time.sleep(0.02)
    store.create_call("CA-new", state(0, flow="new"), "<Say/>")
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


# --- across processes (gunicorn workers forked from one app) --------------------------

def _race_in_child(store, i, go, results):
    go.wait()
    results.put((i, store.advance("CA1", 0, state(1, winner=i), f"<Say>{i}</Say>")))


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_processes_racing_advance_have_exactly_one_winner(backend, tmp_path, request):
    cleanup = None
    if backend == "sqlite":
        store = SqliteStore(str(tmp_path / "calls.db"))
    else:
        store, cleanup = redis_store(request.getfixturevalue("redis_url"))
    # The parent has used its connection before forking, as a preloaded app would.
    store.create_call("CA1", state(0), "<Say>0</Say>")
    ctx = multiprocessing.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race_in_child, args=(store, i, go, results)) for i in range(4)]
    for p in procs:
        p.start()
    go.set()
    outcomes = dict(results.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    try:
        assert list(outcomes.values()).count(True) == 1
        winner = next(i for i, won in outcomes.items() if won)
        assert store.get_call("CA1") == state(1, winner=winner)
        assert store.response_for("CA1", 1) == f"<Say>{winner}</Say>"
    finally:
        store.close()
        if cleanup:
            cleanup()


# --- SQLite specifics ------------------------------------------------------------------

def test_sqlite_data_survives_reopening(tmp_path):
    path = str(tmp_path / "deep" / "dir" / "calls.db")   # parent directories are created
    first = SqliteStore(path)
    first.create_call("CA1", state(0, prompt=GREETING), "<Say>0</Say>")
    first.append_log("CA1", {"event": "start"})
    first.close()
    second = SqliteStore(path)
    assert second.get_call("CA1") == state(0, prompt=GREETING)
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
    store.create_call("CA1", state(0), "<Say>0</Say>")
    store.append_log("CA1", {"event": "start"})
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE calls SET state = '{\"turn\": 0, trunc'")
        raw.execute("UPDATE log SET entry = 'not json'")
    with pytest.raises(StoreError, match="corrupt state of call CA1"):
        store.get_call("CA1")
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
    assert sqlite_store.create_call("CA1", state(0), "<Say/>")
    sqlite_store.close()
    assert isinstance(open_store("memory://"), MemoryStore)


# --- Redis specifics -------------------------------------------------------------------

def test_redis_nobody_listening_gives_store_error():
    from ivr.store.redis import RedisStore

    with socket.socket() as s:   # a port that was free a moment ago: nobody listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError, match=rf"cannot reach Redis at redis://127.0.0.1:{port}/0.*redis-server"):
        RedisStore(f"redis://127.0.0.1:{port}/0")


def test_redis_corrupt_state_gives_store_error(redis_url):
    import redis

    store, cleanup = redis_store(redis_url)
    try:
        store.create_call("CA1", state(0), "<Say>0</Say>")
        with redis.Redis.from_url(redis_url) as r:
            r.hset(f"{store.prefix}call:CA1", "state", "{broken")
        with pytest.raises(StoreError, match="corrupt state of call CA1"):
            store.get_call("CA1")
    finally:
        store.close()
        cleanup()

