"""The Media Streams WebSocket endpoint (flask-sock on simple-websocket): ``/twilio/stream``.

Twilio opens it for the ``<Start><Stream>`` every call's first answer carries
(https://www.twilio.com/docs/voice/twiml/stream) and sends the messages of
https://www.twilio.com/docs/voice/media-streams/websocket-messages ; what they mean and how a
window's verdict reaches the next webhook is in ivr.media.live.

Under gunicorn the socket holds one thread of a gthread worker for the whole call (`ivr serve`
runs gthread workers with enough threads); with Werkzeug's development server a thread per
connection. A socket that sends nothing for ``idle_seconds`` is closed (a stream that never
sends ``stop``), so no thread and no stream outlives its call.
"""
from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, request
from flask_sock import Sock

from ivr.media.live import STREAM_PATH, LineService

log = logging.getLogger("ivr.twilio.stream")

bp = Blueprint("twilio_stream", __name__)
sock = Sock()


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
        log.warning("refused a media stream upgrade from %s: invalid X-Twilio-Signature", request.remote_addr)
        abort(403, "invalid X-Twilio-Signature")
    return None


@sock.route(STREAM_PATH, bp=bp)
def stream(ws):
    service = line_service()
    conn = service.connection()
    try:
        while True:
            text = ws.receive(timeout=service.idle_seconds)
            if text is None:
                log.info("media stream %s: nothing for %.0f s: closed", conn.stream_sid or "-", service.idle_seconds)
                break
            if not conn.receive(text):
                break
    finally:
        conn.finish()


def install(app, service: LineService) -> None:
    """Add the endpoint to the app (additive: its own blueprint and extension key)."""
    app.extensions["ivr_line"] = service
    app.register_blueprint(bp)
