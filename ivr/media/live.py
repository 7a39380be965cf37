"""The caller's audio on a live call (issue 11): a Twilio Media Stream in, a line verdict per
listening window into the call store, and the join with the next webhook.

Twilio's reference is the contract:

- ``<Start><Stream url="wss://..." track="inbound_track">`` with ``<Parameter>`` children forks
  the caller's audio to our WebSocket for the rest of the call; only ``wss`` URLs are accepted
  (error 31922) and the URL carries no query string: custom data goes in ``<Parameter>``, which
  Twilio hands back in the ``start`` message's ``customParameters``.
  https://www.twilio.com/docs/voice/twiml/stream
- Messages: ``connected``, ``start`` (``streamSid``, ``callSid``, ``tracks``, ``mediaFormat``
  audio/x-mulaw 8000 Hz mono, ``customParameters``), ``media`` (``track``, ``chunk``,
  ``timestamp`` ms since the stream started, ``payload`` base64 μ-law, 20 ms a message), ``dtmf``,
  ``mark`` and ``stop``. https://www.twilio.com/docs/voice/media-streams/websocket-messages
- The upgrade request carries ``X-Twilio-Signature``, computed as for webhooks over the wss URL
  with no POST parameters. https://www.twilio.com/docs/usage/webhooks/webhooks-security
- A unidirectional stream (``<Start>``) cannot send anything back: ``mark`` messages echo marks
  WE send on a bidirectional ``<Connect><Stream>``, which would take the call away from TwiML.
  So windows cannot be marked in-band; they are marked by the call's turn, below.

Authentication, two layers: a ``X-Twilio-Signature`` on the upgrade must be valid (403 before the
handshake otherwise); and every stream's ``start`` must carry the per-call ``lineSecret``
parameter (an HMAC of the CallSid under the auth token, ivr.media.stream.call_secret), without
which the socket is closed before any audio is taken. Nobody without the auth token can feed
audio into a call.

How a window's verdict reaches the engine (the join)
----------------------------------------------------
A listening window is the time a ``<Gather>`` plays and listens: it starts when Twilio starts
the TwiML answered at turn ``t`` and ends when Twilio posts the Gather's action URL, which carries
``t``. The WebSocket and that webhook may be served by different workers or hosts, so they meet
in the call store:

1. the stream side (:class:`StreamConnection`) files the verdict of the audio heard since its
   window began with ``store.put_line(call, None, record)`` every ``publish_every_ms`` of audio
   (and at ``stop``). ``None`` files it under the call's stored turn, in the same round trip:
   that IS the window the next webhook asks for. When the turn it is filed under changes, the
   call has moved on: the new window starts where the last verdict ended (at most one publishing
   period late, during the prompt, when the caller listens) and is re-filed from there;
2. the webhook of turn ``t`` (:func:`line_for`) reads ``store.get_line(call, t)``. A record
   published at most ``fresh_s`` before the webhook arrived covers the window; an older one means
   the stream lags: it reads again every 20 ms for at most ``wait_s`` (150 ms). No record at all
   means no audio for this window (no stream, the WebSocket down): no wait.

Without a usable record the engine gets no ``line`` and decides from the transcription alone,
exactly as before (one log line says why): never worse for the caller.
Records carry the publisher's wall time: hosts must keep their clocks in sync (NTP), as any
deployment behind one load balancer does.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Callable
from urllib.parse import urlsplit

from twilio.twiml.voice_response import VoiceResponse

from ivr.engine import events as ev
from ivr.media.analyser import CONDITIONS
from ivr.media.stream import MediaStreams, add_line_stream, call_secret, upgrade_signature_ok
from ivr.store import CallStore, StoreError

SECRET_MARK = "LINExSECRETxMARK"  # filled in per call by LineService.start_tag

log = logging.getLogger("ivr.media.live")

STREAM_PATH = "/twilio/stream"
PUBLISH_EVERY_MS = 80      # stream audio between two verdicts filed in the store
MIN_SECONDS = 0.5          # less audio than this in a window says nothing about the line
JOIN_WAIT_S = 0.15         # longest a webhook waits for a lagging stream
FRESH_S = 0.3              # a verdict published this long before the webhook still covers its window
IDLE_SECONDS = 15.0        # a socket silent this long is closed (a stream that never sends stop)


class LineService:
    """What one process needs for the caller's audio: the stream registry, the store, the auth."""

    def __init__(self, store: CallStore, auth_token: str | None, public_url: str | None = None, *,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 publish_every_ms: int = PUBLISH_EVERY_MS, idle_seconds: float = IDLE_SECONDS, **stream_options):
        self.store, self.auth_token = store, auth_token
        self.public_url = (public_url or "").rstrip("/")
        self.wall, self.publish_every_ms, self.idle_seconds = wall, publish_every_ms, idle_seconds
        self.streams = MediaStreams(auth_token, clock=clock, idle_seconds=idle_seconds, **stream_options)
        self._start_tags: dict[str, str] = {}  # host -> <Start> with SECRET_MARK for the call's secret

    # --- TwiML: every call starts its stream ------------------------------------------------
    def stream_url(self, host: str) -> str:
        """Where Twilio connects: wss only (Twilio error 31922 for any other scheme)."""
        if self.public_url:
            parts = urlsplit(self.public_url)
            return f"wss://{parts.netloc}{parts.path}{STREAM_PATH}"
        return f"wss://{host}{STREAM_PATH}"

    def start_tag(self, call_sid: str, host: str) -> str:
        """``<Start><Stream ...><Parameter name="lineSecret" .../></Stream></Start>`` for one call, made
        with the twilio library once per host (inner XML of a VoiceResponse); each call fills in its own
        secret (hex digits: nothing to escape)."""
        template = self._start_tags.get(host)
        if template is None:
            response = add_line_stream(VoiceResponse(), self.stream_url(host), SECRET_MARK, SECRET_MARK)
            xml = str(response)
            template = xml[xml.index("<Response>") + len("<Response>"):xml.rindex("</Response>")]
            template = template.replace(call_secret(SECRET_MARK, SECRET_MARK), SECRET_MARK)
            if len(self._start_tags) < 64:  # a few hosts at most; a hostile Host header cannot grow it
                self._start_tags[host] = template
        return template.replace(SECRET_MARK, call_secret(self.auth_token or "", call_sid))

    def with_stream(self, render, host: Callable[[], str]):
        """Wrap the session's renderer: the first answer of a call (turn 0) starts the stream first,
        before the greeting, so the whole call is heard. The answer is stored as rendered, so a
        retried first webhook gets the same TwiML."""

        def answer(engine, actions, call_id, state):
            xml = render(engine, actions, call_id, state)
            if state.turn != 0 or state.ended:
                return xml
            tag = self.start_tag(call_id, host())
            if "<Response>" in xml:
                return xml.replace("<Response>", "<Response>" + tag, 1)
            return xml.replace("<Response />", f"<Response>{tag}</Response>", 1)

        return answer

    # --- the WebSocket side ---------------------------------------------------------------------
    def upgrade_allowed(self, signature: str | None, host: str) -> bool:
        """The upgrade request: with an auth token it must carry Twilio's X-Twilio-Signature ("configure
        your application to validate the X-Twilio-Signature header. This is how your application verifies
        that a Media Stream is coming from an authentic Twilio source":
        https://www.twilio.com/docs/global-infrastructure/firewall-configurations/media-streams-configuration);
        the per-call ``lineSecret`` of ``start`` is checked as well, per stream. Without a token (a local
        server, as for webhooks) only the secret is checked."""
        if not self.auth_token:
            return True
        return bool(signature) and upgrade_signature_ok(self.auth_token, self.stream_url(host), signature)

    def connection(self) -> "StreamConnection":
        return StreamConnection(self)

    def end_call(self, call_sid: str) -> None:
        """The call ended (status callback): its stream in this process goes now."""
        self.streams.end_call(call_sid)


