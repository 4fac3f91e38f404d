"""The HTTP layer: a threading server whose handler hands each request to the simulator and
writes back its reply, and the JSON bodies Runway answers with."""

import json
import sys
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

DOC_URL = "https://docs.dev.runwayml.com/api/"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, before it is written."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return json_reply(status, {"error": message, "docUrl": DOC_URL}, headers)


def validation_error(issues: dict[str | None, str]) -> Reply:
    """A 400 in the shape of Runway's (zod) validator: one issue per field, [] for the whole body."""
    body = {
        "error": "Validation of body failed",
        "issues": [{"path": [path] if path else [], "message": message} for path, message in issues.items()],
        "docUrl": DOC_URL,
    }
    return json_reply(400, body)


class Application(Protocol):
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply: ...


class Server(ThreadingHTTPServer):
    """Serves `app` on (host, port) until shutdown(); each request runs in a thread of its own."""

    def __init__(self, address: tuple[str, int], app: Application, *, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.app = app
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
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        reply = self.server.app.handle(method, self.path, dict(self.headers.items()), body)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet under tests; the commands turn this on. Headers (the key) are never logged.
        if self.server.verbose:
            sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")
