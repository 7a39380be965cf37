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
from functools import wraps
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import escape

from flask import Blueprint, Flask, Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import ImmutableMultiDict

from ivr.call import facts
from ivr.call.registry import FlowRegistry
from ivr.call.session import CallProblem, CallSession, Misdirected
from ivr.engine import actions as act
from ivr.media.live import with_line
from ivr.store import CallStore, StoreError, open_store
from ivr.store import guard
from ivr.twilio import params as tw
from ivr.twilio import music as hold_music
from ivr.twilio.twiml import Renderers, only

log = logging.getLogger("ivr.twilio")
CALL_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
WEBHOOK_METHODS = ["POST", "GET"]
UNSIGNED_PATHS = {"/healthz", "/twilio/music"}  # static and harmless: load balancers and media caches fetch them
# Twilio's largest voice webhook is a form of a few kB (about 30 parameters; SpeechResult is the long one).
# Bodies above this are refused with 413 before anything reads them (and before the signature check).
MAX_REQUEST_BYTES = 128 * 1024
MAX_VALUE_CHARS = 4096  # any one parameter, after cleaning
TURN = re.compile(r"^[0-9]{1,9}$")  # a turn in an action URL; anything else is not a URL we wrote
# Characters XML 1.0 does not allow (C0 controls but tab/newline/return, lone surrogates, U+FFFE/U+FFFF),
# plus DEL and the C1 controls: caller-provided text keeps none of them (TwiML must stay well-formed).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
DEFAULT_FLOW = Path(__file__).resolve().parent.parent.parent / "call_flows" / "bank_hotline.yaml"

bp = Blueprint("twilio", __name__)


class Service:
    """What the webhooks share: the call session, the TwiML renderers, the signature check."""

    def __init__(self, registry: FlowRegistry, store: CallStore, auth_token: str | None, public_url: str | None,
                 budget: float = guard.DEFAULT_BUDGET):
        self.registry, self.store, self.budget = registry, store, budget
        self.validator = RequestValidator(auth_token) if auth_token else None
        self.public_url = (public_url or "").rstrip("/")
        self.renderers = Renderers(self.public_url)
        self.session = CallSession(registry, store, self.renderers.answer)

    def signed_url(self) -> str:
        """The URL exactly as Twilio requested (and signed) it: the raw request line's target, percent-escapes
        untouched (werkzeug's request.url and full_path decode them), behind --public-url if set.
        gunicorn puts the target in RAW_URI, werkzeug's server and test client in REQUEST_URI as well."""
        environ = request.environ
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if not raw:
            raw = request.full_path.rstrip("?")
        elif "://" in raw.split("?", 1)[0]:  # absolute-form request target (a proxy may send one)
            parts = urlsplit(raw)
            raw = parts.path + (f"?{parts.query}" if parts.query else "")
        if "?" not in raw and environ.get("QUERY_STRING"):  # a server that keeps only the path there
            raw += "?" + environ["QUERY_STRING"]
        return (self.public_url or request.host_url.rstrip("/")) + raw


