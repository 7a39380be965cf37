"""How the fake Twilio reaches the app: in-process (Flask test client) or over HTTP (requests).

Both sign every request exactly like Twilio: X-Twilio-Signature is the HMAC of the full
URL and the POST parameters under the account's auth token, so the app really checks it.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator


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

    def signature(self, url: str, params: dict) -> str:
        return self.signer.compute_signature(url, params)

    def can_reach(self, url: str) -> bool:
        return _origin(url) == _origin(self.base_url)

    def send(self, method: str, url: str, params: dict | None = None) -> Reply:
        params = dict(params or {}) if method == "POST" else {}
        headers = {"X-Twilio-Signature": self.signature(url, params)}
        reply = self._dispatch(method, url, params, headers)
        if reply.status == 403:
            raise SimulatorError(
                f"{method} {url} was refused with 403: the app did not accept the X-Twilio-Signature. "
                "The simulator signs with the token it was given (--token or TWILIO_AUTH_TOKEN, none if neither "
                "is set); it must be the server's TWILIO_AUTH_TOKEN.")
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
    """The Flask app in this process, through its test client: the production code path, no network."""

    def __init__(self, app, token: str, base_url: str = "http://localhost"):
        super().__init__(token)
        self.app, self.base_url = app, base_url.rstrip("/")
        self.client = app.test_client()

    def _dispatch(self, method, url, params, headers):
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = self.client.open(path, method=method, data=params if method == "POST" else None,
                                    headers=headers, base_url=f"{parts.scheme}://{parts.netloc}")
        return Reply(response.status_code, response.get_data(), response.mimetype or "")

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
    ws:// on the server the simulator talks to (no TLS on a local server)."""

    def __init__(self, base_url: str, url: str, headers: dict):
        from simple_websocket import Client

        parts, base = urlsplit(url), urlsplit(base_url)
        target = f"{'wss' if base.scheme == 'https' else 'ws'}://{base.netloc}{parts.path}"
        try:
            self.ws = Client.connect(target, headers=headers)
        except Exception as exc:  # noqa: BLE001 - refused upgrade, unreachable server
            raise SimulatorError(f"cannot open the media stream {target}: {exc}") from exc

    def send(self, text: str) -> bool:
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


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc
