"""How the fake Twilio reaches the app: in-process (Flask test client) or over HTTP (requests).

Both sign every request exactly like Twilio: X-Twilio-Signature is the HMAC of the full
URL and the POST parameters under the account's auth token, so the app really checks it.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

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

    public_url: str | None = None  # the server's --public-url: Twilio signs that URL, not the one it reaches

    def signed_url(self, url: str) -> str:
        if not self.public_url:
            return url
        parts = urlsplit(url)
        return self.public_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")

    def signature(self, url: str, params: dict) -> str:
        return self.signer.compute_signature(self.signed_url(url), params)

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


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc
