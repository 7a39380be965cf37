"""The Media Streams WebSocket endpoint (flask-sock on simple-websocket): ``/twilio/stream``.

Twilio opens it for the ``<Start><Stream>`` every call's first answer carries
(https://www.twilio.com/docs/voice/twiml/stream) and sends the messages of
https://www.twilio.com/docs/voice/media-streams/websocket-messages ; what they mean and how a
window's verdict reaches the next webhook is in ivr.media.live.

Under gunicorn the socket holds one thread of a gthread worker for the whole call (`ivr serve`
runs gthread workers with enough threads); with Werkzeug's development server a thread per
connection. So that sockets can never take every thread from the webhooks:
- at most ``IVR_MAX_STREAMS`` sockets per worker are open at once (`ivr serve` sets it below its
  thread count); one more is closed at once after the handshake;
- a socket must say ``start`` within ``START_WITHIN`` seconds (Twilio sends ``connected`` and
  ``start`` at once), else it is closed;
- a socket that sends nothing for ``idle_seconds`` is closed (a stream that never sends ``stop``),
  so no thread and no stream outlives its call.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import Blueprint, abort, current_app, request
from flask_sock import Sock

from ivr import settings
from ivr.media.live import STREAM_PATH, LineService

log = logging.getLogger("ivr.twilio.stream")

bp = Blueprint("twilio_stream", __name__)
sock = Sock()
START_WITHIN = 5.0  # seconds from the handshake to the stream's start message
MAX_STREAMS = 24  # open sockets per worker process, unless IVR_MAX_STREAMS says otherwise


def line_service() -> LineService:
    return current_app.extensions["ivr_line"]


@bp.before_request
def check_upgrade():
    """Twilio signs the upgrade request like a webhook (the wss URL, no parameters): a wrong
    signature is refused before the handshake; the per-call lineSecret is checked at ``start``."""
    if request.path != STREAM_PATH:
        return None
    if request.headers.get("Upgrade", "").lower() != "websocket":
        abort(400, "this URL is Twilio's Media Streams WebSocket")
    if not line_service().upgrade_allowed(request.headers.get("X-Twilio-Signature"), request.host):
        log.warning("refused a media stream upgrade from %s: missing or invalid X-Twilio-Signature",
                    request.remote_addr)
        abort(403, "invalid X-Twilio-Signature")
    return None


@sock.route(STREAM_PATH, bp=bp)
def stream(ws):
    slots = current_app.extensions["ivr_line_slots"]
    if not slots.acquire(blocking=False):  # the socket would hold a thread for the whole call
        log.warning("media stream refused: all %d sockets of this worker are open", slots.limit)
        return
    service = line_service()
    conn = service.connection()
    opened = time.monotonic()
    try:
        while True:
            started = conn.stream_sid is not None
            wait = service.idle_seconds if started else max(0.0, opened + START_WITHIN - time.monotonic())
            text = ws.receive(timeout=wait) if wait > 0 else None
            if text is None:
                log.info("media stream %s: %s: closed", conn.stream_sid or "-",
                         f"nothing for {service.idle_seconds:.0f} s" if started else
                         f"no start within {START_WITHIN:.0f} s")
                break
            if not conn.receive(text):
                break
    finally:
        conn.finish()
        slots.release()


def install(app, service: LineService) -> None:
    """Add the endpoint to the app (additive: its own blueprint and extension key)."""
    app.extensions["ivr_line"] = service
    slots = threading.BoundedSemaphore(limit := settings.whole("IVR_MAX_STREAMS", MAX_STREAMS))
    slots.limit = limit
    app.extensions["ivr_line_slots"] = slots
    app.register_blueprint(bp)
