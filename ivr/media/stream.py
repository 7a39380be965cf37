"""Twilio Media Streams, as a pure protocol class: the caller's audio in, a line verdict out.

No web framework here: the WebSocket endpoint (wired by the core team) hands every text
message it receives to :meth:`MediaStreams.handle` and closes the socket when told to.

Message format: Twilio's "Media Streams - WebSocket Messages" reference,
https://www.twilio.com/docs/voice/media-streams/websocket-messages . Twilio sends, in order,
``connected`` (``protocol``, ``version``); ``start`` (``streamSid``; ``start.accountSid``,
``start.callSid``, ``start.tracks``, ``start.mediaFormat`` = ``{"encoding": "audio/x-mulaw",
"sampleRate": 8000, "channels": 1}``, ``start.customParameters`` = the ``<Parameter>``
children of ``<Stream>``); then ``media`` (``media.track``, ``media.chunk``,
``media.timestamp`` = ms since the stream started, ``media.payload`` = base64 μ-law),
``dtmf`` (``dtmf.track``, ``dtmf.digit``) and ``mark`` (``mark.name``) as they happen; and
``stop`` (``stop.accountSid``, ``stop.callSid``). Every message but ``connected`` carries
``streamSid`` and ``sequenceNumber`` (strings). The TwiML is ``<Start><Stream url="wss://..."
track="inbound_track"><Parameter name="lineSecret" value="..."/></Stream></Start>``
(https://www.twilio.com/docs/voice/twiml/stream).

Integration (the API the core team wires)::

    from ivr.media.stream import MediaStreams, add_line_stream, upgrade_signature_ok

    streams = MediaStreams(auth_token=TOKEN)          # one per process; thread-safe

    # TwiML for /twilio/voice, before the first <Gather>:
    add_line_stream(response, "wss://host/twilio/media", call_sid, TOKEN)

    # WebSocket endpoint: optionally check X-Twilio-Signature on the upgrade request
    if not upgrade_signature_ok(TOKEN, "wss://host/twilio/media", headers.get("X-Twilio-Signature")): close
    for text in websocket:
        result = streams.handle(text)                 # never raises
        if result.close:                              # failed authentication, or stop
            break

    # engine, when a listening window opens and when it ends (e.g. on the <Gather> timeout):
    t = streams.position_ms(call_sid)                 # stream time now (None: no audio for this call)
    report = streams.window_verdict(call_sid, since_ms=t)   # LineReport or None
    report.condition  # 'silent' | 'quiet' | 'noisy' | 'speakerphone' | 'clear'; report.to_dict() for logs

    streams.end_call(call_sid)                        # from the status callback: frees the call at once

Bad input is dropped with one log line (per stream and reason; floods are counted, not
logged line by line), never raised: text that is not JSON or not a Twilio message, an
unknown ``streamSid``, audio for a stream that stopped or a call that ended, a start whose
``lineSecret`` is wrong (when an auth token is set), more streams than ``max_streams``,
frames beyond ``flood_factor`` times real time. Memory is bounded: each stream keeps only
``window_seconds`` of per-frame figures (no audio); a stream is dropped on ``stop``, on
:meth:`end_call`, or after ``idle_seconds`` without a message (a stream that never sends
``stop``); the ended-stream memory used to tell "late" from "unknown" is a bounded LRU.
"""
from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ivr.media.analyser import LineAnalyser, LineReport, Thresholds, ulaw_decode

log = logging.getLogger("ivr.media.stream")

SECRET_PARAMETER = "lineSecret"
MAX_MESSAGE_CHARS = 64 * 1024      # a 20 ms media message is ~300 characters
MAX_PAYLOAD_BYTES = 8000           # one second of μ-law in one message is already odd


def call_secret(auth_token: str, call_sid: str) -> str:
    """The per-call secret put in the ``<Parameter name="lineSecret">`` of ``<Stream>``:
    HMAC-SHA256 of the call SID keyed with the account's auth token (hex)."""
    return hmac.new(auth_token.encode(), call_sid.encode(), hashlib.sha256).hexdigest()


