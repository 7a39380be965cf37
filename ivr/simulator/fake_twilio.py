"""The fake Twilio: places one call to the app and plays Twilio's part until it ends.

It posts signed, Twilio-shaped requests through a transport, interprets the TwiML that
comes back the way Twilio documents it, asks the caller (a script, or a person typing)
what they do at each moment, and keeps a virtual clock. The verbs live in their own
modules: ivr.simulator.verbs (Say, Play, Pause, Redirect, Hangup), gather, record,
enqueue and dial.
"""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from ivr.simulator import media
from ivr.simulator.actions import BETWEEN, AbortCall, HangUp, Moment
from ivr.simulator.clock import VirtualClock
from ivr.simulator.legs import CallLeg, new_sid
from ivr.simulator.outcomes import Document, End, Goto, attr_number
from ivr.simulator.transcript import CALL, CALLER, HEARS, Line, Transcript
from ivr.simulator.transport import SimulatorError, Transport
from ivr.simulator.verbs import CALLER_VERBS

MAX_REQUESTS = 400  # a call that needs more webhooks than this is looping
READ_TIMEOUT = 15.0  # seconds Twilio waits for an answer before giving up on a webhook
# What Twilio plays when a webhook fails and the number has no fallback URL (its "application error" message).
TWILIO_ERROR_MESSAGE = "We are sorry, an application error has occurred. Goodbye."
HTTP_RETRIEVAL_FAILURE = "11200"  # https://www.twilio.com/docs/api/errors/11200


@dataclass(frozen=True)
class Segment:
    text: str
    seconds: float | None
    kind: str  # say | play | pause
    louder: bool = False


@dataclass
class CallResult:
    call_sid: str
    transcript: Transcript
    ended_by: str | None
    duration: float
    transferred_to: str | None
    error: str | None = None  # the simulator could not go on (refused request, bad TwiML...)
    aborted: str | None = None  # the caller gave up because a script expected something else
    webhook_failures: list = field(default_factory=list)  # (url, what failed): Twilio used the fallback URL

    def to_dict(self) -> dict:
        return {"call_sid": self.call_sid, "ended_by": self.ended_by, "duration": self.duration,
                "transferred_to": self.transferred_to, "error": self.error, "aborted": self.aborted,
                "transcript": self.transcript.to_list()}


