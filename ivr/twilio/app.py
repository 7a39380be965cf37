"""Twilio voice webhooks (Flask): signed form posts in, TwiML out.

Only translation lives here: Twilio's requests become events for the call
session (ivr.call.session), the engine's actions become TwiML (twiml.py).

Routes (every later URL comes from the TwiML itself):
  POST /twilio/voice[/<flow>]   incoming call
  POST /twilio/event?k=&t=      action URL of Gather, Record, Dial, Enqueue and the goodbye Redirect
  POST /twilio/hold/wait?t=     Enqueue waitUrl: music, check-ins, <Leave> at the promised limit (E9)
  POST /twilio/hold/return      <Queue url> of the agent who takes a caller off hold: the return words
  POST /twilio/whisper?parent=  <Number url> of a warm transfer: the agent hears who and why, presses 1 (E10)
  POST /twilio/status           call status callback: who hung up, dropped calls
  GET  /twilio/music?seconds=   built-in hold music

No request gets a 5xx. Each endpoint's failure answer is valid TwiML for the
context Twilio requests it in: the caller's call hears the apology and the
flow's fallback; the agent's whisper leg is hung up; a wait URL leaves the queue
(the Enqueue action then apologises); a <Queue url> gets nothing to say.
"""
from __future__ import annotations

import logging
import os
import re
from functools import wraps
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, request
from twilio.request_validator import RequestValidator

from ivr.call import facts
from ivr.call.registry import FlowRegistry
from ivr.call.session import CallProblem, CallSession
from ivr.engine import actions as act
from ivr.media.live import with_line
from ivr.store import CallStore, open_store
from ivr.twilio import params as tw
from ivr.twilio.music import hold_music_wav
from ivr.twilio.twiml import Renderers, only

log = logging.getLogger("ivr.twilio")
CALL_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
WEBHOOK_METHODS = ["POST", "GET"]
UNSIGNED_PATHS = {"/healthz", "/twilio/music"}  # static and harmless: load balancers and media caches fetch them
DEFAULT_FLOW = Path(__file__).resolve().parent.parent.parent / "call_flows" / "bank_hotline.yaml"

bp = Blueprint("twilio", __name__)


class Service:
    """What the webhooks share: the call session, the TwiML renderers, the signature check."""

    def __init__(self, registry: FlowRegistry, store: CallStore, auth_token: str | None, public_url: str | None):
        self.registry, self.store = registry, store
        self.validator = RequestValidator(auth_token) if auth_token else None
        self.public_url = (public_url or "").rstrip("/")
        self.renderers = Renderers(self.public_url)
        self.session = CallSession(registry, store, self.renderers.answer)

    def signed_url(self) -> str:
        if not self.public_url:
            return request.url
        return self.public_url + request.full_path.rstrip("?")


def create_app(flows: list[str] | None = None, flows_dir: str | None = None, store: str | CallStore | None = None,
               auth_token: str | None = None, public_url: str | None = None, line_audio: bool | None = None,
               media_clock=None) -> Flask:
    """The WSGI app. `flows` are flow files (the first answers unmatched numbers), or `flows_dir` a folder.

    Unset arguments come from the environment, for WSGI servers (`gunicorn 'ivr.twilio:create_app()'`):
    IVR_FLOWS (files separated by ':'), IVR_FLOWS_DIR, IVR_STORE, IVR_PUBLIC_URL, TWILIO_AUTH_TOKEN;
    the default is the bank hotline flow with the SQLite store calls.db.
    """
    env = os.environ
    flows_dir = flows_dir or env.get("IVR_FLOWS_DIR")
    if not flows and not flows_dir:
        flows = env["IVR_FLOWS"].split(":") if env.get("IVR_FLOWS") else [str(DEFAULT_FLOW)]
    store = store or env.get("IVR_STORE", "sqlite:///calls.db")
    store = open_store(store) if isinstance(store, str) else store
    registry = FlowRegistry.from_dir(flows_dir, store) if flows_dir else FlowRegistry(flows or [], store)
    token = auth_token if auth_token is not None else env.get("TWILIO_AUTH_TOKEN")
    if not token:
        log.warning("TWILIO_AUTH_TOKEN is not set: webhook signatures are NOT checked. "
                    "Anyone who can reach this server can drive calls. Set it before going live.")
    app = Flask("ivr")
    app.extensions["ivr"] = Service(registry, store, token or None, public_url or env.get("IVR_PUBLIC_URL"))
    app.register_blueprint(bp)
    if line_audio if line_audio is not None else env.get("IVR_LINE_AUDIO", "1") != "0":
        install_line_audio(app, token or None, media_clock)
    return app


