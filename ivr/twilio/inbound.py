"""What every request goes through before a view sees it: its size, Twilio's signature, and the
cleaning of everything the caller (or anyone) sent, so no control character reaches TwiML or the log."""
from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from flask import Response, abort, current_app, request
from twilio.request_validator import (HMAC_SHA1, HMAC_SHA256, RequestValidator, compare,  # compare: constant time
                                      get_signature_algorithm)
from werkzeug.datastructures import ImmutableMultiDict

log = logging.getLogger("ivr.twilio")
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


def signed_url(public_url: str) -> str:
    """The URL exactly as Twilio requested (and signed) it: the raw request line's target, percent-escapes
    untouched (werkzeug's request.url and full_path decode them), behind --public-url if set.
    gunicorn puts the target in RAW_URI, werkzeug's server and test client in REQUEST_URI as well."""
    req = request._get_current_object()
    environ = req.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        raw = req.full_path.rstrip("?")
    elif "://" in raw.split("?", 1)[0]:  # absolute-form request target (a proxy may send one)
        parts = urlsplit(raw)
        raw = parts.path + (f"?{parts.query}" if parts.query else "")
    if "?" not in raw and environ.get("QUERY_STRING"):  # a server that keeps only the path there
        raw += "?" + environ["QUERY_STRING"]
    return (public_url or f"{req.scheme}://{req.host}") + raw  # host_url, without its IRI round trip


def clean(value: str) -> str:
    """Caller-provided text as it may reach TwiML and the call log: no character XML 1.0 forbids, no C1
    control, bounded length. (A From of "+1555\x01" once made the agent's whisper invalid XML.)"""
    return NOT_XML.sub("", value[:MAX_VALUE_CHARS * 2])[:MAX_VALUE_CHARS]


def one_line(value) -> str:
    """Anything from outside, fit for one line of the server's log: controls and line breaks escaped."""
    text = str(value)[:500]
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _cleaned(multi: ImmutableMultiDict) -> ImmutableMultiDict:
    """`multi` itself when nothing in it needs cleaning (Twilio's own requests: one search over all of it),
    else a cleaned copy."""
    flat = [text for pair in multi.items(multi=True) for text in pair]
    if max(map(len, flat), default=0) <= MAX_VALUE_CHARS and not NOT_XML.search("".join(flat)):
        return multi
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


def too_big() -> Response | None:
    """413 before anything reads the body: Content-Length says it is too big (a chunked body is cut at the same
    limit by werkzeug when read)."""
    limit, req = current_app.config["MAX_CONTENT_LENGTH"], request._get_current_object()
    if req.content_length is not None and req.content_length > limit:
        log.warning("refused %s %s: body of %d bytes (limit %d)", req.method, one_line(req.path),
                    req.content_length, limit)
        return Response(f"request body over {limit} bytes\n", status=413, mimetype="text/plain")
    return None


class SignedParams:
    """The parameters as RequestValidator.compute_signature reads them (no copy): it asks `getall(name)` first,
    then `getlist`, then `[name]`, each miss an AttributeError; answering the first makes a signature about
    twice as fast, and a repeated parameter is signed with all its values, as Twilio signs it."""

    __slots__ = ("params",)

    def __init__(self, params):
        self.params = params  # a MultiDict (the request's form) or a plain dict

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def getall(self, key: str) -> list[str]:
        getlist = getattr(self.params, "getlist", None)
        return getlist(key) if getlist is not None else [self.params[key]]


SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


class Signatures:
    """Who signs our webhooks. By default Twilio signs with the account's Auth Token (HMAC-SHA1); when a
    Webhook Rule matches the URL it signs with that Setting's SharedKey secret and algorithm instead, and says
    so in X-Twilio-Webhooks-Signature-Settings (key=...,algorithm=HMAC_SHA256): only the hash and the secret
    change, the signed string is the same. https://www.twilio.com/docs/usage/webhooks/webhook-shared-keys"""

    def __init__(self, auth_token: str | None, shared_key: str | None = None):
        self.token = RequestValidator(auth_token) if auth_token else None
        self.shared = RequestValidator(shared_key) if shared_key else None

    def check(self, public_url: str) -> None:
        """403 unless X-Twilio-Signature is Twilio's for this URL and form (no Auth Token: nothing is checked).
        https://www.twilio.com/docs/usage/webhooks/webhooks-security"""
        req = request._get_current_object()
        if self.token is None or req.path in UNSIGNED_PATHS:
            return None
        settings = req.headers.get(SETTINGS_HEADER)
        validator, algorithm = (self.token, HMAC_SHA1) if settings is None else (self.shared,
                                                                                  get_signature_algorithm(settings))
        if validator is None:
            _refuse(req, f"signed with a Webhooks SharedKey ({SETTINGS_HEADER}), but TWILIO_WEBHOOK_SHARED_KEY "
                         "is not set on this server")
        if algorithm.upper() not in (HMAC_SHA1, HMAC_SHA256):
            _refuse(req, f"signed with {one_line(algorithm)[:40]}, an algorithm Twilio does not name")
        signature = req.headers.get("X-Twilio-Signature", "")
        signed = SignedParams(req.form if req.method == "POST" else ())
        url = signed_url(public_url)
        # The URL as requested is one of the two forms validate() tries (with and without the port), so a match
        # on it alone is valid: one HMAC for a genuine request instead of two; anything else gets the full check.
        genuine = signature and compare(validator.compute_signature(url, signed, algorithm), signature)
        if not signature or not (genuine or validator.validate(url, signed, signature, algorithm)):
            _refuse(req, "missing or invalid X-Twilio-Signature")
        return None


def _refuse(req, why: str) -> None:
    """403; the reason goes to our log only (the caller of a forged request learns nothing of the setup)."""
    log.warning("rejected %s %s: %s", req.method, one_line(req.path), why)
    abort(403, "invalid or missing X-Twilio-Signature")
