"""The HTTP layer: a threading server whose handler hands each request to the simulator and
writes back its reply (as late and as slowly as the reply says), and the JSON bodies Runway
answers with."""

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

DOC_URL = "https://docs.dev.runwayml.com/api/"
# The largest request body read: an upload's file (at most 200 MB) and its form's other fields.
MAX_BODY = 201 * 1024 * 1024

# One problem with a request's body: where (keys and list indexes from the top; () for the whole
# body) and what, as Runway's (zod) validator words it.
Issue = tuple[tuple[str | int, ...], str]


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, before it is written."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the first byte goes out
    rate: float | None = None  # bytes per second of the body; None: all at once

    def later(self, delay: float, *, rate: float | None = None) -> "Reply":
        """This reply, `delay` seconds later than it would have gone, and sent at `rate` if given."""
        return replace(self, delay=self.delay + delay, rate=self.rate if rate is None else rate)


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return json_reply(status, {"error": message, "docUrl": DOC_URL}, headers)


def validation_error(issues: Iterable[Issue]) -> Reply:
    """A 400 in the shape of Runway's (zod) validator: one issue per problem, each with its path."""
    body = {
        "error": "Validation of body failed",
        "issues": [{"path": list(path), "message": message} for path, message in issues],
        "docUrl": DOC_URL,
    }
    return json_reply(400, body)


class _UnreadableBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _chunk_size(line: bytes) -> int:
    """The size a chunked body's size line gives (hex digits, then any extensions after a ";")."""
    digits = line.split(b";")[0].strip()
    if not digits or any(c not in b"0123456789abcdefABCDEF" for c in digits):
        raise _UnreadableBody(400, "Malformed chunked body.")
    return int(digits, 16)


class Application(Protocol):
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply: ...


class Server(ThreadingHTTPServer):
    """Serves `app` on (host, port) until shutdown(); each connection is served by a thread of its own.

    `pause(seconds)` waits out a reply's delay and pacing (the simulator's clock, woken by stop()).
    """

    # Connections the kernel accepts before a thread takes them (socketserver's default is 5): a
    # worker opening a hundred connections at once must never find the door shut.
    request_queue_size = 1024
    # Bytes written at a time when a reply is paced.
    chunk_size = 64 * 1024

    def __init__(
        self, address: tuple[str, int], app: Application, *, pause: Callable[[float], object], verbose: bool
    ) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.pause = pause
        self.verbose = verbose

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (on a slow answer, say) has closed its connection before the answer
        # went out: that is the client's choice, not the simulator's fault, so no traceback.
        if not isinstance(sys.exception(), ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "RunwaySimulator/1"
    # Keep-alive, as Runway's API allows: a client may send many requests on one connection. An idle
    # one is closed after `timeout` seconds, as servers do.
    protocol_version = "HTTP/1.1"
    timeout = 15
    # Headers and body go out in separate writes; without this, on a kept-alive connection the body
    # waits for the client's delayed acknowledgement of the headers (40 ms on Linux).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._answer("GET")

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def do_PUT(self) -> None:
        self._answer("PUT")

    def do_PATCH(self) -> None:
        self._answer("PATCH")

    def _answer(self, method: str) -> None:
        try:
            body = self._body()
        except _UnreadableBody as unreadable:
            # The rest of the body, unread, would be taken for the next request: close instead.
            self.close_connection = True
            reply = error(unreadable.status, str(unreadable), {"Connection": "close"})
        else:
            reply = self.server.app.handle(method, self.path, dict(self.headers.items()), body)
        if reply.delay:
            self.server.pause(reply.delay)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if method != "HEAD":
            self._write(reply.body, reply.rate)

    def _body(self) -> bytes:
        """The request's body, sent whole or in chunks, of at most MAX_BODY bytes."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked_body()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _UnreadableBody(400, "Content-Length must be a number of bytes.") from None
        if length > MAX_BODY:
            raise _UnreadableBody(413, f"A request body may be at most {MAX_BODY} bytes.")
        return self.rfile.read(length) if length > 0 else b""

    def _chunked_body(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            length = _chunk_size(self.rfile.readline(1024))
            size += length
            if size > MAX_BODY:
                raise _UnreadableBody(413, f"A request body may be at most {MAX_BODY} bytes.")
            if length == 0:
                break
            chunks.append(self.rfile.read(length))
            self.rfile.readline(1024)  # the CRLF after each chunk
        while self.rfile.readline(1024).strip():
            pass  # trailer fields, up to the blank line that ends the body
        return b"".join(chunks)

    def _write(self, body: bytes, rate: float | None) -> None:
        if rate is None:
            self.wfile.write(body)
            return
        size = self.server.chunk_size
        for start in range(0, len(body), size):
            chunk = body[start : start + size]
            self.server.pause(len(chunk) / rate)
            self.wfile.write(chunk)

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet under tests; the commands turn this on. Headers (the key) are never logged.
        if self.server.verbose:
            sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")
