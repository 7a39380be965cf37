"""How the fake Twilio reaches the app: in-process (a direct WSGI call) or over HTTP (requests).

Both sign every request exactly like Twilio: X-Twilio-Signature is the HMAC of the full
URL and the POST parameters under the account's auth token, so the app really checks it.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from urllib.parse import quote_plus, unquote_to_bytes, urlencode, urlsplit

from twilio.request_validator import RequestValidator

from ivr.twilio.inbound import SignedParams  # signs as the app checks: all values of a repeated parameter


class SimulatorError(Exception):
    """The call cannot go on: the app refused a request, was unreachable, or answered something Twilio could not use."""


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


UNSET_TOKEN = "no-token-given"


class Transport:
    base_url: str

    def __init__(self, token: str | None):
        # A server started without TWILIO_AUTH_TOKEN (./dev serve) checks no signature: any token will do.
        # A server with one refuses the wrong token with 403, which send() explains.
        self.signer = RequestValidator(token or UNSET_TOKEN)

    public_url: str | None = None  # the server's --public-url: Twilio signs that URL, not the one it reaches

    def signed_url(self, url: str) -> str:
        if not self.public_url:
            return url
        parts = urlsplit(url)
        return self.public_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")

    def signature(self, url: str, params: dict) -> str:
        return self.signer.compute_signature(self.signed_url(url), SignedParams(params))

    def can_reach(self, url: str) -> bool:
        return _origin(url) == _origin(self.base_url)

    def send(self, method: str, url: str, params: dict | None = None) -> Reply:
        if method == "GET" and params:  # Twilio sends a GET webhook's parameters in the query string
            # (https://www.twilio.com/docs/usage/webhooks/webhooks-overview), and signs the full URL
            url += ("&" if "?" in url else "?") + urlencode(params)
        params = dict(params or {}) if method == "POST" else {}
        headers = {"X-Twilio-Signature": self.signature(url, params)}
        reply = self._dispatch(method, url, params, headers)
        if reply.status == 403:
            raise SimulatorError(
                f"{method} {url} was refused with 403: the app did not accept the X-Twilio-Signature. "
                f"The signature covers the URL: the simulator signed {self.signed_url(url)}; a server started "
                "with --public-url checks its own public URL instead, so give `simulate` the same --public-url. "
                "It also covers the token (--token or TWILIO_AUTH_TOKEN, none if neither is set): it must be the "
                "server's TWILIO_AUTH_TOKEN.")
        if reply.status >= 400:
            raise SimulatorError(f"{method} {url} answered {reply.status}: {reply.text.strip()[:300]}")
        return reply

    def _dispatch(self, method: str, url: str, params: dict, headers: dict) -> Reply:
        raise NotImplementedError

    def open_websocket(self, url: str, headers: dict):
        """A WebSocket to the app (a Media Stream): an object with send(text) -> bool (False: the app
        closed it) and close()."""
        raise SimulatorError("this transport cannot open a media stream WebSocket")

    def bind_clock(self, clock) -> None:
        """The call's virtual clock, for an app that judges media timing by it (in-process only)."""


class InProcessTransport(Transport):
    """The WSGI app in this process, called directly: the production code path, no network, no test client.

    Each request is built the way a WSGI server builds it from Twilio's HTTP request (PEP 3333): the
    method, the path and raw query, Host, the form-encoded UTF-8 body with its Content-Type and
    Content-Length, and X-Twilio-Signature, so the app's signature check runs on exactly what it would
    see behind gunicorn.
    """

    def __init__(self, app, token: str, base_url: str = "http://localhost"):
        super().__init__(token)
        self.app, self.base_url = app, base_url.rstrip("/")

    def _dispatch(self, method, url, params, headers):
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = str(parts.port or (443 if parts.scheme == "https" else 80))
        body = form_body(params) if method == "POST" else b""
        environ = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            # PEP 3333: PATH_INFO is the percent-decoded path, its bytes carried as latin-1
            "PATH_INFO": unquote_to_bytes(parts.path or "/").decode("latin-1"),
            "QUERY_STRING": parts.query,
            "SERVER_NAME": host,
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": parts.netloc,
            "HTTP_USER_AGENT": "TwilioProxy/1.1",
            "HTTP_ACCEPT": "*/*",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": parts.scheme or "http",
            "wsgi.input": BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if method == "POST":
            # "Twilio makes HTTP requests to your application in the application/x-www-form-urlencoded
            # format" (twilio.com/docs/messaging/guides/webhook-request): no charset hint, UTF-8 text
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            environ["CONTENT_LENGTH"] = str(len(body))
        for name, value in headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        answer: dict = {}
        written: list[bytes] = []  # what the app passes to PEP 3333's legacy write() callable

        def start_response(status, response_headers, exc_info=None):
            answer["status"], answer["headers"] = status, response_headers
            return written.append

        result = self.app(environ, start_response)
        try:
            data = b"".join([*written, *result])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        content_type = next((v for k, v in answer["headers"] if k.lower() == "content-type"), "")
        return Reply(int(answer["status"].split(" ", 1)[0]), data, content_type.split(";")[0].strip())

    def open_websocket(self, url, headers):
        return InProcessSocket(self.app, url, headers)

    def bind_clock(self, clock) -> None:
        self.clock = clock


