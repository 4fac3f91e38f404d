"""The fault harness itself (harness/faults.py): a broken service must look the way the tests say."""

import socket
import threading
from collections.abc import Iterator

import pytest

from harness.faults import TcpProxy


class EchoServer:
    """Answers every line with itself, and counts the connections that closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Semaphore(0)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)
        self.closed.release()


@pytest.fixture
def proxy() -> Iterator[tuple[TcpProxy, EchoServer]]:
    server = EchoServer()
    proxy = TcpProxy(server.port)
    yield proxy, server
    proxy.close()
    server.listener.close()


def echo(conn: socket.socket, data: bytes) -> bytes:
    conn.sendall(data)
    return conn.recv(1024)


def test_a_stranded_connection_is_silent_while_a_new_one_works(proxy):
    proxy, server = proxy
    old = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    assert echo(old, b"ping") == b"ping"

    assert proxy.strand() == 1

    assert server.closed.acquire(timeout=5)  # the service saw its side go
    old.settimeout(0.5)
    old.sendall(b"anyone?")  # accepted, as by a socket whose other end vanished
    with pytest.raises(TimeoutError):
        old.recv(1024)  # no answer, no end of file, no reset: only the client's own timeout
    new = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    assert echo(new, b"pong") == b"pong"
    old.close()
    new.close()


def test_cut_ends_open_connections_and_refuses_new_ones(proxy):
    proxy, _ = proxy
    conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    assert echo(conn, b"ping") == b"ping"

    proxy.cut()

    try:
        answer = echo(conn, b"again")
    except (ConnectionResetError, BrokenPipeError):
        answer = b""
    assert answer == b""  # closed on it, at once (a FIN and a reset close behind it)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    conn.close()
