"""Issue 11: perceiving the line from audio (analyser, Media Streams protocol, `ivr line analyse`)."""
from __future__ import annotations

import base64
import gc
import json
import logging
import os
import shutil
import sys
import wave
import weakref
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ivr.media import cli as line_cli
from ivr.media.analyser import (CONDITIONS, FRAME_SAMPLES, LineAnalyser, analyse_pcm, ulaw_decode,
                                ulaw_encode)
from ivr.media.stream import MediaStreams, call_secret, check_call_secret

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))


# -- the analyser on clips it was not tuned on ------------------------------------------------

@pytest.fixture(scope="module")
def corpus(request, tmp_path_factory):
    """The TEST split only: other voices, seeds and noise colours than the thresholds were tuned on.
    The clips are deterministic (seeded), so they are kept in pytest's cache (.pytest_cache) under a
    key made of everything that shapes them: the generator's code, the counts, numpy's version and
    espeak-ng's and sox's. Any change there, or no cache (-p no:cacheprovider), generates them anew."""
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install espeak-ng sox; .ci/run does)")
    import line_corpus

    cache = getattr(request.config, "cache", None)
    if cache is None:
        return line_corpus.generate(tmp_path_factory.mktemp("line_corpus"), line_corpus.SMALL_COUNTS, jobs=2)
    kept = cache.mkdir(f"line_corpus_{corpus_key(line_corpus)}")
    listed = kept / "rows.json"
    if listed.is_file():
        rows = json.loads(listed.read_text(encoding="utf-8"))
        for row in rows:
            row["path"] = str(kept / row["path"])
        if all(Path(row["path"]).is_file() for row in rows):
            return rows
    out = tmp_path_factory.mktemp("line_corpus")
    rows = line_corpus.generate(out, line_corpus.SMALL_COUNTS, jobs=2)
    for row in rows:  # copied in, then listed: a listed clip is always complete
        clip = Path(row["path"])
        (kept / clip.relative_to(out)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, kept / clip.relative_to(out))
    relative = [{**row, "path": str(Path(row["path"]).relative_to(out))} for row in rows]
    partial = kept / f"rows.json.{os.getpid()}"
    partial.write_text(json.dumps(relative, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, listed)
    return rows


def corpus_key(line_corpus) -> str:
    import hashlib
    import subprocess

    from ivr.simulator import line_audio

    parts = [Path(line_corpus.__file__).read_bytes(), Path(line_audio.__file__).read_bytes(),
             repr(line_corpus.SMALL_COUNTS).encode(), np.__version__.encode()]
    for tool in ("espeak-ng", "sox"):
        parts.append(subprocess.run([tool, "--version"], capture_output=True).stdout)
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def read_pcm(path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def test_each_condition_recognised_on_untuned_clips(corpus):
    assert {r["set"] for r in corpus} == {"test"}
    hits: dict[str, list[bool]] = {c: [] for c in CONDITIONS}
    for row in corpus:
        hits[row["cls"]].append(analyse_pcm(read_pcm(row["path"])).condition == row["cls"])
    accuracy = {c: sum(v) / len(v) for c, v in hits.items()}
    assert all(len(v) >= 5 for v in hits.values())
    # the benchmark asks >= 0.9 per class on 36 clips each; CI's bound is looser
    assert all(a >= 0.7 for a in accuracy.values()), accuracy


def test_figures_behind_the_verdict(corpus):
    row = next(r for r in corpus if r["cls"] == "silent" and r.get("kind") == "digital zero")
    report = analyse_pcm(read_pcm(row["path"]))
    assert report.condition == "silent" and report.digital_silence == 1.0
    d = next(r for r in corpus if r["cls"] == "clear")
    rep = analyse_pcm(read_pcm(d["path"])).to_dict()
    assert set(rep) >= {"condition", "speech_dbfs", "noise_dbfs", "snr_db", "reverb_s", "voiced_ratio",
                        "digital_silence"}
    assert rep["speech_dbfs"] > rep["noise_dbfs"]


def test_ulaw_matches_g711():
    assert ulaw_decode(b"\xff\x7f").tolist() == [0, 0]
    assert ulaw_decode(b"\x00\x80").tolist() == [-32124, 32124]
    x = np.arange(-32768, 32768, 7).astype(np.int16)
    assert np.abs(ulaw_decode(ulaw_encode(x)).astype(int) - x).max() <= 1100  # one quantisation step


def test_window_since_and_bounded_ring():
    a = LineAnalyser(max_seconds=1.0)
    loud = (np.sin(np.arange(8000) / 3) * 8000).astype(np.int16)
    a.feed(np.zeros(8000, dtype=np.int16), t_ms=0)
    a.feed(loud, t_ms=1000)
    assert a.frames == 50  # 1 s of 20 ms frames kept, however much was fed
    assert a.verdict(since_ms=1000).digital_silence == 0.0
    assert a.verdict(since_ms=10_000).seconds == 0.0


# -- Twilio Media Streams protocol ------------------------------------------------------------

TOKEN = "test-auth-token"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def start_msg(stream="MZ1", call="CA1", secret=None, fmt=None):
    return json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": stream,
        "start": {"accountSid": "AC1", "streamSid": stream, "callSid": call, "tracks": ["inbound"],
                  "mediaFormat": fmt or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                  "customParameters": {"lineSecret": secret if secret is not None else call_secret(TOKEN, call)}}})


