"""Twilio voice webhooks (Flask): signed form posts in, TwiML out.

Routes (every later URL comes from the TwiML itself):
  POST /twilio/voice[/<flow>]   incoming call
  POST /twilio/event?k=&t=      action URL of Gather, Record, Dial, Enqueue and the goodbye Redirect
  POST /twilio/hold/wait?t=     Enqueue waitUrl: music, check-ins, <Leave> at the promised limit (E9)
  POST /twilio/hold/return      <Queue url> of the agent who takes a caller off hold: the return words
  POST /twilio/whisper?parent=  <Number url> of a warm transfer: the agent hears who and why, presses 1 (E10)
  POST /twilio/status           call status callback: who hung up, dropped calls
  GET  /twilio/music?seconds=   built-in hold music

No request gets a 5xx: on any failure the caller hears an apology and the
flow's fallback, and the error is logged with the CallSid.
"""
from __future__ import annotations

import logging
import math
import os
import re
from functools import wraps
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.engine import Engine
from ivr.engine.state import CallState
from ivr.store import CallStore, open_store
from ivr.twilio.flows import FlowRegistry
from ivr.twilio.music import hold_music_wav
from ivr.twilio.twiml import Renderer

log = logging.getLogger("ivr.twilio")
CALL_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
FINAL_STATUSES = {"completed", "canceled", "failed", "busy", "no-answer"}
MAX_DIGITS = 32  # more than any menu needs; longer input is treated as a wrong key
QUEUE_RESULTS = {"bridged": "served", "leave": "limit"}
DIAL_OUTCOMES = {"no-answer": "no_answer", "busy": "busy"}
WEBHOOK_METHODS = ["POST", "GET"]
UNSIGNED_PATHS = {"/healthz", "/twilio/music"}  # static and harmless: load balancers and media caches fetch them

bp = Blueprint("twilio", __name__)


class Service:
    """What the webhooks share: flows, store, renderers, the signature check."""

    def __init__(self, registry: FlowRegistry, store: CallStore, auth_token: str | None, public_url: str | None):
        self.registry, self.store = registry, store
        self.validator = RequestValidator(auth_token) if auth_token else None
        self.public_url = (public_url or "").rstrip("/")
        self._renderers: dict[str, Renderer] = {}

    def renderer(self, engine: Engine) -> Renderer:
        key = engine.loaded.version
        if key not in self._renderers:
            self._renderers[key] = Renderer(engine.flow, self.public_url)
        return self._renderers[key]

    def signed_url(self) -> str:
        if not self.public_url:
            return request.url
        return self.public_url + request.full_path.rstrip("?")


DEFAULT_FLOW = Path(__file__).resolve().parent.parent.parent / "call_flows" / "bank_hotline.yaml"


def create_app(flows: list[str] | None = None, flows_dir: str | None = None, store: str | CallStore | None = None,
               auth_token: str | None = None, public_url: str | None = None) -> Flask:
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
    public_url = public_url or env.get("IVR_PUBLIC_URL")
    store = open_store(store) if isinstance(store, str) else store
    registry = FlowRegistry.from_dir(flows_dir, store) if flows_dir else FlowRegistry(flows or [], store)
    token = auth_token if auth_token is not None else os.environ.get("TWILIO_AUTH_TOKEN")
    if not token:
        log.warning("TWILIO_AUTH_TOKEN is not set: webhook signatures are NOT checked. "
                    "Anyone who can reach this server can drive calls. Set it before going live.")
    app = Flask("ivr")
    app.extensions["ivr"] = Service(registry, store, token or None, public_url)
    app.register_blueprint(bp)
    return app


def twilio_params():
    """Twilio's parameters: the form of a POST, the query of a GET (a number may be set up either way)."""
    return request.form if request.method == "POST" else request.args


def svc() -> Service:
    return current_app.extensions["ivr"]


def twiml(xml: str, status: int = 200) -> Response:
    return Response(xml, status=status, mimetype="text/xml")


def only(verb: str = "") -> str:
    """A response with at most one bare verb (<Hangup/>, <Leave/>), or empty."""
    response = VoiceResponse()
    if verb:
        getattr(response, verb)()
    return str(response)


# --- guards ------------------------------------------------------------------

@bp.before_request
def check_signature():
    service = svc()
    if service.validator is None or request.path in UNSIGNED_PATHS:
        return None
    signature = request.headers.get("X-Twilio-Signature", "")
    params = request.form.to_dict() if request.method == "POST" else {}
    if not signature or not service.validator.validate(service.signed_url(), params, signature):
        log.warning("rejected %s %s: missing or invalid X-Twilio-Signature", request.method, request.path)
        abort(403, "invalid or missing X-Twilio-Signature")
    return None


def webhook(handler):
    """Validate CallSid, log the request and the answer, and turn any failure into an apology."""

    @wraps(handler)
    def wrapped(*args, **kwargs):
        sid = twilio_params().get("CallSid", "")
        if not CALL_SID.match(sid):
            return Response("CallSid is missing or malformed: this URL is for Twilio voice webhooks\n",
                            status=400, mimetype="text/plain")
        g.call_sid = sid
        service = svc()
        try:
            service.store.append_log(sid, {"kind": "request", "path": request.path,
                                           "query": request.args.to_dict(), "params": twilio_params().to_dict()})
            xml = handler(sid, *args, **kwargs)
        except Exception:  # noqa: BLE001 - every failure must still reach the caller as an apology
            log.exception("webhook %s failed for call %s", request.path, sid)
            xml = apology(sid)
        try:
            service.store.append_log(sid, {"kind": "response", "path": request.path, "twiml": xml})
        except Exception:  # noqa: BLE001 - the store may be the thing that is down
            log.exception("could not log the response for call %s", sid)
        return twiml(xml)

    return wrapped


def apology(sid: str) -> str:
    """The fallback: an apology, then the flow's fallback number or a goodbye (never an application error)."""
    service = svc()
    engine, state = service.registry.default, None
    try:
        row = service.store.get_call(sid)
        if row:
            state = CallState.from_dict(row)
            engine = service.registry.for_version(state.flow_version) or engine
    except Exception:  # noqa: BLE001 - a broken store or row: fall back to the default flow's words
        log.exception("could not read call %s while apologising", sid)
    flow = engine.flow
    goodbye = None if flow.fallback.transfer_to else engine.render(flow.etiquette.goodbye.say, state)
    xml = service.renderer(engine).speak(engine.apology(state), goodbye, dial=flow.fallback.transfer_to,
                                         then_hangup=not flow.fallback.transfer_to)
    try:
        service.store.append_log(sid, {"kind": "note", "fact": "fallback", "to": flow.fallback.transfer_to})
        if state is not None and not state.ended:  # the call is over for the engine either way
            expected, state.ended = state.turn, True
            state.turn += 1
            service.store.advance(sid, expected, state.to_dict(), xml)
            if goodbye:
                service.store.append_log(sid, {"kind": "note", "fact": "hung_up", "by": "engine",
                                               "after_goodbye": True, "turn": state.turn})
    except Exception:  # noqa: BLE001 - the store may be what failed
        log.exception("could not record the fallback of call %s", sid)
    return xml


def log_notes(sid: str, notes: list, turn: int) -> None:
    for note in notes:
        svc().store.append_log(sid, {**note.to_dict(), "kind": "note", "turn": turn})


# --- the call ------------------------------------------------------------------

