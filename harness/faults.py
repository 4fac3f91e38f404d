"""Real services to break on purpose: a private redis-server to kill and start again, and a TCP
proxy to put between the app and a service (PostgreSQL, RabbitMQ, Redis) and cut or freeze.

Tests and benchmarks cut these, never the machine's shared services.
"""

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.processes import Process, free_port, wait_for_port


class RedisServer:
    """A redis-server of our own on a free port, keeping nothing on disk, as the README's Redis.

    `kill()` is a SIGKILL (every message it held is gone, as after a crash or a restart without
    persistence); `start()` brings it back, empty, on the same port.
    """

    def __init__(self, *, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_dir = log_dir
        self.dir = Path(tempfile.mkdtemp(prefix="redis-"))
        self.process: Process | None = None

    def start(self) -> "RedisServer":
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.dir)]
        self.process = Process("redis", command, {"PATH": "/usr/bin:/bin:/usr/local/bin"}, log_dir=self.log_dir)
        wait_for_port(self.port, self.process, seconds=10)
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass(eq=False)
class _Link:
    """One client's connection through the proxy, and the proxy's own to the service."""

    client: socket.socket
    server: socket.socket | None = None
    stranded: bool = False


class TcpProxy:
    """Forwards a loopback port to `upstream`, until a test breaks it.

    - `cut()`: the service is gone: open connections are reset and new ones refused.
    - `freeze()`: the service hangs: connections are accepted, nothing is forwarded either way.
    - `strand()`: a failover as managed clouds do it: every open connection goes silent (the
      service's side closed, the client told nothing, its writes swallowed), new ones work.
    - `restore()`: back to forwarding (new connections; the ones cut stay cut).

    With `latency`, every chunk waits that long before it is passed on, as on a network link.
    """

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1", latency: float = 0.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        # Seconds each way: a round trip through the proxy takes twice this, as across a network.
        self.latency = latency
        self.port = free_port()
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._stranded: list[_Link] = []  # their client sockets stay open, unanswered, until close()
        self._flowing = threading.Event()
        self._flowing.set()
        self._listener: socket.socket | None = None
        self._listen()

    # --- what tests do ---

    def cut(self) -> None:
        """Reset every connection and stop listening: clients get "connection refused"."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._listener.close()
            self._listener = None
        self._drop_all()

    def freeze(self) -> None:
        """Keep accepting, but forward nothing: clients wait until their own timeouts."""
        self._flowing.clear()

    def strand(self) -> int:
        """Leave every open connection silent and return how many: no FIN, no RST to the client,
        which learns of it only from its own timeouts. The service sees them close."""
        with self._lock:
            links, self._links = list(self._links), set()
            for link in links:
                link.stranded = True
            self._stranded += links
        for link in links:
            if link.server is not None:
                _close(link.server, reset=False)
        return len(links)

    def restore(self) -> None:
        """Forward again; listen again if cut."""
        self._flowing.set()
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self._flowing.set()
        self.cut()
        with self._lock:
            stranded, self._stranded = self._stranded, []
        for link in stranded:
            _close(link.client, reset=True)

    # --- the machinery ---

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            threading.Thread(target=self._connect, args=(_Link(client),), daemon=True).start()

    def _connect(self, link: _Link) -> None:
        with self._lock:
            self._links.add(link)
        self._flowing.wait()
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            self._drop(link)
            return
        server.settimeout(None)
        link.server = server
        for source, target in ((link.client, server), (server, link.client)):
            threading.Thread(target=self._pump, args=(link, source, target), daemon=True).start()

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            self._flowing.wait()
            if link.stranded:
                if data and source is link.client:
                    continue  # the client's writes go nowhere, unanswered
                return  # the service's side is gone; the client is never told
            if not data:
                break
            if self.latency:
                time.sleep(self.latency)
            try:
                target.sendall(data)
            except OSError:
                break
        self._drop(link)

    def _drop(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)
        # A reset, not a polite close: what a crashed server or a failover looks like.
        for sock in (link.client, link.server):
            if sock is not None:
                _close(sock, reset=True)

    def _drop_all(self) -> None:
        with self._lock:
            links = list(self._links)
        for link in links:
            self._drop(link)


def _close(sock: socket.socket, *, reset: bool) -> None:
    if reset:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked reading it
    with contextlib.suppress(OSError):
        sock.close()


def redis_server_available() -> bool:
    return shutil.which("redis-server") is not None


def rabbitmq_answers(host: str = "127.0.0.1", port: int = 5672) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Point this process's Celery app at the broker `url` for the block, as a process started with
    CELERY_BROKER_URL=url would be: its pooled connections are dropped, as Celery does after a fork."""
    from celery import current_app
    from kombu import pools

    app: Any = current_app  # its private pools and settable conf are not in Celery's stubs

    def forget_pools() -> None:
        # kombu keeps one pool per broker URL for the whole process: close them and forget them all,
        # since a pool closed but left there makes the next send to its URL fail ("Acquire on closed pool").
        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    saved, saved_env = app.conf.broker_url, os.environ.pop("CELERY_BROKER_URL", None)
    forget_pools()
    # Celery reads CELERY_BROKER_URL from the environment before its configuration: set both.
    app.conf.broker_url = os.environ["CELERY_BROKER_URL"] = url
    try:
        yield
    finally:
        forget_pools()
        app.conf.broker_url = saved
        del os.environ["CELERY_BROKER_URL"]
        if saved_env is not None:
            os.environ["CELERY_BROKER_URL"] = saved_env