def media_msg(stream="MZ1", chunk=1, samples=None):
    samples = np.zeros(FRAME_SAMPLES, dtype=np.int16) if samples is None else samples
    return json.dumps({"event": "media", "sequenceNumber": str(chunk + 1), "streamSid": stream,
                       "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str((chunk - 1) * 20),
                                 "payload": base64.b64encode(ulaw_encode(samples)).decode()}})


def stop_msg(stream="MZ1", call="CA1"):
    return json.dumps({"event": "stop", "sequenceNumber": "99", "streamSid": stream,
                       "stop": {"accountSid": "AC1", "callSid": call}})


@pytest.fixture
def streams():
    return MediaStreams(auth_token=TOKEN, clock=Clock(), max_streams=3, idle_seconds=10, window_seconds=5)


def test_call_secret_is_hmac_and_checked():
    s = call_secret(TOKEN, "CA1")
    assert check_call_secret(TOKEN, "CA1", s)
    assert not check_call_secret(TOKEN, "CA2", s)
    assert not check_call_secret(TOKEN, "CA1", None) and not check_call_secret(TOKEN, "CA1", "")


def test_valid_sequence_gives_a_verdict(streams):
    assert streams.handle('{"event": "connected", "protocol": "Call", "version": "1.0.0"}').accepted
    assert streams.handle(start_msg()).accepted
    for i in range(1, 151):  # 3 s of digital silence
        streams.clock.t += 0.02
        assert streams.handle(media_msg(chunk=i)).accepted
    assert streams.position_ms("CA1") == 3000
    report = streams.window_verdict("CA1", since_ms=1000)
    assert report.condition == "silent" and report.digital_silence == 1.0 and report.seconds == 2.0
    assert streams.handle(json.dumps({"event": "dtmf", "streamSid": "MZ1", "sequenceNumber": "152",
                                      "dtmf": {"track": "inbound_track", "digit": "5"}})).accepted
    assert streams.digits("CA1")[-1][1] == "5"
    assert streams.handle(json.dumps({"event": "mark", "streamSid": "MZ1", "sequenceNumber": "153",
                                      "mark": {"name": "prompt-1"}})).accepted
    done = streams.handle(stop_msg())
    assert done.accepted and done.close
    assert len(streams) == 0 and streams.window_verdict("CA1") is None


@pytest.mark.parametrize("text, reason", [
    ("{not json", "malformed JSON"),
    (b"\xff\xfe", "not UTF-8 text"),
    ("[1, 2]", "no event"),
    ('{"event": "media"}', "no streamSid"),
    ("x" * 100_000, "message too long"),
])
def test_malformed_messages_dropped_with_a_log_line(streams, caplog, text, reason):
    with caplog.at_level(logging.WARNING, logger="ivr.media.stream"):
        result = streams.handle(text)
    assert not result.accepted and result.reason == reason
    assert len([r for r in caplog.records if reason in r.getMessage()]) == 1


def test_bad_media_and_unknown_streams(streams, caplog):
    streams.handle(start_msg())
    assert streams.handle(media_msg(stream="MZ404")).reason == "unknown stream"
    bad = json.loads(media_msg())
    bad["media"]["payload"] = "***"
    assert streams.handle(json.dumps(bad)).reason == "payload is not base64"
    bad["media"] = "nope"
    assert streams.handle(json.dumps(bad)).reason == "media without media{}"
    assert streams.handle('{"event": "dance", "streamSid": "MZ1"}').reason == "unknown event"
    assert len(streams) == 1  # the stream survives bad messages


