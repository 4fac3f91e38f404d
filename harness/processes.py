"""A command run in a session of its own, logging to a file, and the waits around starting one."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


class StartError(RuntimeError):
    """A process did not start, or did not become ready in time; the message ends with its log."""


class Process:
    """A command in a session of its own (so stopping it reaches its children), logging to a file in `log_dir`."""

    def __init__(self, kind: str, command: list[str], env: dict[str, str], *, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / f"{kind}-{uuid.uuid4().hex[:8]}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own fixed command)
                command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_for_log(self, pattern: str, *, seconds: float) -> None:
        """Return once the log matches `pattern`, polling it with a deadline."""
        deadline = time.monotonic() + seconds
        while not re.search(pattern, self.log.read_text(errors="replace")):
            if not self.running() or time.monotonic() > deadline:
                running = self.running()
                if running:
                    self.dump_threads()  # where it is stuck, at the end of the log
                tail = self.tail(12000 if running else 3000)
                raise StartError(f"{self.log.name} did not log {pattern!r} in time; its log ends:\n{tail}")
            time.sleep(0.1)

    def dump_threads(self) -> None:
        """Have the process write where each of its threads is to its log, if it can (a Celery worker can)."""

    def stop(self, *, grace: float = 30.0) -> None:
        """Ask it to stop (a warm shutdown, for Celery), then kill whatever is left of it after `grace` seconds."""
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._kill_group()  # any child that outlived its parent

    def kill(self) -> None:
        """SIGKILL the process and its children at once, as a power cut or `kill -9` of the container would."""
        self._kill_group()
        self.process.wait()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else f"(no {self.log.name})"


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: Process, *, seconds: float) -> None:
    """Return once something accepts connections on the loopback `port`; fail if `process` dies first."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if not process.running() or time.monotonic() > deadline:
            raise StartError(f"nothing answered on port {port}; {process.log.name} ends:\n{process.tail()}")
        time.sleep(0.1)