def install_line_audio(app: Flask, token: str | None, clock=None) -> None:
    """Issue 11: every call starts a Media Stream to /twilio/stream, and each listening webhook gets
    the window's line from the store (ivr.media.live). IVR_LINE_AUDIO=0 turns it off."""
    import time

    from ivr.media.live import LineService
    from ivr.twilio import stream_ws

    service = app.extensions["ivr"]
    line = LineService(service.store, token, service.public_url or None,
                       clock=clock or time.monotonic)
    service.session.render = line.with_stream(service.session.render, lambda: request.host)
    stream_ws.install(app, line)


def line_of(sid: str, kind: str, turn: int):
    """The line over the window a Gather's action URL closes (None: no audio; ivr.media.live.line_for)."""
    line = current_app.extensions.get("ivr_line")
    if line is None or kind != "gather":
        return None
    from ivr.media.live import line_for

    return line_for(line.store, sid, turn)


def svc() -> Service:
    return current_app.extensions["ivr"]


def form():
    """Twilio's parameters: the form of a POST, the query of a GET (a number may be set up either way)."""
    return request.form if request.method == "POST" else request.args



def received(params=None) -> dict:
    """The request as the call log keeps it (replay re-drives calls from these)."""
    params = form() if params is None else params
    return {"kind": "request", "path": request.path, "query": request.args.to_dict(), "params": params.to_dict()}


@bp.before_request
def check_signature():
    service = svc()
    if service.validator is None or request.path in UNSIGNED_PATHS:
        return None
    signature = request.headers.get("X-Twilio-Signature", "")
    signed = request.form.to_dict() if request.method == "POST" else {}
    if not signature or not service.validator.validate(service.signed_url(), signed, signature):
        log.warning("rejected %s %s: missing or invalid X-Twilio-Signature", request.method, request.path)
        abort(403, "invalid or missing X-Twilio-Signature")
    return None


def webhook(on_failure):
    """Validate the CallSid; any failure becomes `on_failure(sid, reason)`, the harmless answer for
    this endpoint's context. A CallProblem (a request that does not fit the call) is one log line."""

    def decorate(handler):
        @wraps(handler)
        def wrapped(*args, **kwargs):
            sid = form().get("CallSid", "")
            if not CALL_SID.match(sid):
                return Response("CallSid is missing or malformed: this URL is for Twilio voice webhooks\n",
                                status=400, mimetype="text/plain")
            try:
                xml = handler(sid, *args, **kwargs)
            except CallProblem as exc:
                log.error("%s %s: %s", request.path, sid, exc)
                xml = on_failure(sid, str(exc))
            except Exception as exc:  # noqa: BLE001 - every failure must still reach Twilio as TwiML
                log.exception("webhook %s failed for call %s", request.path, sid)
                xml = on_failure(sid, f"{type(exc).__name__}: {exc}")
            return Response(xml, mimetype="text/xml")

        return wrapped

    return decorate


def apologise(sid: str, reason: str) -> str:
    """The caller's call: the apology, then the flow's fallback number or a goodbye."""
    service = svc()
    return service.session.fail(sid, reason, received(), service.renderers.apology)


# --- the caller's call ------------------------------------------------------------

@bp.route("/twilio/voice", methods=WEBHOOK_METHODS)
@bp.route("/twilio/voice/<flow>", methods=WEBHOOK_METHODS)
@webhook(apologise)
def voice(sid: str, flow: str | None = None) -> str:
    params = form()
    return svc().session.start(sid, flow, params.get("From", ""), params.get("To", ""), received(params))


@bp.route("/twilio/event", methods=WEBHOOK_METHODS)
@webhook(apologise)
def event(sid: str) -> str:
    try:
        turn = int(request.args.get("t", ""))
    except ValueError:
        raise CallProblem(f"event URL without a valid turn: {request.full_path}") from None
    kind, params = request.args.get("k", ""), form()
    line = line_of(sid, kind, turn)  # issue 11: the window's audio, joined through the store
    return svc().session.handle(sid, turn, lambda call: with_line(tw.event_for(kind, params,
                                                                               bool(call.state.accepted_by)), line),
                                received(params))


@bp.route("/twilio/status", methods=WEBHOOK_METHODS)
@webhook(lambda sid, reason: only())
def status(sid: str) -> str:
    """The call ended. If we had not hung up, the caller did (before our goodbye, or during its pause)."""
    params = form()
    if tw.caller_gone(params) and "ivr_line" in current_app.extensions:
        current_app.extensions["ivr_line"].end_call(sid)  # its media stream in this process goes now
    if tw.caller_gone(params):
        svc().session.caller_gone(sid, params["CallStatus"].replace("-", "_"), tw.number(params.get("CallDuration")),
                                  received(params))
    return only()


# --- holds ------------------------------------------------------------------------------

@bp.route("/twilio/hold/wait", methods=WEBHOOK_METHODS)
@webhook(lambda sid, reason: only("leave"))  # the Enqueue action then apologises
def hold_wait(sid: str) -> str:
    """Twilio requests this again each time its TwiML ends, for as long as the caller is queued."""
    service = svc()
    call = service.session.load(sid)
    if call is None or call.state.phase != "holding":
        return only("leave")
    queue_time = tw.number(form().get("QueueTime"))
    actions = call.engine.hold_wait(call.state, queue_time)
    check_ins = [facts.Hold("check_in", queue_time=queue_time)] if any(isinstance(a, act.Say) for a in actions) else []
    return service.session.note(sid, received(), service.renderers.get(call.engine).render(actions, sid, call.turn),
                                *check_ins, turn=call.turn)


@bp.route("/twilio/hold/return", methods=WEBHOOK_METHODS)
@webhook(lambda sid, reason: only())
def hold_return(sid: str) -> str:
    """Played to the queued caller as an agent takes them: 'thank you for waiting' (E9)."""
    service = svc()
    call = service.session.load(sid)
    if call is None:
        return only()
    answer = service.renderers.get(call.engine).speak(call.engine.hold_returning(call.state))
    return service.session.note(sid, received(), answer, facts.Hold("returned"), turn=call.turn)


# --- warm transfer: the agent's leg -----------------------------------------------------

@bp.route("/twilio/whisper", methods=WEBHOOK_METHODS)
@webhook(lambda sid, reason: only("hangup"))
def whisper(sid: str) -> str:
    """The agent answered: tell them who is calling and why; only their key press connects the caller."""
    service = svc()
    parent, turn = request.args.get("parent", ""), request.args.get("t", "")
    call = service.session.load(parent) if CALL_SID.match(parent) else None
    if call is None or call.state.phase != "ringing" or str(call.turn) != turn:
        return only("hangup")
    answer = service.renderers.get(call.engine).whisper(call.engine.whisper(call.state), parent, call.turn)
    return service.session.note(sid, received(), answer)


@bp.route("/twilio/whisper/answer", methods=WEBHOOK_METHODS)
@webhook(lambda sid, reason: only("hangup"))
def whisper_answer(sid: str) -> str:
    parent, turn = request.args.get("parent", ""), request.args.get("t", "")
    accepted = (form().get("Digits") == "1" and CALL_SID.match(parent) and turn.isdigit()
                and svc().session.accept_transfer(parent, int(turn), sid))
    return svc().session.note(sid, received(), only() if accepted else only("hangup"))  # empty: bridge the calls


# --- static -------------------------------------------------------------------------------

@bp.get("/twilio/music")
def music():
    try:
        seconds = int(request.args.get("seconds", "30"))
    except ValueError:
        abort(400, "seconds must be a whole number")
    return Response(hold_music_wav(seconds), mimetype="audio/wav")


@bp.get("/healthz")
def healthz():
    return {"ok": True, "flows": svc().registry.names()}