def check_call_secret(auth_token: str, call_sid: str, given: object) -> bool:
    """Constant-time check of a ``lineSecret`` parameter for ``call_sid``."""
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(call_secret(auth_token, call_sid).encode(), given.encode())


def upgrade_signature_ok(auth_token: str, url: str, signature: str | None) -> bool:
    """Twilio's ``X-Twilio-Signature`` on the WebSocket upgrade request (the wss URL, no params)."""
    if not signature:
        return False
    from twilio.request_validator import RequestValidator

    return bool(RequestValidator(auth_token).validate(url, {}, signature))


def add_line_stream(response, url: str, call_sid: str, auth_token: str, name: str = "line"):
    """Append ``<Start><Stream track="inbound_track">`` with the per-call secret to a
    ``twilio.twiml.voice_response.VoiceResponse``; returns the response."""
    start = response.start()
    stream = start.stream(url=url, track="inbound_track", name=name)
    stream.parameter(name=SECRET_PARAMETER, value=call_secret(auth_token, call_sid))
    return response


@dataclass(frozen=True)
class Handled:
    """What :meth:`MediaStreams.handle` did with one message."""

    event: str                 # the message's event, or '' when it could not be read
    accepted: bool             # False: dropped (and logged)
    close: bool = False        # the endpoint should close this WebSocket
    stream_sid: str | None = None
    call_sid: str | None = None
    reason: str = ""


@dataclass
class _Stream:
    stream_sid: str
    call_sid: str
    analyser: LineAnalyser
    started: float                              # clock() at start
    last_seen: float
    last_ms: int = 0                            # media.timestamp of the latest frame
    frames: int = 0
    dropped: collections.Counter = field(default_factory=collections.Counter)
    digits: collections.deque = field(default_factory=lambda: collections.deque(maxlen=32))
    marks: collections.deque = field(default_factory=lambda: collections.deque(maxlen=32))