class StreamConnection:
    """One WebSocket: the messages of one Media Stream, and the verdicts it files in the store.
    ``receive(text)`` is False when the socket should close; ``finish()`` when it closes."""

    def __init__(self, service: LineService):
        self.service = service
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.window: int | None = None      # the window (turn) the last verdict was filed under
        self.since_ms = 0                  # where that window's audio starts (stream time)
        self.published_ms = -10**9         # stream position at the last verdict filed
        self.closed = False

    def receive(self, text) -> bool:
        if self.closed:
            return False
        service = self.service
        handled = service.streams.handle(text)
        if handled.event == "start" and handled.accepted:
            if self.stream_sid is not None:  # one stream per socket, as Twilio does
                log.warning("socket of stream %s: a second start (%s) dropped", self.stream_sid,
                            handled.stream_sid)
                service.streams.close_stream(handled.stream_sid, "second stream on one socket")
                return True
            self.stream_sid, self.call_sid = handled.stream_sid, handled.call_sid
        elif handled.accepted and handled.stream_sid is not None and handled.stream_sid != self.stream_sid:
            log.warning("socket of stream %s: a message for stream %s dropped", self.stream_sid, handled.stream_sid)
            return True
        if handled.close:  # stop (the last verdict was filed at most one period of audio before), or refused
            self.finish()
            return False
        if handled.accepted and handled.event == "media":
            position = service.streams.position_ms(self.call_sid)
            if position is not None and position - self.published_ms >= service.publish_every_ms:
                return self.publish()
        return True

    def publish(self) -> bool:
        """File the verdict of the current window; False when the call is over (unknown or ended)."""
        service, call = self.service, self.call_sid
        streams = service.streams
        position = streams.position_ms(call)
        if position is None:
            return True
        try:
            filed = service.store.put_line(call, None, self._record(position))
            if filed is not None and self.window is not None and filed != self.window:
                # the call moved on: the new window starts where the previous verdict ended
                self.since_ms = self.published_ms
                filed = service.store.put_line(call, filed, self._record(position))
        except StoreError as exc:
            log.warning("stream %s (call %s): verdict not filed: %s", self.stream_sid, call, exc)
            return True
        if filed is None:
            log.info("stream %s: call %s is unknown or has ended: audio dropped, socket closed", self.stream_sid, call)
            streams.end_call(call)
            self.finish()
            return False
        self.window, self.published_ms = filed, position
        return True

    def _record(self, position: int) -> dict:
        report = self.service.streams.window_verdict(self.call_sid, since_ms=self.since_ms)
        figures = report.to_dict() if report is not None else {}
        return {"condition": figures.pop("condition", None), "seconds": figures.get("seconds", 0.0),
                "since_ms": self.since_ms, "until_ms": position, "at": self.service.wall(),
                "stream": self.stream_sid, "figures": figures}

    def finish(self) -> None:
        """The socket closes (stop, a refused start, the call over, or the peer went away)."""
        if self.closed:
            return
        self.closed = True
        if self.stream_sid:
            self.service.streams.close_stream(self.stream_sid)


