"""Issue 12: what an attack on the running server found, each reproduced first, then kept fixed."""
from __future__ import annotations

import json
import logging
import shutil
import time
import xml.etree.ElementTree as ET

import pytest
from twilio.request_validator import RequestValidator

from ivr.store import open_store
from ivr.twilio import create_app
from ivr.twilio import music
from test_webhooks import BASE, FLOWS, TOKEN, Twilio, TwilioCall, start_transfer
from test_webhooks import app, store_url, twilio  # noqa: F401 (the same fixtures: a served hotline on SQLite)


def no_tracebacks(caplog):
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "Traceback" not in caplog.text


# --- 1. unsigned /twilio/music ------------------------------------------------------------------

def test_music_lengths_are_clamped_before_anything_is_built_or_cached(twilio):
    start = time.process_time()
    for seconds in range(300, 380):  # 80 distinct values >= 300: once ~80 CPU-seconds and 280 MB
        reply = twilio.client.get(f"/twilio/music?seconds={seconds}")
        assert reply.status_code == 200 and music.wav_seconds(reply.data) == music.MAX_SECONDS
    for seconds in ("1", "7", "29", "30", "31", "999999999", "0"):
        twilio.client.get(f"/twilio/music?seconds={seconds}")
    assert time.process_time() - start < 5
    assert music._cache.size <= music.CACHE_BYTES
    assert len(music._cache._items) <= music.MAX_SECONDS