class MediaStreams:
    """Registry of live Media Streams keyed by streamSid (and callSid)."""

    def __init__(self, auth_token: str | None = None, *, max_streams: int = 500, window_seconds: float = 30.0,
                 idle_seconds: float = 15.0, flood_factor: float = 3.0, thresholds: Thresholds | None = None,
                 clock: Callable[[], float] = time.monotonic, ended_memory: int = 1000):
        self.auth_token = auth_token
        self.max_streams = max_streams
        self.window_seconds = window_seconds
        self.idle_seconds = idle_seconds
        self.flood_factor = flood_factor
        self.thresholds = thresholds or Thresholds.load()
        self.clock = clock
        self._streams: dict[str, _Stream] = {}
        self._by_call: dict[str, str] = {}
        self._ended: collections.OrderedDict[str, str] = collections.OrderedDict()  # sid -> why
        self._ended_memory = ended_memory
        self._logged: set[tuple[str, str]] = set()   # (stream or '-', reason) already logged
        self._lock = threading.RLock()
        self._last_sweep = clock()
        self.dropped = collections.Counter()         # reason -> messages dropped, for metrics

    # -- queries -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._streams)

    def stream_for(self, call_sid: str) -> str | None:
        return self._by_call.get(call_sid)

    def position_ms(self, call_sid: str) -> int | None:
        """Stream time (ms) of the latest audio of the call: a ``since_ms`` for a new window."""
        with self._lock:
            s = self._streams.get(self._by_call.get(call_sid, ""))
            return None if s is None else s.last_ms + (20 if s.frames else 0)

    def window_verdict(self, call_sid: str, since_ms: int | None = None) -> LineReport | None:
        """The line's condition over the call's audio at/after ``since_ms`` (stream time),
        or over the whole kept window; None when the call has no live stream."""
        with self._lock:
            s = self._streams.get(self._by_call.get(call_sid, ""))
            return None if s is None else s.analyser.verdict(since_ms)

    def digits(self, call_sid: str) -> list[tuple[int, str]]:
        """DTMF seen on the stream as (stream ms, digit), the latest 32."""
        with self._lock:
            s = self._streams.get(self._by_call.get(call_sid, ""))
            return [] if s is None else list(s.digits)

    # -- lifecycle ---------------------------------------------------------------------
    def end_call(self, call_sid: str) -> None:
        """The call ended (status callback): drop its stream now; later audio is dropped."""
        with self._lock:
            sid = self._by_call.get(call_sid)
            if sid:
                self._drop(sid, "call ended")
            self._remember(call_sid, "call ended")

    def close_stream(self, stream_sid: str, why: str = "socket closed") -> None:
        """The WebSocket carrying a stream closed (with or without ``stop``): drop the stream now."""
        with self._lock:
            if stream_sid in self._streams:
                log.info("stream %s (call %s): %s", stream_sid, self._streams[stream_sid].call_sid, why)
                self._drop(stream_sid, why)

    def sweep(self) -> int:
        """Drop streams idle longer than ``idle_seconds`` (a stream that never sent stop)."""
        with self._lock:
            now = self.clock()
            self._last_sweep = now
            idle = [sid for sid, s in self._streams.items() if now - s.last_seen > self.idle_seconds]
            for sid in idle:
                log.info("stream %s (call %s): no message for %.0f s, dropped", sid,
                         self._streams[sid].call_sid, now - self._streams[sid].last_seen)
                self._drop(sid, "idle")
            return len(idle)

    # -- messages ----------------------------------------------------------------------
    def handle(self, text: str | bytes) -> Handled:
        """Process one WebSocket text message from Twilio. Never raises."""
        try:
            with self._lock:
                if self.clock() - self._last_sweep >= 1.0:
                    self.sweep()
                return self._handle(text)
        except Exception:  # a bug must not take the socket (or the call) down
            log.exception("media stream message could not be handled; dropped")
            return Handled("", False, reason="internal error")

    def _reject(self, reason: str, event: str = "", stream_sid: str | None = None, detail: str = "",
                close: bool = False, call_sid: str | None = None) -> Handled:
        self.dropped[reason] += 1
        key = (stream_sid or "-", reason)
        if key not in self._logged:
            if len(self._logged) > 10_000:
                self._logged.clear()
            self._logged.add(key)
            log.warning("media stream %s: %s message dropped: %s%s", stream_sid or "-", event or "?", reason,
                        f" ({detail})" if detail else "")
        s = self._streams.get(stream_sid or "")
        if s is not None:
            s.dropped[reason] += 1
        return Handled(event, False, close, stream_sid, call_sid, reason)

    def _handle(self, text: str | bytes) -> Handled:
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError:
                return self._reject("not UTF-8 text")
        if not isinstance(text, str):
            return self._reject("not text")
        if len(text) > MAX_MESSAGE_CHARS:
            return self._reject("message too long", detail=f"{len(text)} characters")
        try:
            msg = json.loads(text)
        except ValueError as exc:
            return self._reject("malformed JSON", detail=str(exc)[:80])
        if not isinstance(msg, dict) or not isinstance(msg.get("event"), str):
            return self._reject("no event")
        event = msg["event"]
        if event == "connected":
            return Handled(event, True)
        sid = msg.get("streamSid")
        if not isinstance(sid, str) or not sid:
            return self._reject("no streamSid", event)
        if event == "start":
            return self._start(msg, sid)
        stream = self._streams.get(sid)
        if stream is None:
            why = self._ended.get(sid)
            return self._reject(f"stream {why}" if why else "unknown stream", event, sid)
        stream.last_seen = self.clock()
        if event == "media":
            return self._media(msg, stream)
        if event == "stop":
            call = stream.call_sid
            log.info("stream %s (call %s) stopped after %d frames%s", sid, call, stream.frames,
                     f"; dropped {dict(stream.dropped)}" if stream.dropped else "")
            self._drop(sid, "stopped")
            return Handled(event, True, True, sid, call)
        if event == "dtmf":
            body = msg.get("dtmf")
            digit = body.get("digit") if isinstance(body, dict) else None
            if not isinstance(digit, str) or len(digit) != 1 or digit not in "0123456789*#ABCD":
                return self._reject("bad dtmf", event, sid)
            stream.digits.append((stream.last_ms, digit))
            return Handled(event, True, False, sid, stream.call_sid)
        if event == "mark":
            body = msg.get("mark")
            name = body.get("name") if isinstance(body, dict) else None
            if not isinstance(name, str):
                return self._reject("bad mark", event, sid)
            stream.marks.append((stream.last_ms, name[:100]))
            return Handled(event, True, False, sid, stream.call_sid)
        return self._reject("unknown event", event[:30], sid)

    def _start(self, msg: dict, sid: str) -> Handled:
        body = msg.get("start")
        if not isinstance(body, dict):
            return self._reject("start without start{}", "start", sid)
        call = body.get("callSid")
        if not isinstance(call, str) or not call:
            return self._reject("start without callSid", "start", sid, close=True)
        if sid in self._streams:
            return self._reject("stream already started", "start", sid)
        if call in self._ended:
            return self._reject(f"call {self._ended[call]}", "start", sid, close=True, call_sid=call)
        fmt = body.get("mediaFormat") or {}
        if not isinstance(fmt, dict) or fmt.get("encoding") != "audio/x-mulaw" or fmt.get("sampleRate") != 8000 \
                or fmt.get("channels", 1) != 1:
            return self._reject("unsupported mediaFormat", "start", sid, detail=str(fmt)[:80], close=True,
                                call_sid=call)
        if self.auth_token is not None:
            params = body.get("customParameters")
            given = params.get(SECRET_PARAMETER) if isinstance(params, dict) else None
            if not check_call_secret(self.auth_token, call, given):
                return self._reject("authentication failed (lineSecret)", "start", sid, close=True, call_sid=call)
        if len(self._streams) >= self.max_streams:
            return self._reject("too many streams", "start", sid, detail=f"max {self.max_streams}", close=True,
                                call_sid=call)
        old = self._by_call.get(call)
        if old:  # a call re-started its stream: the new one replaces it
            self._drop(old, "replaced")
        now = self.clock()
        self._streams[sid] = _Stream(sid, call, LineAnalyser(self.thresholds, max_seconds=self.window_seconds),
                                     now, now)
        self._by_call[call] = sid
        log.info("stream %s started for call %s", sid, call)
        return Handled("start", True, False, sid, call)

    def _media(self, msg: dict, stream: _Stream) -> Handled:
        sid = stream.stream_sid
        body = msg.get("media")
        if not isinstance(body, dict):
            return self._reject("media without media{}", "media", sid)
        if body.get("track", "inbound") != "inbound":
            return Handled("media", True, False, sid, stream.call_sid, "not the inbound track: ignored")
        payload = body.get("payload")
        if not isinstance(payload, str) or not payload or len(payload) > MAX_PAYLOAD_BYTES * 4 // 3 + 4:
            return self._reject("bad payload", "media", sid)
        try:
            audio = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return self._reject("payload is not base64", "media", sid)
        try:
            t_ms = int(body.get("timestamp"))
        except (TypeError, ValueError):
            t_ms = stream.last_ms + (20 if stream.frames else 0)
        # a flood: more audio than flood_factor x the wall time since start (plus 2 s of slack)
        elapsed = self.clock() - stream.started
        if stream.frames * 0.02 > self.flood_factor * elapsed + 2.0:
            return self._reject("flood (faster than real time)", "media", sid)
        if t_ms < 0 or t_ms > 6 * 3600 * 1000:
            return self._reject("timestamp out of range", "media", sid)
        stream.analyser.feed(ulaw_decode(audio), t_ms=t_ms)
        stream.last_ms = max(stream.last_ms, t_ms + len(audio) // 8 - 20)
        stream.frames += max(1, len(audio) // 160)
        return Handled("media", True, False, sid, stream.call_sid)

    def _remember(self, sid: str, why: str) -> None:
        self._ended[sid] = why
        self._ended.move_to_end(sid)
        while len(self._ended) > self._ended_memory:
            self._ended.popitem(last=False)

    def _drop(self, sid: str, why: str) -> None:
        stream = self._streams.pop(sid, None)
        if stream is None:
            return
        if self._by_call.get(stream.call_sid) == sid:
            del self._by_call[stream.call_sid]
        self._remember(sid, why)
        self._logged = {k for k in self._logged if k[0] != sid}
