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
  POST /twilio/fallback[/<flow>] the number's fallback URL (Twilio: our server failed or was slower than
                                15 s): apology and the flow's fallback; stateless, no store needed
  POST /twilio/fallback/dialled?flow=  action of the fallback <Dial>: a failed fallback ends politely
  GET  /twilio/music?seconds=   built-in hold music

No request gets a 5xx. Each endpoint's failure answer is valid TwiML for the
context Twilio requests it in (the simulator refuses a verb Twilio forbids there):
- the caller's call: the apology and the flow's fallback (<Say>, <Dial> with an action, or <Hangup>);
- the agent's whisper (<Number url>, on the agent's leg): <Hangup/>, which ends only the agent's leg —
  <Dial> is not allowed there (https://www.twilio.com/docs/voice/twiml/number#url);
- a wait URL: <Leave/>, so the Enqueue action apologises — a wait URL may hold only Play, Say, Pause,
  Hangup, Redirect, Leave and Gather (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-wait-url);
- a <Queue url> (played to the dequeued caller): a short <Say> — only Play, Say, Pause and Redirect
  are allowed there (https://www.twilio.com/docs/voice/twiml/queue#attributes-url).
"""
from __future__ import annotations

import logging
import os
import re
from functools import lru_cache, wraps
from pathlib import Path
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from flask import Blueprint, Flask, Response, abort, current_app, request

from ivr import settings
from ivr.call import facts
from ivr.call.registry import FlowRegistry
from ivr.call.session import CallProblem, CallSession, Misdirected
from ivr.engine import actions as act
from ivr.media.live import with_line
from ivr.store import CallStore, StoreError, open_store
from ivr.store import guard
from ivr.twilio import inbound
from ivr.twilio import params as tw
from ivr.twilio.inbound import IDEMPOTENCY_HEADER, MAX_REQUEST_BYTES, TURN, args, clean, form, one_line, received
from ivr.twilio import music as hold_music
from ivr.twilio.twiml import Renderers, only

log = logging.getLogger("ivr.twilio")
CALL_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
WEBHOOK_METHODS = ["POST", "GET"]
DEFAULT_FLOW = Path(__file__).resolve().parent.parent.parent / "call_flows" / "bank_hotline.yaml"

bp = Blueprint("twilio", __name__)


class Service:
    """What the webhooks share: the call session, the TwiML renderers, the signature check."""

    def __init__(self, registry: FlowRegistry, store: CallStore, auth_token: str | None, public_url: str | None,
                 budget: float = guard.DEFAULT_BUDGET, shared_key: str | None = None):
        self.registry, self.store, self.budget = registry, store, budget
        self.signatures = inbound.Signatures(auth_token, shared_key)
        self.public_url = (public_url or "").rstrip("/")
        self.renderers = Renderers(self.public_url)
        self.session = CallSession(registry, store, self.renderers.answer)



def create_app(flows: list[str] | None = None, flows_dir: str | None = None, store: str | CallStore | None = None,
               auth_token: str | None = None, public_url: str | None = None,
               max_request_bytes: int | None = None, budget: float | None = None, line_audio: bool | None = None,
               media_clock=None) -> Flask:
    """The WSGI app. `flows` are flow files (the first answers unmatched numbers), or `flows_dir` a folder.

    Unset arguments come from the environment, for WSGI servers (`gunicorn 'ivr.twilio:create_app()'`):
    IVR_FLOWS (files separated by ':'), IVR_FLOWS_DIR, IVR_STORE, IVR_PUBLIC_URL, TWILIO_AUTH_TOKEN,
    IVR_MAX_REQUEST_BYTES, IVR_WEBHOOK_BUDGET (seconds a webhook may take before the caller hears the
    apology; 3 by default), TWILIO_WEBHOOK_SHARED_KEY (the secret of a Webhooks SharedKey, when a Webhook
    Rule has Twilio sign our URLs with it instead of the Auth Token); the default is the bank hotline flow with the SQLite store calls.db.
    The store is wrapped in a GuardedStore (ivr.store.guard): the budget's deadline and a circuit breaker.
    """
    env = os.environ
    flows_dir = flows_dir or env.get("IVR_FLOWS_DIR")
    if not flows and not flows_dir:
        flows = env["IVR_FLOWS"].split(":") if env.get("IVR_FLOWS") else [str(DEFAULT_FLOW)]
    store = store or env.get("IVR_STORE", "sqlite:///calls.db")
    store = open_store(store) if isinstance(store, str) else store
    if not isinstance(store, guard.GuardedStore):
        store = guard.GuardedStore(store)
    registry = FlowRegistry.from_dir(flows_dir, store) if flows_dir else FlowRegistry(flows or [], store)
    token = auth_token if auth_token is not None else env.get("TWILIO_AUTH_TOKEN")
    if not token:
        log.warning("TWILIO_AUTH_TOKEN is not set: webhook signatures are NOT checked. "
                    "Anyone who can reach this server can drive calls. Set it before going live.")
    app = Flask("ivr")
    limit = max_request_bytes or settings.whole("IVR_MAX_REQUEST_BYTES", MAX_REQUEST_BYTES)
    app.config["MAX_CONTENT_LENGTH"] = limit  # werkzeug also stops a chunked body at the limit (413)
    app.config["MAX_FORM_MEMORY_SIZE"] = limit
    budget = budget or settings.seconds("IVR_WEBHOOK_BUDGET", guard.DEFAULT_BUDGET)
    app.extensions["ivr"] = Service(registry, store, token or None, public_url or env.get("IVR_PUBLIC_URL"), budget,
                                    shared_key=env.get("TWILIO_WEBHOOK_SHARED_KEY") or None)
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


def line_window(kind: str, turn: int) -> int | None:
    """A Gather's action URL closes listening window `turn`: its line verdict is read with the call
    (None: no line audio here, or not a listening event)."""
    return turn if kind == "gather" and "ivr_line" in current_app.extensions else None


def line_of(call, sid: str, turn: int):
    """The line over the window (None: no audio; ivr.media.live.line_for), from what was read with the call."""
    if call.line is None:
        return None
    from ivr.media.live import line_for

    return line_for(current_app.extensions["ivr_line"].store, sid, turn, first=call.line)


def svc() -> Service:
    return current_app.extensions["ivr"]


@bp.before_request
def guard_request():
    """Too big: 413 before the body is read; then Twilio's signature (403)."""
    service = svc()
    return inbound.too_big() or service.signatures.check(service.public_url)


def webhook(on_failure):
    """Validate the CallSid; any failure becomes `on_failure(sid, reason)`, the harmless answer for
    this endpoint's context. A CallProblem (a request that does not fit the call) is one log line.
    A Misdirected request (an action URL we never gave this call at this turn: unknown k, a turn from the
    future or long past, garbage t) leaves the call untouched: it gets the call's current answer again
    (or a hang-up if the call is over), one log line, and the request and answer in the call log."""

    def decorate(handler):
        @wraps(handler)
        def wrapped(*a, **kwargs):
            sid = form().get("CallSid", "")
            if not CALL_SID.match(sid):
                return Response("CallSid is missing or malformed: this URL is for Twilio voice webhooks\n",
                                status=400, mimetype="text/plain")
            budget = svc().budget
            try:
                with guard.budget(budget):
                    xml = handler(sid, *a, **kwargs)
            except Misdirected as exc:
                with guard.budget(budget / 3):
                    xml = misdirected(sid, exc)
            except CallProblem as exc:
                log.error("%s %s: %s", one_line(request.path), sid, one_line(exc))
                with guard.budget(budget / 3):
                    xml = on_failure(sid, str(exc))
            except StoreError as exc:  # the store is down, frozen or slow: one line, not a traceback per call
                log.error("webhook %s for call %s: %s", one_line(request.path), sid, one_line(exc))
                with guard.budget(budget / 3):
                    xml = on_failure(sid, f"store: {exc}")
            except Exception as exc:  # noqa: BLE001 - every failure must still reach Twilio as TwiML
                log.exception("webhook %s failed for call %s", one_line(request.path), sid)
                with guard.budget(budget / 3):
                    xml = on_failure(sid, f"{type(exc).__name__}: {exc}")
            return Response(xml, mimetype="text/xml")

        return wrapped

    return decorate


def misdirected(sid: str, exc: Misdirected) -> str:
    call = exc.call
    answer = call.answer if call is not None and call.answer and not call.state.ended else only("hangup")
    log.warning("%s %s: %s; the call is left as it is", one_line(request.full_path), sid, one_line(exc))
    try:
        svc().session.note(sid, received(), answer)
    except Exception as err:  # noqa: BLE001 - the answer matters more than its log entry
        log.warning("could not log a misdirected request of call %s: %s", sid, one_line(err))
    return answer


def apologise(sid: str, reason: str) -> str:
    """The caller's call: the apology, then the flow's fallback number or a goodbye. A child leg (an agent's
    call, which has a ParentCallSid) never hears the caller's apology: it is hung up."""
    if form().get("ParentCallSid"):
        log.warning("%s: leg %s of call %s hung up: %s", one_line(request.path), sid,
                    one_line(form().get("ParentCallSid")), one_line(reason))
        return only("hangup")
    service = svc()
    return service.session.fail(sid, reason, received(), service.renderers.apology)


def offers(answer: str | None, kind: str, turn: int) -> bool:
    """Whether the TwiML we answered at `turn` holds the action URL /twilio/event?k=kind&t=turn: Twilio only
    ever requests URLs we gave it, so any other (k, t) is not Twilio following our TwiML. The answer is our
    own rendering (twiml.Renderer.event_url), so the URL is looked for as rendered: in an attribute (ending
    with a quote) or as a <Redirect>'s text (ending with '<'), never as a prefix of a longer turn."""
    if not answer:
        return False
    rendered = _event_url(kind, turn)
    return f'{rendered}"' in answer or f"{rendered}<" in answer


@lru_cache(maxsize=1024)
def _event_url(kind: str, turn: int) -> str:
    return escape(f"/twilio/event?{urlencode({'k': kind, 't': turn})}")


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
    session, query, params = svc().session, args(), form()
    kind, turn = query.get("k", ""), query.get("t", "")
    if not TURN.match(turn):
        call = session.load(sid)
        if call is None:
            raise CallProblem(f"call {sid} is not in the store")
        raise Misdirected(f"event URL without a valid turn (t={turn[:40]!r})", call)
    turn = int(turn)

    def event_of(call):
        if not offers(call.answer, kind, turn):
            raise Misdirected(f"k={kind[:40]!r} at turn {turn} is not an action we gave this call", call)
        event = tw.event_for(kind, params, bool(call.state.accepted_by))
        return with_line(event, line_of(call, sid, turn))  # issue 11: the window's audio, read with the call

    return session.handle(sid, turn, event_of, received(), line_window(kind, turn))


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
    """Twilio requests this again each time its TwiML ends, for as long as the caller is queued. The answer
    depends only on the call and QueueTime, so a retry of the same request gets the same TwiML; its check-in
    carries Twilio's idempotency token, so the scorecard counts it once (and no log is read here)."""
    service = svc()
    call = service.session.load(sid)
    if call is None or call.state.ended or call.state.phase != "holding":
        return only("leave")
    queue_time = tw.number(form().get("QueueTime"))
    actions = call.engine.hold_wait(call.state, queue_time)
    delivery = request.headers.get(IDEMPOTENCY_HEADER)
    check_ins = ([facts.Hold("check_in", queue_time=queue_time, delivery=clean(delivery[:200]) if delivery else None)]
                 if any(isinstance(a, act.Say) for a in actions) else [])
    return service.session.note(sid, received(), service.renderers.get(call.engine).render(actions, sid, call.turn),
                                *check_ins, turn=call.turn)


def returning_words(sid: str, reason: str) -> str:
    """A <Queue url> that failed: still a short thanks for waiting (Say is allowed there; Dial is not)."""
    engine = svc().registry.default
    return svc().renderers.get(engine).speak(engine.render(engine.flow.etiquette.hold.returning, None))


@bp.route("/twilio/hold/return", methods=WEBHOOK_METHODS)
@webhook(returning_words)
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
    parent, turn = args().get("parent", ""), args().get("t", "")
    call = service.session.load(parent) if CALL_SID.match(parent) else None
    if call is None or call.state.phase != "ringing" or str(call.turn) != turn:
        return only("hangup")
    answer = service.renderers.get(call.engine).whisper(call.engine.whisper(call.state), parent, call.turn)
    return service.session.note(sid, received(), answer)


@bp.route("/twilio/whisper/answer", methods=WEBHOOK_METHODS)
@webhook(lambda sid, reason: only("hangup"))
def whisper_answer(sid: str) -> str:
    parent, turn = args().get("parent", ""), args().get("t", "")
    accepted = (form().get("Digits") == "1" and CALL_SID.match(parent) and TURN.match(turn)
                and svc().session.accept_transfer(parent, int(turn), sid))
    return svc().session.note(sid, received(), only() if accepted else only("hangup"))  # empty: bridge the calls


# --- the number's fallback URL -------------------------------------------------------------

def fallback_failed(sid: str, reason: str) -> str:
    return only("hangup")


@bp.route("/twilio/fallback", methods=WEBHOOK_METHODS)
@bp.route("/twilio/fallback/<flow>", methods=WEBHOOK_METHODS)
@webhook(fallback_failed)
def fallback(sid: str, flow: str | None = None) -> str:
    """Twilio requests the number's fallback URL "if Twilio is unable to retrieve or execute TwiML from your
    web server" (an error, or no answer within 15 s), with ErrorCode and ErrorUrl
    (https://www.twilio.com/docs/usage/security/availability-reliability). Stateless: no store read or
    written, so a second host with the same flows can serve it while the first is down. The caller hears
    the flow's apology and its fallback (a transfer whose failure still ends politely, or a goodbye)."""
    service, params = svc(), form()
    engine = service.registry.for_new_call(flow, params.get("To", "")) or service.registry.default
    log.error("fallback URL for call %s: Twilio error %s at %s", sid, params.get("ErrorCode", "?"),
              params.get("ErrorUrl", "?"))
    return service.renderers.apology(engine, None)


@bp.route("/twilio/fallback/dialled", methods=WEBHOOK_METHODS)
@webhook(fallback_failed)
def fallback_dialled(sid: str) -> str:
    """The fallback <Dial> ended: after a conversation, hang up; if nobody took the call, apologise and say
    goodbye (Dial action parameters: https://www.twilio.com/docs/voice/twiml/dial#action)."""
    service, params = svc(), form()
    engine = service.registry.for_new_call(request.args.get("flow") or None) or service.registry.default
    if tw.dial_bridged(params):
        return only("hangup")
    words = engine.flow.etiquette
    return service.renderers.get(engine).speak(engine.render(words.transfer.unanswered_apology, None),
                                               engine.render(words.goodbye.say, None), then_hangup=True)


# --- static -------------------------------------------------------------------------------

@bp.get("/twilio/music")
def music():
    """Unsigned: the length is clamped before anything is built or cached (see ivr.twilio.music), and each
    length is one cacheable file (ETag, long Cache-Control; 304 for If-None-Match, Range honoured)."""
    raw = request.args.get("seconds", "30")
    if not TURN.match(raw):
        abort(400, "seconds must be a whole number")
    response = Response(hold_music.hold_music_wav(raw), mimetype="audio/wav")
    response.set_etag(hold_music.etag(raw))
    # Twilio caches <Play> media by its HTTP cache headers: without them it may fetch the file again on
    # every wait-URL round and drift the 30 s check-in rhythm (https://www.twilio.com/docs/voice/twiml/play)
    response.cache_control.public, response.cache_control.max_age = True, 86400
    return response.make_conditional(request)


@bp.get("/healthz")
def healthz():
    return {"ok": True, "flows": svc().registry.names()}