class InProcessSocket:
    """A Media Stream WebSocket into the in-process app: the endpoint's own connection object
    (ivr.media.live.StreamConnection) fed message by message, after the same upgrade check."""

    def __init__(self, app, url: str, headers: dict):
        service = app.extensions.get("ivr_line")
        if service is None:
            raise SimulatorError(f"{url}: the app has no media stream endpoint (line audio is off)")
        host = urlsplit(url).netloc
        if not service.upgrade_allowed(headers.get("X-Twilio-Signature"), host):
            raise SimulatorError(f"{url}: the WebSocket upgrade was refused with 403 (X-Twilio-Signature)")
        self.connection = service.connection()

    def send(self, text: str) -> bool:
        return self.connection.receive(text)

    def close(self) -> None:
        self.connection.finish()


class HttpSocket:
    """A real WebSocket (simple-websocket) to a running server; wss:// in the TwiML is reached as
    ws:// on the server the simulator talks to (no TLS on a local server).

    A running server judges a stream's pace by the wall clock, as it must with Twilio, which sends
    20 ms of audio every 20 ms; a call's audio sent in one burst is a flood there and is dropped.
    So media frames go out at most PACE times real time: a few seconds of speech take a second or
    two, and the verdict is in the store when the Gather's webhook follows."""

    PACE = 2.0  # the server drops audio faster than 3x real time (ivr.media.stream flood_factor)

    def __init__(self, base_url: str, url: str, headers: dict):
        from simple_websocket import Client

        parts, base = urlsplit(url), urlsplit(base_url)
        target = f"{'wss' if base.scheme == 'https' else 'ws'}://{base.netloc}{parts.path}"
        try:
            self.ws = Client.connect(target, headers=headers)
        except Exception as exc:  # noqa: BLE001 - refused upgrade, unreachable server
            raise SimulatorError(f"cannot open the media stream {target}: {exc}") from exc
        self.opened, self.frames = time.monotonic(), 0

    def send(self, text: str) -> bool:
        if '"event": "media"' in text:
            self.frames += 1
            ahead = self.frames * 0.02 / self.PACE - (time.monotonic() - self.opened)
            if ahead > 0:
                time.sleep(ahead)
        try:
            self.ws.send(text)
            return True
        except Exception:  # noqa: BLE001 - the server closed it
            return False

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass


class HttpTransport(Transport):
    """A running server (`ivr serve`), reached over HTTP like Twilio reaches it."""

    def __init__(self, base_url: str, token: str, timeout: float = 15.0):
        super().__init__(token)
        import requests

        self.requests = requests
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self.session = requests.Session()

    def _dispatch(self, method, url, params, headers):
        try:
            response = self.session.request(method, url, data=params if method == "POST" else None,
                                            headers=headers, timeout=self.timeout)
        except self.requests.RequestException as exc:
            raise SimulatorError(f"cannot reach {url}: {exc.__class__.__name__}: {exc}. "
                                 f"Is `ivr serve` running at {self.base_url}?") from exc
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Reply(response.status_code, response.content, content_type)

    def open_websocket(self, url, headers):
        return HttpSocket(self.base_url, url, headers)


@lru_cache(maxsize=4096)
def _quote(text: str) -> str:
    return quote_plus(text)


def form_body(params: dict) -> bytes:
    """application/x-www-form-urlencoded in UTF-8, exactly as urlencode(params) writes it; the parameter
    names and most values (CallSid, From, To...) repeat on every request of a call, so their quoting is kept."""
    return "&".join(f"{_quote(str(k))}={_quote(str(v))}" for k, v in params.items()).encode("ascii")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc
