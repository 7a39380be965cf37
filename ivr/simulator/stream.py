"""<Start><Stream>: the fake Twilio forks the caller's audio to the app's Media Streams WebSocket.

As Twilio documents it (https://www.twilio.com/docs/voice/twiml/stream), and at least as strictly:

- ``<Start>`` holds ``<Stream>`` nouns (other nouns are not simulated: an error); Twilio goes on
  with the next verb at once;
- ``url`` is required and must be ``wss://`` (Twilio error 31922 otherwise) with no query string
  (custom data goes in ``<Parameter name value>``, both required); ``track`` is
  ``inbound_track`` (default), ``outbound_track`` or ``both_tracks``; at most 4 streams per call;
- the messages (https://www.twilio.com/docs/voice/media-streams/websocket-messages): ``connected``
  (``protocol`` "Call", ``version`` "1.0.0"), ``start`` (``streamSid`` MZ..., ``accountSid``,
  ``callSid``, ``tracks``, ``customParameters``, ``mediaFormat`` audio/x-mulaw 8000 Hz mono),
  ``media`` (``track`` "inbound", ``chunk``, ``timestamp`` ms since the stream started, ``payload``
  160 bytes of base64 μ-law per 20 ms), ``stop`` when the call ends; every message but
  ``connected`` has ``streamSid`` and a ``sequenceNumber`` string counting from 1;
- the upgrade request carries ``X-Twilio-Signature`` over the wss URL.

Audio goes out on the virtual clock, not in real time: once a listening window is over (before
the Gather's action is posted, as Twilio's audio arrives before its webhook) the frames of the
whole window are sent with their stream timestamps. The socket is opened at the caller's first
audio (a caller who never makes a sound costs nothing); the outbound track is not simulated.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import numpy as np

from ivr.media.analyser import FRAME_SAMPLES, ulaw_encode
from ivr.simulator.legs import new_sid
from ivr.simulator.transport import SimulatorError

MAX_STREAMS = 4
TRACKS = {"inbound_track": ["inbound"], "outbound_track": ["outbound"], "both_tracks": ["inbound", "outbound"]}
RATE = 8000


@dataclass
class StreamSpec:
    url: str
    track: str
    name: str | None
    parameters: dict


def start(call, el, doc):
    """<Start>: start what it holds and go on with the next verb."""
    for child in el:
        if child.tag != "Stream":
            raise SimulatorError(f"<Start><{child.tag}> in the TwiML of {call.path(doc.url)} is not simulated "
                                 "(simulated: <Stream>)")
        spec = parse_stream(child, doc, call)
        if len(call.streams) >= MAX_STREAMS:
            raise SimulatorError(f"a 5th <Stream> on one call ({call.path(doc.url)}): Twilio allows {MAX_STREAMS}")
        call.streams.append(MediaStream(call, spec))
    return None


def parse_stream(el, doc, call) -> StreamSpec:
    where = call.path(doc.url)
    url = (el.get("url") or "").strip()
    if not url:
        raise SimulatorError(f"<Stream> without url in {where}")
    url = urljoin(doc.url.replace("https://", "wss://", 1).replace("http://", "wss://", 1), url)
    parts = urlsplit(url)
    if parts.scheme != "wss":
        raise SimulatorError(f"<Stream url=\"{url}\"> in {where}: Twilio connects only to wss:// (error 31922)")
    if parts.query:
        raise SimulatorError(f"<Stream url=\"{url}\"> in {where}: Twilio does not pass a query string; "
                             "use <Parameter name value> children")
    track = el.get("track") or "inbound_track"
    if track not in TRACKS:
        raise SimulatorError(f"<Stream track=\"{track}\"> in {where}: track is one of {', '.join(TRACKS)}")
    params = {}
    for child in el:
        if child.tag != "Parameter" or not child.get("name") or child.get("value") is None:
            raise SimulatorError(f"<Stream> in {where} holds <{child.tag}>: only <Parameter name=... value=...>")
        params[child.get("name")] = child.get("value")
    return StreamSpec(url, track, el.get("name"), params)


class MediaStream:
    def __init__(self, call, spec: StreamSpec):
        self.call, self.spec = call, spec
        self.sid = new_sid("MZ")
        self.started_at = call.clock.now   # virtual seconds: stream time 0
        self.sent_until = self.started_at  # virtual time the audio sent so far reaches
        self.socket = None
        self.sequence = 0
        self.chunk = 0
        self.closed = False

    @property
    def inbound(self) -> bool:
        return "inbound" in TRACKS[self.spec.track]

    def _open(self) -> None:
        transport = self.call.transport
        self.socket = transport.open_websocket(self.spec.url, {"X-Twilio-Signature":
                                                               transport.signature(self.spec.url, {})})
        self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"}, numbered=False)
        leg = self.call.leg
        self._send({"event": "start", "start": {
            "streamSid": self.sid, "accountSid": leg.account_sid, "callSid": leg.sid,
            "tracks": TRACKS[self.spec.track], "customParameters": self.spec.parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})

    def _send(self, message: dict, numbered: bool = True) -> None:
        if self.closed:
            return
        if numbered:
            self.sequence += 1
            message = {"event": message["event"], "sequenceNumber": str(self.sequence), **message,
                       "streamSid": self.sid}
        if not self.socket.send(json.dumps(message)):
            self.closed = True
            if message["event"] != "stop":
                self.call.note("the app closed the media stream")

    def send_audio(self, pcm: np.ndarray, at: float) -> None:
        """int16 samples that start at virtual time ``at``, as 20 ms media messages, each sent at the
        virtual moment it is complete (the clock goes back to ``at`` and forward frame by frame, and
        ends where it was): the app sees audio arrive at the pace of the call, as Twilio sends it."""
        if self.closed or not self.inbound:
            return
        clock = self.call.clock
        end = clock.now
        try:
            if self.socket is None:  # opened at the caller's first sound, as of the moment <Start> ran
                clock.rewind_to(self.started_at)
                self._open()
            pcm = np.asarray(pcm, dtype=np.int16)
            whole = pcm.size - pcm.size % FRAME_SAMPLES
            payload = ulaw_encode(pcm[:whole])
            base_ms = int(round((at - self.started_at) * 1000))
            clock.rewind_to(min(at, clock.now))
            for i in range(0, whole, FRAME_SAMPLES):
                self.chunk += 1
                clock.advance(FRAME_SAMPLES / RATE)
                self._send({"event": "media", "media": {
                    "track": "inbound", "chunk": str(self.chunk), "timestamp": str(base_ms + i // 8),
                    "payload": base64.b64encode(payload[i:i + FRAME_SAMPLES]).decode()}})
                if self.closed:
                    break
            self.sent_until = max(self.sent_until, at + whole / RATE)
        finally:
            if clock.now > end:
                clock.rewind_to(end)
            else:
                clock.advance(end - clock.now)

    def stop(self) -> None:
        if self.socket is not None and not self.closed:
            leg = self.call.leg
            self._send({"event": "stop", "stop": {"accountSid": leg.account_sid, "callSid": leg.sid}})
            self.socket.close()
        self.closed = True
