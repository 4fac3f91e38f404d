"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that keeps every request it gets
and answers each with the next of the statuses it was given (the last one from then on), or not at
all (`hang`), as a slow or broken receiver would."""

import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a sender that gave up and hung up
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, *statuses: int, hang: float = 0.0, location: str = "") -> None:
        self.statuses = list(statuses) or [204]
        self.hang = hang
        self.location = location
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.arrived:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                    receiver.arrived.notify_all()
                if receiver.hang:
                    threading.Event().wait(receiver.hang)  # holds the connection open, answering nothing
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/runway"

    def wait_for(self, count: int, *, seconds: float) -> list[Received]:
        """The first `count` requests, once they have arrived; AssertionError after `seconds`."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout=seconds):
                raise AssertionError(f"{len(self.received)} of {count} webhook requests arrived in {seconds} s")
            return self.received[:count]

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
