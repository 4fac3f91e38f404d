"""One POST of a webhook, to a receiver on the public internet only: the address judged is the one
the socket actually connected to, after resolving (api/addresses.is_public), so no spelling of a
private address and no DNS answer that changes between the check and the connection gets through.
No redirects are followed (a 3xx is a failed attempt), no proxy from the environment is used, and
the timeouts are short.
"""

import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from api import addresses

CONNECT_SECONDS = 3.0
READ_SECONDS = 5.0
ANSWER_CHARS = 300  # of the receiver's answer, kept with the attempt


class BlockedAddress(OSError):
    """The receiver's host led to an address webhooks may not reach."""


def _checked(sock, allow_private: bool):  # type: ignore[no-untyped-def]
    peer = sock.getpeername()[0]
    if not allow_private and not addresses.is_public(peer):
        sock.close()
        raise BlockedAddress("The webhook URL leads to a private, loopback or link-local address.")
    return sock


class _PublicHTTPConnection(HTTPConnection):
    allow_private = False

    def _new_conn(self):  # type: ignore[no-untyped-def]
        return _checked(super()._new_conn(), self.allow_private)


class _PublicHTTPSConnection(HTTPSConnection):
    allow_private = False

    def _new_conn(self):  # type: ignore[no-untyped-def]
        return _checked(super()._new_conn(), self.allow_private)


class _PublicAdapter(HTTPAdapter):
    """requests' adapter, whose connections check the address they reached before sending a byte."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        allow = self._allow_private
        http = type("HTTP", (_PublicHTTPConnection,), {"allow_private": allow})
        https = type("HTTPS", (_PublicHTTPSConnection,), {"allow_private": allow})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("HTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("HTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


@dataclass(frozen=True)
class Answer:
    """What one attempt met: the receiver's status and the start of its answer, or the error."""

    delivered: bool
    status_code: int | None
    answer: str
    error: str
    seconds: float


def post(url: str, body: str, headers: dict[str, str], *, allow_private: bool) -> Answer:
    """POST `body` to `url`; delivered means a 2xx answer."""
    session = requests.Session()
    session.trust_env = False  # no HTTP(S)_PROXY: the connection must be to the receiver itself
    adapter = _PublicAdapter(allow_private=allow_private)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    started = time.monotonic()
    try:
        response = session.post(
            url,
            data=body.encode(),
            headers={**headers, "Content-Type": "application/json"},
            timeout=(CONNECT_SECONDS, READ_SECONDS),
            allow_redirects=False,
            stream=True,
        )
        answer = response.raw.read(ANSWER_CHARS * 4, decode_content=True).decode("utf-8", "replace")[:ANSWER_CHARS]
        response.close()
    except requests.RequestException as exc:
        return Answer(False, None, "", _reason(exc), time.monotonic() - started)
    finally:
        session.close()
    seconds = time.monotonic() - started
    if 300 <= response.status_code < 400:
        return Answer(False, response.status_code, answer, "A redirect, which webhooks do not follow.", seconds)
    return Answer(200 <= response.status_code < 300, response.status_code, answer, "", seconds)


def _reason(exc: requests.RequestException) -> str:
    """A one-line reason for a failed attempt, naming no secret (the URL is the owner's own)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, BlockedAddress):
            return str(cause)
        cause = cause.__context__ or cause.__cause__
    if isinstance(exc, requests.Timeout):
        return "No answer within the timeout."
    if isinstance(exc, requests.ConnectionError):
        return "Could not connect."
    return type(exc).__name__