# --- the webhook side ---------------------------------------------------------------------------

def line_for(store: CallStore, call_sid: str, window: int, arrived: float | None = None, *, first: dict | None = None,
             wall: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
             wait_s: float = JOIN_WAIT_S, fresh_s: float = FRESH_S, min_seconds: float = MIN_SECONDS) -> ev.Line | None:
    """The line over window ``window`` of a call, for the webhook that closes it; None (logged) when
    there is no usable audio: the engine then decides from the transcription alone. `first`: the
    record already read with the call (CallStore.load's line_window), so a stream that keeps up costs
    no read of its own; only a lagging one is read again, within the bounded wait."""
    arrived = wall() if arrived is None else arrived
    deadline = arrived + wait_s
    while True:
        try:
            record, first = (first, None) if first is not None else (store.get_line(call_sid, window), None)
        except StoreError as exc:
            log.warning("call %s window %d: line not read (%s): transcription only", call_sid, window, exc)
            return None
        if record is None:
            log.debug("call %s window %d: no audio for this window (no media stream): transcription only",
                     call_sid, window)
            return None
        at = record.get("at")
        if isinstance(at, (int, float)) and math.isfinite(at) and at >= arrived - fresh_s:
            break
        if wall() >= deadline:
            log.info("call %s window %d: the media stream lags or stopped (last verdict %.2f s before the "
                     "webhook): transcription only", call_sid, window, arrived - (at or 0))
            return None
        sleep(0.02)
    condition, seconds = record.get("condition"), record.get("seconds") or 0.0
    if condition not in CONDITIONS or seconds < min_seconds:
        log.info("call %s window %d: %.2f s of audio, too little to judge the line: transcription only",
                 call_sid, window, seconds)
        return None
    figures = record.get("figures") if isinstance(record.get("figures"), dict) else {}
    return ev.Line(condition, dict(figures))


def with_line(event, line: ev.Line | None):
    """The event with the window's line attached (listening events only)."""
    if line is None or not isinstance(event, (ev.Speech, ev.Digits, ev.Silence)):
        return event
    from dataclasses import replace

    return replace(event, line=line)