def create_app(flows: list[str] | None = None, flows_dir: str | None = None, store: str | CallStore | None = None,
               auth_token: str | None = None, public_url: str | None = None,
               max_request_bytes: int | None = None, budget: float | None = None, line_audio: bool | None = None,
               media_clock=None) -> Flask:
    """The WSGI app. `flows` are flow files (the first answers unmatched numbers), or `flows_dir` a folder.

    Unset arguments come from the environment, for WSGI servers (`gunicorn 'ivr.twilio:create_app()'`):
    IVR_FLOWS (files separated by ':'), IVR_FLOWS_DIR, IVR_STORE, IVR_PUBLIC_URL, TWILIO_AUTH_TOKEN,
    IVR_MAX_REQUEST_BYTES, IVR_WEBHOOK_BUDGET (seconds a webhook may take before the caller hears the
    apology; 3 by default); the default is the bank hotline flow with the SQLite store calls.db.
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
    limit = max_request_bytes or int(env.get("IVR_MAX_REQUEST_BYTES") or MAX_REQUEST_BYTES)
    app.config["MAX_CONTENT_LENGTH"] = limit  # werkzeug also stops a chunked body at the limit (413)
    app.config["MAX_FORM_MEMORY_SIZE"] = limit
    budget = budget or float(env.get("IVR_WEBHOOK_BUDGET") or guard.DEFAULT_BUDGET)
    app.extensions["ivr"] = Service(registry, store, token or None, public_url or env.get("IVR_PUBLIC_URL"), budget)
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


def clean(value: str) -> str:
    """Caller-provided text as it may reach TwiML and the call log: no character XML 1.0 forbids, no C1
    control, bounded length. (A From of "+1555\x01" once made the agent's whisper invalid XML.)"""
    return NOT_XML.sub("", value[:MAX_VALUE_CHARS * 2])[:MAX_VALUE_CHARS]


def one_line(value) -> str:
    """Anything from outside, fit for one line of the server's log: controls and line breaks escaped."""
    text = str(value)[:500]
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _cleaned(multi) -> ImmutableMultiDict:
    return ImmutableMultiDict([(clean(k), clean(v)) for k, v in multi.items(multi=True)])


def form() -> ImmutableMultiDict:
    """Twilio's parameters, cleaned: the form of a POST, the query of a GET (a number may be set up either way).
    The signature is checked on the raw values (before_request); everything after sees only these.
    Cleaned once per request and kept on it (the request object itself, not through Flask's proxies)."""
    req = request._get_current_object()
    cleaned = req.__dict__.get("ivr_form")
    if cleaned is None:
        cleaned = req.__dict__["ivr_form"] = _cleaned(req.form if req.method == "POST" else req.args)
    return cleaned


def args() -> ImmutableMultiDict:
    """The query of an action URL (k, t, parent), cleaned."""
    req = request._get_current_object()
    cleaned = req.__dict__.get("ivr_args")
    if cleaned is None:
        cleaned = req.__dict__["ivr_args"] = _cleaned(req.args)
    return cleaned



IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"  # the same on Twilio's retries of one webhook request:
# https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides


def received(params=None) -> dict:
    """The request as the call log keeps it (replay re-drives calls from these), with Twilio's
    idempotency token when it sent one."""
    params = form() if params is None else params
    req = request._get_current_object()
    entry = {"kind": "request", "path": clean(req.path), "query": args().to_dict(), "params": params.to_dict()}
    token = req.headers.get(IDEMPOTENCY_HEADER)
    if token:
        entry["idempotency_token"] = clean(token[:200])
    return entry


@bp.before_request
def limit_size():
    """413 before anything reads the body: Content-Length says it is too big (a chunked body is cut at the same
    limit by werkzeug when read)."""
    limit, req = current_app.config["MAX_CONTENT_LENGTH"], request._get_current_object()
    if req.content_length is not None and req.content_length > limit:
        log.warning("refused %s %s: body of %d bytes (limit %d)", req.method, one_line(req.path),
                    req.content_length, limit)
        return Response(f"request body over {limit} bytes\n", status=413, mimetype="text/plain")
    return None


@bp.before_request
def check_signature():
    service, req = svc(), request._get_current_object()
    if service.validator is None or req.path in UNSIGNED_PATHS:
        return None
    signature = req.headers.get("X-Twilio-Signature", "")
    signed = req.form.to_dict() if req.method == "POST" else {}
    if not signature or not service.validator.validate(service.signed_url(), signed, signature):
        log.warning("rejected %s %s: missing or invalid X-Twilio-Signature", req.method, one_line(req.path))
        abort(403, "invalid or missing X-Twilio-Signature")
    return None


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
    rendered = escape(f"/twilio/event?{urlencode({'k': kind, 't': turn})}")
    return f'{rendered}"' in answer or f"{rendered}<" in answer


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
    session, kind, params = svc().session, args().get("k", ""), form()
    if not TURN.match(args().get("t", "")):
        call = session.load(sid)
        if call is None:
            raise CallProblem(f"call {sid} is not in the store")
        raise Misdirected(f"event URL without a valid turn (t={args().get('t', '')[:40]!r})", call)
    turn = int(args()["t"])

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