def test_music_is_a_cacheable_file(twilio):
    first = twilio.client.get("/twilio/music?seconds=30")
    assert first.mimetype == "audio/wav" and music.wav_seconds(first.data) == 30
    assert first.headers["ETag"] and "max-age" in first.headers["Cache-Control"]
    again = twilio.client.get("/twilio/music?seconds=30", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    assert music.wav_seconds(twilio.client.get("/twilio/music?seconds=12").data) == 12
    for bad in ("abc", "-5", "1e9", "9" * 5000):
        assert twilio.client.get(f"/twilio/music?seconds={bad}").status_code == 400


# --- 2. body size before the signature check -------------------------------------------------------

def test_a_huge_unsigned_body_is_refused_before_it_is_read(twilio, app):
    body = b"x=" + b"a" * (20 * 1024 * 1024)
    start = time.process_time()
    reply = twilio.client.post("/twilio/voice", data=body, content_type="application/x-www-form-urlencoded")
    assert reply.status_code == 413
    assert time.process_time() - start < 0.2
    assert app.config["MAX_CONTENT_LENGTH"] >= 64 * 1024, "well above Twilio's largest webhook"


def test_a_chunked_body_over_the_limit_is_refused_too(twilio):
    import io

    reply = twilio.client.post("/twilio/voice", input_stream=io.BytesIO(b"x=" + b"a" * (1024 * 1024)),
                               content_type="application/x-www-form-urlencoded",
                               headers={"Transfer-Encoding": "chunked"})
    assert reply.status_code in (403, 413)  # never read whole: refused at the limit or by the signature check


def test_a_long_but_genuine_webhook_still_works(twilio):
    call = twilio.call()
    xml = call.gather(SpeechResult="挂失" * 2000, Confidence="0.9")
    assert xml.find("Gather") is not None


# --- 3. caller-provided text with control characters ------------------------------------------------

def test_control_characters_from_the_caller_never_reach_twiml_or_the_log(store_url, caplog):
    app = create_app([str(FLOWS / "bank_hotline.yaml")], store=store_url, auth_token=TOKEN)
    twilio = Twilio(app)
    call = twilio.call(caller="+1555\x01\x1b[31m\x7f\ufffe")
    call.gather(Digits="0")
    dial = call.gather(Digits="1").find("Dial")
    agent = {**call.common, "CallSid": "CA" + "f" * 32, "ParentCallSid": call.sid}
    whisper = twilio.post(dial[0].get("url"), agent)
    assert whisper.status_code == 200
    ET.fromstring(whisper.data)  # valid XML: the transfer can go on
    assert b"\x01" not in whisper.data and b"\x1b" not in whisper.data
    log = open_store(store_url).call_log(call.sid)
    assert log[0]["params"]["From"] == "+1555[31m"
    # a hostile flow name in the path reaches the server log escaped, on one line
    with caplog.at_level(logging.INFO):
        twilio.post("/twilio/voice/evil%0Aforged%20line%01", {**call.common, "CallSid": "CA" + "7" * 32})
    assert not any("\n" in r.getMessage() or "\x01" in r.getMessage() for r in caplog.records)


# --- 4. malformed action URLs leave the call untouched ------------------------------------------------

@pytest.mark.parametrize("query", ["k=bogus&t=0", "k=gather&t=7", "k=gather&t=-100000000000000000000",
                                   "k=gather&t=abc", "k=gather&t=99999999999999999999999", "k=dial&t=0",
                                   "k=&t=", "t=0"])
def test_a_malformed_action_url_does_not_end_a_live_call(twilio, store_url, caplog, query):
    call = twilio.call()
    greeting = call.xml
    with caplog.at_level(logging.INFO):
        reply = twilio.post(f"/twilio/event?{query}", {**call.common, "Digits": "1"})
    xml = TwilioCall.expect_ok(reply)
    assert ET.tostring(xml) == ET.tostring(greeting), "answered with the call's current TwiML"
    stored = open_store(store_url).load(call.sid)
    assert stored.turn == 0 and not stored.state.get("ended")
    no_tracebacks(caplog)
    assert len([r for r in caplog.records if r.name == "ivr.twilio"]) == 1, "one log line"
    assert "非常抱歉" not in reply.data.decode()
    # and the call goes on normally
    assert call.said(call.gather(Digits="2"))[0].startswith("为了尽快为您办理挂失")


def test_a_turn_long_past_does_not_end_the_call(twilio, store_url, caplog):
    call = twilio.call()
    first = call.xml.find("Gather").get("action")
    call.gather(Digits="9")
    call.gather(Digits="9")
    current = call.gather(Digits="9")  # turn 3: answers of turns 2 and 3 are kept, turn 1's is gone
    with caplog.at_level(logging.INFO):
        reply = call.expect_ok(twilio.post(first, {**call.common, "Digits": "2"}))
    assert ET.tostring(reply) == ET.tostring(current)
    assert open_store(store_url).load(call.sid).turn == 3
    no_tracebacks(caplog)


def test_whisper_for_a_call_not_at_a_transfer_hangs_up_the_agent(twilio, caplog):
    call = twilio.call()
    agent = {**call.common, "CallSid": "CA" + "f" * 32, "ParentCallSid": call.sid}
    for query in (f"parent={call.sid}&t=0", f"parent={call.sid}&t=-1", "parent=nobody&t=0", "t=x"):
        xml = call.expect_ok(twilio.post(f"/twilio/whisper?{query}", agent))
        assert [c.tag for c in xml] == ["Hangup"]
        xml = call.expect_ok(twilio.post(f"/twilio/whisper/answer?{query}", {**agent, "Digits": "1"}))
        assert [c.tag for c in xml] == ["Hangup"]
    no_tracebacks(caplog)


def test_an_agent_leg_never_hears_the_callers_apology(twilio):
    call, dial, number = start_transfer(twilio)
    agent = {**call.common, "CallSid": "CA" + "e" * 32, "ParentCallSid": call.sid}
    xml = call.expect_ok(twilio.post("/twilio/event?k=gather&t=0", agent))
    assert [c.tag for c in xml] == ["Hangup"]


def test_wait_url_after_the_caller_hung_up_just_leaves(twilio, caplog):
    call = twilio.call()
    call.gather(Digits="1")
    enqueue = call.gather(Digits="1").find("Enqueue")
    twilio.post("/twilio/status", {**call.common, "CallStatus": "completed", "CallDuration": "20"})
    for extra in ({"QueueTime": "5"}, {"QueueTime": "-1e308"}, {"QueueTime": "nan"}):
        xml = call.expect_ok(twilio.post(enqueue.get("waitUrl"), {**call.common, **extra}))
        assert [c.tag for c in xml] == ["Leave"]
    no_tracebacks(caplog)


# --- 5. signatures over URLs with percent-escapes ---------------------------------------------------

def test_a_genuine_signature_on_an_escaped_url_is_accepted(twilio):
    params = {"CallSid": "CA" + "4" * 32, "From": "+8613700000000", "To": "+861095500"}
    for path in ("/twilio/voice/bank%5Fhotline", "/twilio/voice?src=a%2Fb%20c&x=%2B1", "/twilio/voice?x=%E4%B8%AD"):
        signature = RequestValidator(TOKEN).compute_signature(BASE + path, params)
        reply = twilio.client.post(path, data=params, headers={"X-Twilio-Signature": signature}, base_url=BASE)
        assert reply.status_code == 200, path
        decoded = RequestValidator(TOKEN).compute_signature(BASE + path.replace("%2F", "/"), params)
        if decoded != signature:  # a signature over another spelling of the URL is still refused
            forged = twilio.client.post(path, data=params, headers={"X-Twilio-Signature": decoded}, base_url=BASE)
            assert forged.status_code == 403


def test_escaped_url_behind_a_public_url(store_url):
    app = create_app([str(FLOWS / "bank_hotline.yaml")], store=store_url, auth_token=TOKEN,
                     public_url="https://ivr.example.com")
    params = {"CallSid": "CA" + "5" * 32, "From": "+1", "To": "+2"}
    path = "/twilio/voice?src=a%2Fb"
    signature = RequestValidator(TOKEN).compute_signature("https://ivr.example.com" + path, params)
    assert app.test_client().post(path, data=params, headers={"X-Twilio-Signature": signature}).status_code == 200


# --- 6. an overall budget per webhook; a store that does not answer is failed fast ----------------

class SlowStore:
    """Wraps a store; while `frozen`, every operation hangs for `delay` seconds and then times out."""

    def __init__(self, inner, delay=1.0):
        self.inner, self.delay, self.frozen, self.calls = inner, delay, False, 0

    def __getattr__(self, name):
        op = getattr(self.inner, name)
        if not callable(op):
            return op

        def run(*args, **kwargs):
            if self.frozen:
                self.calls += 1
                time.sleep(self.delay)
                from ivr.store import StoreUnavailable
                raise StoreUnavailable("did not answer in time")
            return op(*args, **kwargs)
        return run


def test_a_frozen_store_gets_the_apology_within_the_budget(caplog):
    from ivr.store import MemoryStore
    from ivr.store.guard import GuardedStore

    # the product's limits scaled down (defaults: 1 s Redis timeout, 1 s cooldown, 3 s budget): without
    # the breaker, a webhook's several store operations would each wait a timeout
    timeout = 0.4
    slow = SlowStore(MemoryStore(), delay=timeout)
    store = GuardedStore(slow, cooldown=0.3)
    app = create_app([str(FLOWS / "bank_hotline.yaml")], store=store, auth_token=TOKEN, budget=3 * timeout)
    twilio = Twilio(app)
    calls = [twilio.call() for _ in range(3)]
    slow.frozen = True
    times = []
    for call in calls:
        start = time.monotonic()
        xml = call.gather(Digits="1")
        times.append(time.monotonic() - start)
        assert "非常抱歉" in xml.find("Say").text and xml.find("Dial")[0].text == "sip:service@pbx.huaxia-demo-bank.example.com"
    assert times[0] < 1.5 * timeout, "one store timeout, then the breaker answers the apology at once"
    assert slow.calls == 1
    assert max(times[1:]) < 0.2
    no_tracebacks(caplog)
    slow.frozen = False
    deadline = time.monotonic() + 5  # the breaker's cooldown; then one probe finds the store answering again
    while "欢迎致电" not in "".join(twilio.call().said()):
        assert time.monotonic() < deadline, "service resumes once the store answers"
        time.sleep(0.05)


def test_the_breakers_cooldown_is_one_second_unless_ivr_store_cooldown_says(monkeypatch):
    from ivr.store import MemoryStore
    from ivr.store.guard import GuardedStore

    monkeypatch.delenv("IVR_STORE_COOLDOWN", raising=False)
    assert GuardedStore(MemoryStore()).cooldown == 1.0
    monkeypatch.setenv("IVR_STORE_COOLDOWN", "0.25")
    assert GuardedStore(MemoryStore()).cooldown == 0.25
    assert GuardedStore(MemoryStore(), cooldown=2.0).cooldown == 2.0


def test_a_slow_store_is_cut_off_at_the_deadline():
    from ivr.store import MemoryStore, StoreUnavailable
    from ivr.store.guard import GuardedStore, budget

    store = GuardedStore(MemoryStore())
    with budget(0.05):
        store.load("CA1")
        time.sleep(0.06)
        with pytest.raises(StoreUnavailable):
            store.load("CA1")
    assert store.load("CA1") is None, "a spent budget does not open the breaker"


def test_sqlite_waits_for_a_lock_no_longer_than_the_budget(tmp_path):
    import sqlite3

    from ivr.store import StoreUnavailable
    from ivr.store.guard import GuardedStore, budget
    from ivr.store.sqlite import SqliteStore

    store = GuardedStore(SqliteStore(str(tmp_path / "calls.db"), checkpoint_every=0))
    holder = sqlite3.connect(tmp_path / "calls.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    seconds = 0.2  # the webhook's budget left; SQLite's own busy wait is 5 s
    try:
        start = time.monotonic()
        with budget(seconds), pytest.raises(StoreUnavailable):
            store.append_log("CA1", {"kind": "note"})
        assert time.monotonic() - start < seconds + 0.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# --- 8. no flow reload on a request's path; 9. every worker serves the published version -------------

ALIAS_BOMB = """name: bank_hotline
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
"""


def flows_copy(tmp_path):
    import shutil

    flows = tmp_path / "flows"
    shutil.copytree(FLOWS, flows)
    return flows / "bank_hotline.yaml"


def edit(path, old, new):
    import os

    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    os.utime(path, (path.stat().st_mtime + 5,) * 2)


def test_a_new_call_never_reads_flow_files(tmp_path, monkeypatch):
    path = flows_copy(tmp_path)
    app = create_app([str(path)], store=f"sqlite:///{tmp_path}/calls.db", auth_token=TOKEN)
    path.write_text(ALIAS_BOMB, encoding="utf-8")  # a hot edit that would hang a loader
    import ivr.call.registry as registry
    import ivr.flow.load as load

    def no_loading(*args, **kwargs):
        raise AssertionError("a flow was loaded on a request's path")

    monkeypatch.setattr(load, "load_flow", no_loading)
    monkeypatch.setattr(registry, "load_flow", no_loading)
    start = time.monotonic()
    assert "欢迎致电" in "".join(Twilio(app).call().said())
    assert time.monotonic() - start < 0.5


def test_every_worker_serves_the_published_version(tmp_path, caplog):
    """Issue 12 item 9: a good edit, then a broken one: all new calls, on every worker, hear the good edit."""
    from ivr.call.publish import FlowWatcher

    path = flows_copy(tmp_path)
    url = f"sqlite:///{tmp_path}/calls.db"
    workers = [create_app([str(path)], store=url, auth_token=TOKEN) for _ in range(3)]
    twilios = [Twilio(worker) for worker in workers]
    for i, twilio in enumerate(twilios):
        twilio.n = 1000 * i  # CallSids of its own: the workers share one store
        # a worker's first call starts its sync thread (under `ivr serve`: right after the fork)
        assert "挂失银行卡请按2" in "".join(twilio.call().said())
    watcher = FlowWatcher(workers[0].extensions["ivr"].store, url, [path])
    with caplog.at_level(logging.INFO, logger="ivr.flows"):
        edit(path, "挂失银行卡请按2", "银行卡挂失请按2")
        assert watcher.check() == [path]  # the good edit: validated in a child `ivr publish`, published
        edit(path, "next: main_menu", "next: nowhere")
        assert watcher.check() == [path]  # the broken edit: refused, logged
    logged = [r.getMessage() for r in caplog.records if r.name == "ivr.flows"]
    assert any(m.startswith(f"published {path}: flow 'bank_hotline'") for m in logged), logged
    refused = [m for m in logged if "is invalid: not published" in m]
    assert len(refused) == 1 and f"{path}:" in refused[0] and "Traceback" not in refused[0], logged
    published = workers[0].extensions["ivr"].store.published_flows()["bank_hotline"]
    deadline = time.monotonic() + 1.2  # each worker's sync thread reads the published version at least twice a second
    while any(worker.extensions["ivr"].registry.for_new_call().loaded.version != published for worker in workers):
        assert time.monotonic() < deadline, "every worker adopts the published version within 1.2 s"
        time.sleep(0.02)
    for n in range(6):
        said = "".join(twilios[n % 3].call().said())
        assert "银行卡挂失请按2" in said, f"call {n} on worker {n % 3}"


def test_ivr_publish_refuses_an_invalid_flow_and_names_the_line(tmp_path, ivr):
    # in this process; `ivr publish` in a process of its own is what the flow watcher runs, for a good
    # and a broken edit, in test_every_worker_serves_the_published_version
    path = flows_copy(tmp_path)
    url = f"sqlite:///{tmp_path}/calls.db"
    edit(path, "next: main_menu", "next: nowhere")
    done = ivr("publish", str(path), "--store", url)
    assert done.returncode == 1 and "not published" in done.stderr and "Traceback" not in done.stderr
    assert f"{path}:" in done.stderr and "nowhere" in done.stderr  # names the line
    assert open_store(url).published_flows() == {}
    edit(path, "next: nowhere", "next: main_menu")
    done = ivr("publish", str(path), "--store", url)
    assert done.returncode == 0 and "published" in done.stdout
    assert list(open_store(url).published_flows()) == ["bank_hotline"]


def test_calls_in_progress_keep_their_pinned_version_after_a_publish(tmp_path):
    from ivr.call.registry import publish_file

    path = flows_copy(tmp_path)
    app = create_app([str(path)], store=f"sqlite:///{tmp_path}/calls.db", auth_token=TOKEN)
    twilio = Twilio(app)
    before = twilio.call()
    edit(path, "挂失银行卡请按2", "银行卡挂失请按2")
    publish_file(app.extensions["ivr"].store, path)
    app.extensions["ivr"].registry.sync()
    assert "挂失银行卡请按2" in "".join(before.said(before.gather(Digits="9")))
    assert "银行卡挂失请按2" in "".join(twilio.call().said())


# --- 7. calls whose end never came are closed as lost -------------------------------------------

def test_idle_limit_comes_from_the_flows():
    from ivr.call.reconcile import idle_limit
    from ivr.flow import load_flow

    flow = load_flow(FLOWS / "bank_hotline.yaml").flow
    limit = idle_limit([flow])
    # hold limit 1m + ring limit 30s + recording 2m + listening windows: longer than any step, not hours
    assert 60 + 30 + 120 + 10 < limit < 3600


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_end_call_with_expected_turn_is_compare_and_set(kind, tmp_path, request):
    from ivr.store import MemoryStore
    from ivr.store.sqlite import SqliteStore

    if kind == "redis":
        import uuid

        from ivr.store.redis import RedisStore
        store = RedisStore(request.getfixturevalue("redis_url"), prefix=f"test:{uuid.uuid4().hex}:")
    else:
        store = MemoryStore() if kind == "memory" else SqliteStore(str(tmp_path / "c.db"), checkpoint_every=0)
    state = {"turn": 0, "flow": "f", "ended": False}
    store.start("CA1", state, "<Response/>", [])
    assert not store.end_call("CA1", {**state, "turn": 2, "ended": True}, [{"kind": "note"}], expected_turn=1)
    assert not store.end_call("CA9", {**state, "turn": 1, "ended": True}, [], expected_turn=0)
    assert store.load("CA9") is None and store.load("CA1").turn == 0
    assert store.end_call("CA1", {**state, "turn": 1, "ended": True}, [{"kind": "note"}], expected_turn=0)
    assert store.load("CA1").state["ended"] and store.stale_calls(-60) == []
    assert not store.end_call("CA1", {**state, "turn": 1, "ended": True}, [], expected_turn=0), "closed once only"


def test_a_call_whose_status_callback_was_lost_is_closed_and_reported(tmp_path):
    from ivr.call.reconcile import reconcile
    from ivr.etiquette.report import load_cards, summarise

    url = f"sqlite:///{tmp_path}/calls.db"
    app = create_app([str(FLOWS / "bank_hotline.yaml")], store=url, auth_token=TOKEN)
    twilio = Twilio(app)
    quiet, holding, finished = twilio.call(), twilio.call(), twilio.call()
    holding.gather(Digits="1")
    holding.gather(Digits="1")  # on hold: perhaps talking to an agent, sends nothing until that ends
    twilio.post("/twilio/status", {**finished.common, "CallStatus": "completed", "CallDuration": "9"})
    store = app.extensions["ivr"].store
    assert reconcile(store, 600) == [], "nothing is idle yet"
    assert reconcile(store, -1) == [quiet.sid], "a call on hold may be bridged: not closed before 4 hours"
    assert reconcile(store, -1) == [], "closed once"
    cards = {c["call_sid"]: c for c in load_cards(url)}
    assert cards[quiet.sid]["lost"] and "lost" in cards[quiet.sid]["flags"]
    assert not cards[quiet.sid]["in_progress"] and cards[quiet.sid]["end_status"] == "lost"
    assert summarise(list(cards.values()))["bank_hotline"]["lost"] == 1
    # a late webhook of the closed call leaves it closed and gets a hang-up
    xml = quiet.gather(Digits="1")
    assert [c.tag for c in xml] == ["Hangup"]
    assert reconcile(store, -4 * 3600 - 10) == [holding.sid]


def test_ivr_reconcile_command(tmp_path):
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/calls.db"
    twilio = Twilio(create_app([str(FLOWS / "bank_hotline.yaml")], store=url, auth_token=TOKEN))
    call = twilio.call()
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "reconcile", "--store", url, "--idle", "-1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "1 call(s) closed as lost" in done.stdout and call.sid in done.stdout


def test_a_reconciler_round_with_the_store_down_is_one_log_line_not_a_traceback(caplog):
    """In an outage every round fails: each says so in one line (a traceback per round buried the log)."""
    from harness import RedisServer

    from ivr.call.every import Every
    from ivr.call.reconcile import reconcile
    from ivr.store.redis import RedisStore

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    server = RedisServer().start()
    store = RedisStore(server.url)
    server.stop()  # the store goes down: every round fails
    caplog.set_level(logging.WARNING, logger="ivr.call")
    job = Every("reconciler", 0.02, lambda: reconcile(store, 60)).start()
    deadline = time.monotonic() + 5
    while len(caplog.records) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    job.stop()
    rounds = [r for r in caplog.records if r.name == "ivr.call"]
    assert len(rounds) >= 3, "the rounds go on"
    assert all(r.levelname == "WARNING" and r.exc_info is None for r in rounds)
    assert "reconciler: the store failed this round" in rounds[0].getMessage()