@bp.route("/twilio/voice", methods=WEBHOOK_METHODS)
@bp.route("/twilio/voice/<flow>", methods=WEBHOOK_METHODS)
@webhook
def voice(sid: str, flow: str | None = None) -> str:
    service = svc()
    if service.store.get_call(sid) is not None:  # Twilio retried the first webhook
        return service.store.response_for(sid, 0) or apology(sid)
    engine = service.registry.for_new_call(flow, twilio_params().get("To", ""))
    if engine is None:
        log.error("call %s asked for unknown flow '%s'; known: %s", sid, flow, service.registry.names())
        return apology(sid)
    state = engine.new_call(caller=twilio_params().get("From", ""), called=twilio_params().get("To", ""))
    turn = engine.start(state)
    xml = service.renderer(engine).render(turn.actions, sid, state.turn)
    if not service.store.create_call(sid, state.to_dict(), xml):
        return service.store.response_for(sid, 0) or apology(sid)
    log_notes(sid, turn.notes, state.turn)
    return xml


@bp.route("/twilio/event", methods=WEBHOOK_METHODS)
@webhook
def event(sid: str) -> str:
    service = svc()
    kind = request.args.get("k", "")
    try:
        expected = int(request.args.get("t", ""))
    except ValueError:
        log.error("call %s: event URL without a valid turn: %s", sid, request.full_path)
        return apology(sid)
    row = service.store.get_call(sid)
    if row is None:
        log.error("call %s is not in the store (event %s)", sid, kind)
        return apology(sid)
    state = CallState.from_dict(row)
    if state.turn > expected:  # a duplicate delivery: same answer, no second step
        return service.store.response_for(sid, expected + 1) or apology(sid)
    if state.turn < expected:
        log.error("call %s: event for turn %s but the call is at turn %s", sid, expected, state.turn)
        return apology(sid)
    engine = service.registry.for_version(state.flow_version)
    if engine is None:
        log.error("call %s pinned flow version %s, which is in no store", sid, state.flow_version)
        return apology(sid)
    turn = engine.handle(state, event_from_request(kind, sid, expected))
    xml = service.renderer(engine).render(turn.actions, sid, state.turn)
    if not service.store.advance(sid, expected, state.to_dict(), xml):
        return service.store.response_for(sid, expected + 1) or apology(sid)
    log_notes(sid, turn.notes, state.turn)
    return xml


def event_from_request(kind: str, sid: str, turn: int):
    """Twilio's parameters -> one engine event."""
    form = twilio_params()
    if form.get("CallStatus") in FINAL_STATUSES:  # the caller is gone; Twilio ignores what we answer
        if kind == "record" and form.get("RecordingUrl"):  # a complaint cut short is still kept (E15)
            svc().store.append_log(sid, {"kind": "note", "fact": "recorded", "turn": turn, "hung_up": True,
                                         "url": form["RecordingUrl"],
                                         "seconds": _number(form.get("RecordingDuration"))})
        return ev.CallerHungUp()
    if kind == "gather":
        digits = form.get("Digits", "").strip()
        if digits:
            return ev.Digits(digits if len(digits) <= MAX_DIGITS else "?")
        speech = form.get("SpeechResult", "").strip()
        if speech:
            return ev.Speech(speech[:500], _confidence(form.get("Confidence")))
        return ev.Silence()
    if kind == "pause":
        return ev.PauseOver()
    if kind == "record":
        return ev.Recorded(form.get("RecordingUrl", ""), _number(form.get("RecordingDuration")))
    if kind == "queue":
        result = form.get("QueueResult", "")
        if result == "hangup":
            return ev.CallerHungUp()
        return ev.HoldEnded(QUEUE_RESULTS.get(result, "failed"), _number(form.get("QueueTime")))
    if kind == "dial":
        accepted = any(e.get("fact") == "agent_accepted" and e.get("turn") == turn
                       for e in svc().store.call_log(sid))
        status = form.get("DialCallStatus", "failed")
        if status in ("completed", "answered"):
            return ev.TransferEnded("connected" if accepted else "declined")
        return ev.TransferEnded(DIAL_OUTCOMES.get(status, "failed"))
    raise ValueError(f"unknown event kind '{kind}'")


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number >= 0 else 0.0


def _confidence(value) -> float:
    """Twilio's Confidence is 0..1; anything unreadable counts as not understood (0)."""
    return min(_number(value), 1.0)


# --- holds ---------------------------------------------------------------------

