"""`ivr report`: scorecards computed from real call logs, made by driving the real Flask app
into a real SQLite store, as Twilio would (issue: compliance report)."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ivr.etiquette import report as report_module
from ivr.etiquette.report import build_report, format_text, load_cards, render_html, score_call, summarise
from ivr.store import open_store
from ivr.twilio import create_app

REPO = Path(__file__).resolve().parent.parent
FLOW = REPO / "call_flows" / "bank_hotline.yaml"
HOSTILE = "<script>alert(1)</script>"


class Call:
    """One caller, posting unsigned Twilio-shaped forms to the app (auth_token="")."""

    def __init__(self, client, sid: str, caller: str = "+8613700000000"):
        self.client, self.sid = client, sid
        self.common = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": caller, "To": "+861095500",
                       "CallStatus": "in-progress", "Direction": "inbound"}
        self.xml = self.post("/twilio/voice", {})

    def post(self, url: str, params: dict):
        response = self.client.post(url, data={**self.common, **params})
        assert response.status_code == 200, response.data
        return ET.fromstring(response.data)

    def follow(self, tag: str, **params):
        """Post to the action URL of the <tag> in the last answer (Gather, Dial, Enqueue, Record)."""
        element = self.xml.find(tag)
        assert element is not None, f"no <{tag}> in {ET.tostring(self.xml, encoding='unicode')}"
        self.xml = self.post(element.get("action") or element.text, params)
        return self.xml

    def gather(self, **params):
        return self.follow("Gather", **params)

    def hold_wait(self, queue_time: int):
        return self.post(self.xml.find("Enqueue").get("waitUrl"), {"QueueTime": str(queue_time)})

    def goodbye_pause_over(self):
        self.xml = self.post(self.xml.find("Redirect").text, {})
        assert [c.tag for c in self.xml] == ["Hangup"]

    def hang_up(self, duration: int = 60):
        self.post("/twilio/status", {"CallStatus": "completed", "CallDuration": str(duration)})


def sid(n: int) -> str:
    return f"CA{n:032x}"


def drive_calls(store_url: str) -> dict[str, str]:
    """The calls a manager would want told apart; returns {name: CallSid}."""
    client = create_app([str(FLOW)], store=store_url, auth_token="").test_client()
    sids = {}

    # 1. hold within its promise, taken off hold by an agent; we say goodbye and hang up after the pause
    c = Call(client, sid(1))
    c.gather(Digits="1")
    c.gather(SpeechResult="好的", Confidence="0.92")
    c.hold_wait(0)
    c.hold_wait(30)
    c.post("/twilio/hold/return", {"QueueTime": "40"})
    c.follow("Enqueue", QueueResult="bridged", QueueTime="40")
    c.gather(Digits="2")
    c.goodbye_pause_over()
    c.hang_up()
    sids["hold_ok"] = c.sid

    # 2. hold at its limit: Twilio reports 61 s on a 60 s promise; the caller asks for a call back
    #    and hangs up during the goodbye pause
    c = Call(client, sid(2))
    c.gather(Digits="1")
    c.gather(Digits="1")
    for t in (0, 30, 60):
        c.hold_wait(t)
    c.follow("Enqueue", QueueResult="leave", QueueTime="61")
    c.gather(Digits="2")
    c.hang_up()
    sids["hold_breach"] = c.sid

    # 3. warm transfer, agent accepts
    c = Call(client, sid(3), caller="+8613800138000")
    c.gather(Digits="0")
    c.gather(Digits="1")
    number = c.xml.find("Dial").find("Sip")
    agent = {"CallSid": "CA" + "f" * 32, "ParentCallSid": c.sid, "Direction": "outbound-dial"}
    whisper = c.post(number.get("url"), agent)
    c.post(whisper.find("Gather").get("action"), {**agent, "Digits": "1"})
    c.follow("Dial", DialCallStatus="completed", DialCallDuration="95")
    c.gather(Digits="2")
    c.goodbye_pause_over()
    c.hang_up()
    sids["transfer_ok"] = c.sid

    # 4. transfer nobody answers: apology, the caller leaves a message, then hangs up during the goodbye pause
    c = Call(client, sid(4))
    c.gather(Digits="0")
    c.gather(SpeechResult="可以", Confidence="0.9")
    c.follow("Dial", DialCallStatus="no-answer")
    c.gather(Digits="2")
    c.follow("Record", RecordingUrl="https://api.twilio.com/rec/RE4", RecordingDuration="12")
    c.hang_up()
    sids["transfer_no_answer"] = c.sid

    # 5. the caller says no to the transfer, then hangs up at the menu (before any goodbye)
    c = Call(client, sid(5))
    c.gather(Digits="0")
    c.gather(SpeechResult="不用了", Confidence="0.9")
    c.hang_up()
    sids["transfer_refused"] = c.sid

    # 6. silent line (E2): retry, final words, the engine hangs up
    c = Call(client, sid(6))
    c.gather()
    c.gather()
    c.gather()
    assert [e.tag for e in c.xml] == ["Hangup"]
    c.hang_up()
    sids["silent"] = c.sid

    # 7. hostile speech not understood, then a complaint; the caller hangs up during the goodbye pause
    c = Call(client, sid(7))
    c.gather(SpeechResult=HOSTILE, Confidence="0.95")
    c.gather(Digits="3")
    c.follow("Record", RecordingUrl="javascript:alert(2)", RecordingDuration="30")
    c.gather(Digits="2")
    c.hang_up()
    sids["complaint"] = c.sid

    # 8. the caller drops while on hold (E12)
    c = Call(client, sid(8))
    c.gather(Digits="1")
    c.gather(Digits="1")
    c.hold_wait(0)
    c.hold_wait(30)
    c.hold_wait(45)
    c.hang_up()
    sids["dropped"] = c.sid

    # 9. still talking: greeted, nothing else yet
    c = Call(client, sid(9))
    sids["in_progress"] = c.sid
    return sids


@pytest.fixture(scope="module")
def store_url(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('report')}/calls.db"


@pytest.fixture(scope="module")
def sids(store_url):
    return drive_calls(store_url)


@pytest.fixture(scope="module")
def cards(store_url, sids):
    store = open_store(store_url)
    return {name: score_call(store.call_log(s), s) for name, s in sids.items()}


@pytest.fixture(scope="module")
def report(store_url, sids):
    return build_report(load_cards(store_url), store_url)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ivr.cli", "report", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


# --- one call -------------------------------------------------------------------------------

def test_greeting_is_timed_for_every_call(cards):
    for card in cards.values():
        assert card["flow"] == "bank_hotline" and card["greeted"]
        assert card["greeting"].endswith("请问有什么可以帮助您?")
        assert card["time_to_greeting_s"] == 0.0   # the greeting is in the answer to the first request


def test_hold_within_promise(cards):
    card = cards["hold_ok"]
    assert card["holds"] == [{"step": "account_enquiry", "promised": 60.0, "waited": 40.0, "estimated": False,
                              "result": "served", "breach": False, "over_by": -20.0, "check_ins": [30.0],
                              "longest_gap": 30.0, "consent": True}]
    assert card["hold_breaches"] == 0 and card["flags"] == []
    assert card["goodbye"] is True and card["hung_up_first"] == "engine"


def test_hold_over_its_promise_is_a_breach(cards):
    card = cards["hold_breach"]
    (hold,) = card["holds"]
    assert (hold["waited"], hold["promised"], hold["result"], hold["breach"]) == (61.0, 60.0, "limit", True)
    assert hold["over_by"] == 1.0 and hold["longest_gap"] == 31.0
    assert card["hold_breaches"] == 1 and "breach" in card["flags"]
    assert card["call_back_requested"]
    assert card["goodbye"] is True and card["hung_up_first"] == "caller"   # during the goodbye pause


def test_transfers_consent_and_outcome(cards):
    ok = cards["transfer_ok"]["transfers"]
    assert [(t["consent"], t["outcome"], t["agent_accepted"]) for t in ok] == [(True, "connected", True)]
    assert ok[0]["to"] == "sip:agents@pbx.huaxia-demo-bank.example.com" and ok[0]["ring_limit"] == 30
    unanswered = cards["transfer_no_answer"]
    assert [(t["consent"], t["outcome"]) for t in unanswered["transfers"]] == [(True, "no_answer")]
    assert [m["url"] for m in unanswered["messages"]] == ["https://api.twilio.com/rec/RE4"]
    assert unanswered["complaints"] == []
    refused = cards["transfer_refused"]
    assert [(t["consent"], t["outcome"]) for t in refused["transfers"]] == [(False, "no-consent")]
    assert refused["consents"] == [{"step": "agent", "kind": "transfer", "given": False}]


def test_who_hung_up_first_and_goodbye(cards):
    assert cards["transfer_no_answer"]["hung_up_first"] == "caller"
    refused = cards["transfer_refused"]
    assert refused["hung_up_first"] == "caller, before goodbye" and refused["goodbye"] is False
    assert refused["flags"] == [] and refused["dropped"] == []


def test_silent_line_retries_then_final_words_then_hang_up(cards):
    card = cards["silent"]
    assert card["retries"] == {"silence": 1, "quiet": 0, "speakerphone": 0, "noisy": 0, "not_understood": 0}
    assert (card["silent_retries"], card["unclear_retries"]) == (1, 0)
    assert card["final_words"] == ["silence"]
    assert card["goodbye"] is True and card["hung_up_first"] == "engine"


def test_unclear_speech_retry_and_complaint(cards):
    card = cards["complaint"]
    assert card["retries"]["not_understood"] == 1 and card["unclear_retries"] == 1
    assert [c["seconds"] for c in card["complaints"]] == [30.0]
    assert card["hung_up_first"] == "caller" and card["goodbye"] is True
    assert card["caller_input"][0].startswith("“" + HOSTILE)


def test_drop_during_hold(cards):
    card = cards["dropped"]
    # the caller hung up on hold (the call ended "completed"): counted apart from a dropped call
    assert card["dropped"] == [] and card["hung_up_on_hold"] == [{"step": "account_enquiry", "waited": 45.0}]
    (hold,) = card["holds"]
    assert hold["result"] == "hung up" and hold["estimated"] and hold["waited"] >= 45
    assert hold["breach"] is False and hold["check_ins"] == [30.0, 45.0]
    assert card["hung_up_first"] == "caller, before goodbye" and card["flags"] == ["hung up on hold"]


def test_call_in_progress_is_marked(cards):
    card = cards["in_progress"]
    assert card["in_progress"] and card["flags"] == ["in progress"]
    assert card["goodbye"] is None and card["hung_up_first"] is None and card["end_status"] is None


def test_fallback_apology_is_counted(tmp_path):
    url = f"sqlite:///{tmp_path}/calls.db"
    client = create_app([str(FLOW)], store=url, auth_token="").test_client()
    c = Call(client, sid(99))
    # a URL no TwiML of ours contains no longer ends the call (issue 12 item 4): break the call's row instead
    import sqlite3
    with sqlite3.connect(tmp_path / "calls.db") as db:
        db.execute("UPDATE calls SET state = '{not json' WHERE call_sid = ?", (sid(99),))
    c.gather(Digits="1")
    (card,) = load_cards(url)
    assert card["fallbacks"] == 1 and "fallback" in card["flags"]
    assert summarise([card])["bank_hotline"]["fallbacks"] == 1


def test_a_log_without_notes_scores_without_error():
    card = score_call([{"kind": "request", "path": "/twilio/voice", "params": {"CallSid": "CA1"}, "t": 1.0}])
    assert card["call_sid"] == "CA1" and card["in_progress"] and not card["greeted"]
    assert card["time_to_greeting_s"] is None


def test_a_tampered_log_scores_without_error():
    junk = [{"kind": "request", "path": 3, "params": "CallSid=x", "t": "soon"}, "not a dict",
            {"fact": "retry", "ladder": None}, {"fact": "hold_started", "promised": "a minute", "t": None},
            {"kind": "request", "params": {"QueueTime": "nan"}}, {"fact": "hold_ended", "waited": "inf"},
            {"fact": "consent", "given": "yes"}, {"fact": "transfer_started", "ring_limit": []},
            {"fact": "hung_up", "by": "\x1b[31mmallory", "after_goodbye": 1}, {"fact": "call_ended"}]
    card = score_call(junk, "CAjunk")
    assert card["holds"][0]["waited"] is None and card["holds"][0]["breach"] is None
    assert card["transfers"][0]["outcome"] == "dropped" and card["hung_up_first"] == "engine"
    text = format_text(build_report([card], "memory://"))
    assert "CAjunk" in text and "\x1b" not in report_module.printable(text)


# --- per flow ---------------------------------------------------------------------------------

def test_per_flow_sums(report):
    assert list(report["flows"]) == ["bank_hotline"]
    s = report["flows"]["bank_hotline"]
    assert (s["calls"], s["in_progress"], s["ended"]) == (9, 1, 8)
    assert s["greeted_pct"] == 100.0 and s["mean_time_to_greeting_s"] == 0.0
    assert (s["silent_retries"], s["unclear_retries"]) == (1, 1) and s["retries_per_call"] == 0.22
    assert (s["holds"], s["hold_breaches"]) == (3, 1)
    assert s["mean_promise_s"] == 60.0
    assert (s["hold_consent_asked"], s["hold_consent_given"]) == (3, 3)
    assert s["transfers"] == 2
    assert {k: v for k, v in s["transfers_by_outcome"].items() if v} == {"connected": 1, "no_answer": 1,
                                                                        "no-consent": 1}
    assert (s["transfer_consent_asked"], s["transfer_consent_given"], s["transfer_consent_pct"]) == (3, 2, 66.7)
    assert s["hung_up_first"] == {"caller": 3, "engine": 3, "caller, before goodbye": 2,
                                  "engine, without goodbye": 0}
    assert s["ended_with_goodbye"] == 6 and s["ended_with_goodbye_pct"] == 75.0
    assert s["caller_hung_up_first_pct"] == 62.5
    assert (s["drops"], s["hung_up_on_hold"], s["fallbacks"], s["complaints"], s["call_backs"]) == (0, 1, 0, 1, 1)


def test_summarise_keeps_flows_apart(cards):
    other = {**cards["silent"], "flow": "bank_hotline_en"}
    sums = summarise([cards["hold_ok"], other])
    assert set(sums) == {"bank_hotline", "bank_hotline_en"}
    assert sums["bank_hotline_en"]["silent_retries"] == 1 and sums["bank_hotline"]["holds"] == 1


# --- output ---------------------------------------------------------------------------------

def test_text_table(report, sids):
    text = format_text(report)
    assert "Flow bank_hotline: 9 call(s), 1 in progress" in text
    row = next(line for line in text.splitlines() if line.startswith(sids["hold_breach"]))
    assert "61/60s BREACH" in row and "caller" in row


class Checker(HTMLParser):
    """Well-formed enough: every non-void element closed in order; collects tags and text."""

    VOID = {"meta", "br", "link", "img", "input", "hr"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.text, self.errors = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_well_formed_and_escaped(report):
    html = render_html(report)
    checker = Checker()
    checker.feed(html)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    tags = [t for t, _ in checker.tags]
    assert "script" not in tags, "the hostile speech must not become a <script> element"
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in " ".join(a.get("href", "") for _, a in checker.tags)
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    bars = [a for t, a in checker.tags if t == "rect" and "hold-bar" in a.get("class", "")]
    assert len(bars) == 3 and sum(a["fill"] == "#c62828" for a in bars) == 1   # one bar per hold, breach in red
    assert len([a for t, a in checker.tags if t == "line" and a.get("class") == "promise"]) == 3
    assert tags.count("svg") == 3
    rows = [a.get("class", "") for t, a in checker.tags if t == "tr"]
    assert sum("breach" in c for c in rows) == 1 and sum("dropped" in c for c in rows) == 0


# --- the CLI --------------------------------------------------------------------------------

def test_cli_text(store_url, sids):  # the one `ivr report` run in a process of its own
    done = run_cli("--store", store_url)
    assert done.returncode == 0, done.stderr
    assert "Flow bank_hotline: 9 call(s)" in done.stdout and sids["dropped"] in done.stdout
    assert "Traceback" not in done.stderr


def test_cli_json_and_filters(store_url, sids, ivr):
    done = ivr("report", "--store", store_url, "--format", "json")
    data = json.loads(done.stdout)
    assert set(data) == {"generated", "store", "since", "flow", "flows", "calls"}
    assert len(data["calls"]) == 9 and data["flows"]["bank_hotline"]["hold_breaches"] == 1
    assert ivr("report", "--store", store_url, "--flow", "nope").stdout.startswith("no calls of flow nope")
    later = ivr("report", "--store", store_url, "--since", "2999-01-01")
    assert later.returncode == 0 and later.stdout.startswith("no calls")
    one = json.loads(ivr("report", "--store", store_url, "--format", "json", "--call", sids["hold_breach"]).stdout)
    assert [c["call_sid"] for c in one["calls"]] == [sids["hold_breach"]] and one["timeline"]


def test_cli_call_detail_and_html_file(store_url, sids, tmp_path, ivr):
    detail = ivr("report", "--store", store_url, "--call", sids["hold_breach"])
    assert detail.returncode == 0, detail.stderr
    assert "BREACH by 1 s" in detail.stdout and "Timeline" in detail.stdout and "让您久等了" in detail.stdout
    by_suffix = ivr("report", "--store", store_url, "--call", sids["hold_breach"][-6:])   # tables show SIDs shortened
    assert by_suffix.stdout == detail.stdout
    out = tmp_path / "r.html"
    done = ivr("report", "--store", store_url, "--format", "html", "--out", str(out))
    assert done.returncode == 0 and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_cli_errors_are_one_line(tmp_path, ivr):
    garbage = tmp_path / "not-a-db.db"
    garbage.write_bytes(b"this is not a database" * 100)
    for store in (f"sqlite:///{garbage}", f"sqlite:///{tmp_path}/missing.db", "ftp://nowhere", f"sqlite:///{tmp_path}"):
        done = ivr("report", "--store", store)
        assert done.returncode == 1, (store, done.stdout)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith("ivr report: ")
    assert not (tmp_path / "missing.db").exists(), "a report never creates a store"
    unknown = ivr("report", "--store", f"sqlite:///{garbage}", "--call", "CAnope")
    assert unknown.returncode == 1
    bad_since = ivr("report", "--since", "yesterday-ish")
    assert bad_since.returncode == 2 and "ISO date" in bad_since.stderr


def test_cli_empty_store_says_no_calls(tmp_path, ivr):
    url = f"sqlite:///{tmp_path}/empty.db"
    open_store(url).close()
    done = ivr("report", "--store", url)
    assert done.returncode == 0 and done.stdout.startswith("no calls") and done.stderr == ""
    missing_call = ivr("report", "--store", url, "--call", "CA" + "9" * 32)
    assert missing_call.returncode == 1 and "no log for call" in missing_call.stderr


# --- what the caller waits for the greeting -----------------------------------------------------

def _req(t, path="/twilio/voice"):
    return {"kind": "request", "path": path, "params": {"CallSid": "CA1"}, "t": t}


def _resp(t, twiml, path="/twilio/voice"):
    return {"kind": "response", "path": path, "twiml": twiml, "t": t}


def test_time_to_greeting_is_the_callers_wait_not_our_processing():
    greeting = "<Response><Say>您好</Say></Response>"
    # our own processing inside the first webhook is not what the log measures as the caller's wait
    assert score_call([_req(100.0), _resp(100.0, greeting)])["time_to_greeting_s"] == 0.0
    # a pause before the first word is
    paused = "<Response><Pause length=\"2\"/><Say>您好</Say></Response>"
    assert score_call([_req(100.0), _resp(100.0, paused)])["time_to_greeting_s"] == 2.0
    # so is a greeting that only comes in a later answer (a pause, then a redirect)
    log = [_req(100.0), _resp(100.0, "<Response><Pause length=\"3\"/><Redirect>/twilio/event</Redirect></Response>"),
           _req(103.4, "/twilio/event"), _resp(103.4, greeting, "/twilio/event")]
    assert score_call(log)["time_to_greeting_s"] == 3.4


def test_a_call_cut_off_on_hold_is_a_drop_not_a_hang_up():
    log = [_req(100.0), {"fact": "call_started", "flow": "f", "version": "v", "t": 100.0},
           {"fact": "hold_started", "step": "h", "promised": 60, "t": 101.0},
           {"fact": "hung_up", "by": "caller", "after_goodbye": False, "step": "h", "t": 120.0},
           {"fact": "dropped", "step": "h", "during": "hold", "t": 120.0},
           {"fact": "call_ended", "status": "failed", "duration": 20, "t": 120.0}]
    card = score_call(log)
    assert card["dropped"] == [{"step": "h", "during": "hold"}] and card["hung_up_on_hold"] == []
    assert card["holds"][0]["result"] == "dropped" and "dropped" in card["flags"]
    completed = [*log[:-1], {**log[-1], "status": "completed"}]
    card = score_call(completed)
    assert card["dropped"] == [] and card["hung_up_on_hold"] == [{"step": "h", "waited": 19.0}]


def test_cli_html_goes_to_a_temp_folder_not_the_repo(store_url, sids, ivr):  # ivr: run from the repository
    done = ivr("report", "--store", store_url, "--format", "html")
    assert done.returncode == 0, done.stderr
    written = Path(done.stdout.strip().removeprefix("wrote "))
    assert written.is_file() and REPO not in written.parents and not (REPO / "report.html").exists()
    written.unlink()