class Call:
    def __init__(self, transport: Transport, caller, caller_id: str = "+8613700000000",
                 called: str = "+861095500000", voice_path: str = "/twilio/voice",
                 status_path: str = "/twilio/status", transcript: Transcript | None = None,
                 fallback_path: str | None = None):
        self.transport, self.caller = transport, caller
        self.clock = VirtualClock()
        self.transcript = transcript if transcript is not None else Transcript()
        self.leg = CallLeg(new_sid("CA"), new_sid("AC"), caller_id, called)
        self.voice_url, self.status_url = self.url(voice_path), self.url(status_path)
        self.fallback_url = self.url(fallback_path) if fallback_path else None
        self.webhook_failures: list[tuple[str, str]] = []
        self.ended_by: str | None = None
        self.transferred_to: str | None = None
        self.requests = 0
        self._media: dict[str, float | None] = {}
        self.streams: list = []  # <Start><Stream> media streams (ivr.simulator.stream)
        self.line: str | None = None  # the caller's line once they make a sound (None: no audio at all)
        transport.bind_clock(self.clock)

    # --- the call --------------------------------------------------------------
    def run(self) -> CallResult:
        error = aborted = None
        outcome: Goto | End = Goto(self.voice_url)
        try:
            while isinstance(outcome, Goto):
                doc = self.fetch(outcome.url, self.leg.params(**outcome.params), outcome.method)
                outcome = self.run_document(doc)
            self.ended_by = outcome.by
        except AbortCall as exc:
            aborted = str(exc)
            self.caller_does("hangs up", "hangup")
            self.ended_by = "caller"
        except SimulatorError as exc:
            error = str(exc)
        if self.ended_by:
            who = "the caller hung up" if self.ended_by == "caller" else "we hung up"
            self.note(f"call ends: {who}")
        for stream in self.streams:  # Twilio stops every stream when the call ends
            try:
                stream.stop()
            except SimulatorError as exc:
                error = error or str(exc)
        error = self.send_status_callback(error)
        return CallResult(self.leg.sid, self.transcript, self.ended_by, self.clock.now, self.transferred_to,
                          error, aborted, list(self.webhook_failures))

    def send_status_callback(self, error: str | None) -> str | None:
        """Twilio's status callback: the call is over, with its duration (even after a failure, so the app can close it)."""
        if self.requests == 0 or (error and "403" in error and self.requests == 1):
            return error
        try:
            self.transport.send("POST", self.status_url,
                                self.leg.params("completed", CallDuration=int(round(self.clock.now))))
        except SimulatorError as exc:
            return error or f"status callback: {exc}"
        return error

    def run_document(self, doc: Document) -> Goto | End:
        for el in doc.root:
            handler = CALLER_VERBS.get(el.tag)
            if handler is None:
                raise SimulatorError(f"<{el.tag}> in the TwiML of {self.path(doc.url)} is not simulated "
                                     f"(simulated: {', '.join(CALLER_VERBS)})")
            outcome = handler(self, el, doc)
            if outcome is not None:
                return outcome
        return End("engine")  # no more verbs: Twilio hangs up

    # --- requests --------------------------------------------------------------
    def url(self, path: str) -> str:
        return urljoin(self.transport.base_url + "/", path)

    @staticmethod
    def path(url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def fetch(self, url: str, params: dict, method: str = "POST") -> Document:
        self.requests += 1
        if self.requests > MAX_REQUESTS:
            raise SimulatorError(f"more than {MAX_REQUESTS} webhooks in one call: the flow seems to loop "
                                 f"(last: {method} {self.path(url)})")
        try:
            started = time.monotonic()
            reply = self.transport.send(method.upper(), url, params)
            if time.monotonic() - started > READ_TIMEOUT:
                raise SimulatorError(f"{method} {self.path(url)} took more than {READ_TIMEOUT:g} s to answer")
        except SimulatorError as exc:
            if " 403" in str(exc) or "403:" in str(exc) or "refused with 403" in str(exc):
                raise  # a signature problem is the simulator's setup, not an outage
            return self.webhook_failed(url, params, str(exc))
        if "xml" not in reply.content_type:
            raise SimulatorError(f"{method} {self.path(url)} answered '{reply.content_type or 'no content type'}', "
                                 f"not TwiML: {reply.text.strip()[:200]}")
        try:
            root = ET.fromstring(reply.body)
        except ET.ParseError as exc:
            raise SimulatorError(f"{method} {self.path(url)} answered XML that Twilio cannot parse: {exc}") from exc
        if root.tag != "Response":
            raise SimulatorError(f"{method} {self.path(url)} answered <{root.tag}>; TwiML starts with <Response>")
        return Document(url, root)

    def webhook_failed(self, url: str, params: dict, what: str) -> Document:
        """Twilio's answer to a webhook that failed (an HTTP error, no answer within 15 s): "a request is
        immediately made to the number's Fallback URL" with ErrorCode and ErrorUrl; without a fallback URL
        the caller hears Twilio's application-error message and the call ends
        (https://www.twilio.com/docs/usage/security/availability-reliability)."""
        self.webhook_failures.append((self.path(url), what))
        self.note(f"webhook failed: {what}")
        if self.fallback_url and url != self.fallback_url:
            self.note(f"Twilio requests the fallback URL {self.path(self.fallback_url)}")
            return self.fetch(self.fallback_url, {**self.leg.params(), "ErrorCode": HTTP_RETRIEVAL_FAILURE,
                                                  "ErrorUrl": url}, "POST")
        root = ET.fromstring(f"<Response><Say>{TWILIO_ERROR_MESSAGE}</Say><Hangup/></Response>")
        return Document(url, root)

    def media_length(self, url: str) -> float | None:
        """GET a <Play> URL once (through the same transport) and measure the WAV."""
        if url not in self._media:
            length = None
            if self.transport.can_reach(url):
                reply = self.transport.send("GET", url)
                length = media.media_seconds(reply.body)
            self._media[url] = length
        return self._media[url]

    # --- what the caller hears and does ----------------------------------------------
    def segments(self, el: ET.Element, doc: Document) -> list[Segment]:
        """What a <Say>, <Play> or <Pause> plays, piece by piece (loops repeat); seconds None = until stopped."""
        if el.tag == "Say":
            piece = Segment(media.say_text(el), media.say_seconds(el), "say", media.say_is_louder(el))
            return [piece] * max(media.loop_count(el), 1)
        if el.tag == "Play":
            url = urljoin(doc.url, (el.text or "").strip())
            length = self.media_length(url)
            label = f"plays {self.path(url)}"
            if length is None:
                length, label = 0.0, label + " (length unknown: not a WAV the simulator could fetch)"
            loops = media.loop_count(el)
            if loops == 0:  # Twilio plays it until something else happens: only a hold can end it
                return [Segment(label, None, "play")]
            return [Segment(label, length, "play")] * loops
        if el.tag == "Pause":
            seconds = attr_number(el.get("length"), 1.0)
            return [Segment(f"(pause {seconds:g} s)", seconds, "pause")]
        raise SimulatorError(f"<{el.tag}> cannot be played here ({self.path(doc.url)})")

    def hear(self, el: ET.Element, doc: Document, who: str = HEARS) -> None:
        """Play a <Say>, <Play> or <Pause> to `who` in full, advancing the clock."""
        for piece in self.segments(el, doc):
            if piece.seconds is None:
                raise SimulatorError(f"<Play loop=\"0\"> in {self.path(doc.url)} would play forever here")
            self.emit(piece, who)
            self.clock.advance(piece.seconds)

    def emit(self, piece: Segment, who: str = HEARS, seconds: float | None = None, t: float | None = None,
             interrupted: bool = False) -> Line:
        seconds = piece.seconds if seconds is None else seconds
        return self.transcript.add(Line(self.clock.now if t is None else t, who, piece.text, piece.kind,
                                        seconds or 0.0, piece.louder, interrupted))

    def decide(self, moment: Moment):
        return self.caller.decide(moment)

    def moment(self, kind: str, **details) -> Moment:
        return Moment(kind, self.clock.now, **details)

    def caller_does(self, text: str, kind: str, seconds: float = 0.0, t: float | None = None) -> None:
        self.transcript.add(Line(self.clock.now if t is None else t, CALLER, text, kind, seconds))

    def note(self, text: str, who: str = CALL) -> None:
        self.transcript.add(Line(self.clock.now, who, text, "event"))

    # --- the caller's audio (issue 11) ----------------------------------------------------------
    def send_audio(self, until: float, speech=None, speech_at: float | None = None) -> None:
        """The line's audio up to virtual time `until` on every stream: the caller's background where
        they say nothing, `speech` (int16 samples) from `speech_at`. Nothing before the caller's
        first sound (self.line None)."""
        if self.line is None or not self.streams:
            return
        from ivr.simulator import line_audio

        for stream in self.streams:
            if speech is not None and speech_at is not None:
                gap = speech_at - stream.sent_until
                if gap > 0:
                    stream.send_audio(line_audio.background(self.line, gap, stream.chunk), stream.sent_until)
                stream.send_audio(speech, max(speech_at, stream.sent_until))
            gap = until - stream.sent_until
            if gap >= 0.02:
                stream.send_audio(line_audio.background(self.line, gap, stream.chunk), stream.sent_until)

    def caller_may_hang_up(self) -> End | None:
        """Between verbs the caller may hang up (a script's `hangup` step waits for this)."""
        action = self.decide(self.moment(BETWEEN))
        if isinstance(action, HangUp):
            self.clock.advance(action.after)
            self.caller_does("hangs up", "hangup")
            return End("caller")
        return None