def test_start_must_authenticate(streams):
    result = streams.handle(start_msg(secret="forged"))
    assert not result.accepted and result.close and len(streams) == 0
    assert streams.handle(start_msg(fmt={"encoding": "audio/l16", "sampleRate": 16000})).close


def test_media_after_stop_and_after_call_ended(streams, caplog):
    streams.handle(start_msg())
    streams.handle(stop_msg())
    with caplog.at_level(logging.WARNING, logger="ivr.media.stream"):
        for i in range(5):
            assert streams.handle(media_msg(chunk=i + 1)).reason == "stream stopped"
    assert len([r for r in caplog.records if "stream stopped" in r.getMessage()]) == 1  # one line, not five
    streams.handle(start_msg(stream="MZ2", call="CA2"))
    streams.end_call("CA2")
    assert streams.handle(media_msg(stream="MZ2")).reason == "stream call ended"
    assert not streams.handle(start_msg(stream="MZ3", call="CA2")).accepted  # a dead call cannot restart
    assert len(streams) == 0


def test_flood_is_bounded(streams):
    streams.handle(start_msg())
    results = [streams.handle(media_msg(chunk=i + 1)) for i in range(1000)]  # 20 s of audio, no time passing
    accepted = sum(r.accepted for r in results)
    assert accepted <= 101 + 1  # 2 s of slack at 20 ms
    assert {r.reason for r in results if not r.accepted} == {"flood (faster than real time)"}
    s = streams._streams["MZ1"]
    assert s.analyser.frames <= s.analyser.capacity


def test_idle_stream_dropped_and_memory_freed(streams):
    streams.handle(start_msg())
    analyser = weakref.ref(streams._streams["MZ1"].analyser)
    streams.handle(start_msg(stream="MZ2", call="CA2"))
    streams.clock.t += 5
    streams.handle(media_msg(stream="MZ2"))  # MZ2 keeps talking, MZ1 never sends stop
    streams.clock.t += 6
    streams.handle(media_msg(stream="MZ2"))
    assert streams.stream_for("CA1") is None and streams.stream_for("CA2") == "MZ2"
    gc.collect()
    assert analyser() is None  # nothing of MZ1 is kept alive


def test_too_many_streams(streams):
    for i in range(3):
        assert streams.handle(start_msg(stream=f"MZ{i}", call=f"CA{i}")).accepted
    assert streams.handle(start_msg(stream="MZ9", call="CA9")).reason == "too many streams"


def test_handle_never_raises(streams):
    for text in ['{"event": "start", "streamSid": "MZ1", "start": null}', '{"event": 5}', "null", "",
                 '{"event": "media", "streamSid": "MZ1", "media": {"payload": 5}}', None, 12]:
        assert streams.handle(text).accepted is False


# -- ivr line analyse --------------------------------------------------------------------------

def _wav(path: Path, x: np.ndarray, rate: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(x, channels).astype(np.int16).tobytes())
    return path


def test_cli_analyses_a_wav_at_any_rate(tmp_path, capsys):
    t = np.arange(int(44100 * 2)) / 44100
    tone = (np.sin(2 * np.pi * 440 * t) * 3000 * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.int16)
    path = _wav(tmp_path / "stereo.wav", tone, 44100, channels=2)
    assert line_cli.run(SimpleNamespace(file=str(path), format="json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["condition"] in CONDITIONS and abs(out["seconds"] - 2.0) < 0.05
    silent = _wav(tmp_path / "zero.wav", np.zeros(16000), 8000)
    assert line_cli.run(SimpleNamespace(file=str(silent), format="text")) == 0
    assert "silent" in capsys.readouterr().out


def test_cli_refuses_non_wav(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("not audio")
    assert line_cli.run(SimpleNamespace(file=str(path), format="text")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a WAV" in err and "Traceback" not in err


def test_cli_registered_in_ivr():
    from ivr.cli import main

    assert main(["line", "analyse", str(REPO / "README.md")]) == 1


def test_upgrade_signature():
    from twilio.request_validator import RequestValidator

    from ivr.media.stream import upgrade_signature_ok

    url = "wss://ivr.example.com/twilio/media"
    good = RequestValidator(TOKEN).compute_signature(url, {})
    assert upgrade_signature_ok(TOKEN, url, good)
    assert not upgrade_signature_ok(TOKEN, url, "forged") and not upgrade_signature_ok(TOKEN, url, None)