@bp.route("/twilio/hold/wait", methods=WEBHOOK_METHODS)
@webhook
def hold_wait(sid: str) -> str:
    """Twilio requests this again each time its TwiML ends, for as long as the caller is queued."""
    service = svc()
    row = service.store.get_call(sid)
    state = CallState.from_dict(row) if row else None
    engine = service.registry.for_version(state.flow_version) if state else None
    if engine is None or state.phase != "holding":
        return only("leave")  # the Enqueue action then apologises
    queue_time = _number(twilio_params().get("QueueTime"))
    actions = engine.hold_wait(state, queue_time)
    if any(isinstance(a, act.Say) for a in actions):
        service.store.append_log(sid, {"kind": "note", "fact": "check_in", "turn": state.turn,
                                       "queue_time": queue_time})
    return service.renderer(engine).render(actions, sid, state.turn)


@bp.route("/twilio/hold/return", methods=WEBHOOK_METHODS)
@webhook
def hold_return(sid: str) -> str:
    """Played to the queued caller as an agent takes them: 'thank you for waiting' (E9)."""
    service = svc()
    row = service.store.get_call(sid)
    if row is None:
        return only()
    state = CallState.from_dict(row)
    engine = service.registry.for_version(state.flow_version) or service.registry.default
    service.store.append_log(sid, {"kind": "note", "fact": "hold_returned", "turn": state.turn})
    return service.renderer(engine).speak(engine.hold_returning(state))


# --- warm transfer: the agent's leg ---------------------------------------------

@bp.route("/twilio/whisper", methods=WEBHOOK_METHODS)
@webhook
def whisper(sid: str) -> str:
    """The agent answered: tell them who is calling and why; only 1 connects the caller."""
    service = svc()
    parent = request.args.get("parent", "")
    row = service.store.get_call(parent) if CALL_SID.match(parent) else None
    if row is None:
        return only("hangup")
    state = CallState.from_dict(row)
    engine = service.registry.for_version(state.flow_version)
    renderer = service.renderer(engine)
    response = VoiceResponse()
    gather = Gather(num_digits=1, timeout=10, method="POST", action=renderer.link(
        "/twilio/whisper/answer", parent=parent, t=request.args.get("t", "")))
    gather.append(renderer.say_plain(engine.whisper(state)))
    response.append(gather)
    response.hangup()  # no key pressed: the agent leg ends, the caller hears the apology and a choice
    return str(response)


@bp.route("/twilio/whisper/answer", methods=WEBHOOK_METHODS)
@webhook
def whisper_answer(sid: str) -> str:
    service = svc()
    parent = request.args.get("parent", "")
    if twilio_params().get("Digits") == "1" and CALL_SID.match(parent):
        service.store.append_log(parent, {"kind": "note", "fact": "agent_accepted", "agent_call": sid,
                                          "turn": _int(request.args.get("t"))})
        return only()  # an empty answer bridges the two calls
    return only("hangup")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- status and music ------------------------------------------------------------

@bp.route("/twilio/status", methods=WEBHOOK_METHODS)
@webhook
def status(sid: str) -> str:
    """The call ended. If we had not hung up, the caller did (before our goodbye, or during its pause)."""
    service = svc()
    if twilio_params().get("CallStatus") not in FINAL_STATUSES:
        return only()
    for _ in range(3):  # a webhook of the same call may be saving at this moment: try again
        row = service.store.get_call(sid)
        if row is None or row.get("ended"):
            break
        state = CallState.from_dict(row)
        expected = state.turn
        engine = service.registry.for_version(state.flow_version)
        if engine is None:
            break
        turn = engine.handle(state, ev.CallerHungUp())
        if service.store.advance(sid, expected, state.to_dict(), only()):
            log_notes(sid, turn.notes, state.turn)
            break
    service.store.append_log(sid, {"kind": "note", "fact": "call_ended", "status": twilio_params().get("CallStatus"),
                                   "duration": _number(twilio_params().get("CallDuration"))})
    return only()


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
