"""The processes a benchmark runs: a Celery worker and gunicorn, each with its log under var/bench/."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis

BASE_DIR = Path(__file__).resolve().parent.parent
LOG_DIR = BASE_DIR / "var" / "bench"
PYTHON = os.path.realpath(sys.executable)


class BenchError(RuntimeError):
    """A benchmark could not run (a process did not start, or work did not finish in time)."""


class Process:
    """A command in a session of its own (so stopping it reaches its children), logging to a file."""

    def __init__(self, kind: str, command: list[str], env: dict[str, str], *, log_dir: Path = LOG_DIR) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = log_dir / f"{kind}-{uuid.uuid4().hex[:8]}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own fixed command)
                command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for_log(self, pattern: str, *, seconds: float) -> None:
        """Return once the log matches `pattern`, polling it with a deadline."""
        deadline = time.monotonic() + seconds
        while not re.search(pattern, self.log.read_text(errors="replace")):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{self.log.name} did not start; its log ends:\n{self.tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Ask it to stop (a warm shutdown, for Celery), then kill whatever is left of it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
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

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else f"(no {self.log.name})"

    def memory(self) -> "Memory":
        """The resident memory of the process and its Python descendants, now, and of its other ones (ffmpeg)."""
        pids = [self.pid, *_descendants(self.pid)]
        python = [pid for pid in pids if _executable(pid) == PYTHON]
        helpers = [pid for pid in pids if pid not in python]
        return Memory(
            rss=sum(_rss(pid) for pid in python),
            pss=sum(_pss(pid) for pid in python),
            processes=len(python),
            helpers_rss=sum(_rss(pid) for pid in helpers),
            helpers=len(helpers),
        )


@dataclass(frozen=True)
class Memory:
    """Bytes resident in RAM: `rss` counts pages shared between processes once per process, `pss` splits them."""

    rss: int
    pss: int
    processes: int
    helpers_rss: int = 0  # programs it runs for a moment (ffmpeg for a poster)
    helpers: int = 0


def celery_worker(env: dict[str, str], *, concurrency: int, include: str = "") -> Process:
    """A Celery worker like production's, with `concurrency` pool processes; `include` adds a task module."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "celery", "-A", "runway_project", "worker", "--loglevel=INFO"]
    command += [f"--concurrency={concurrency}", "--without-gossip", "--without-mingle", "-n", f"{name}@%h"]
    if include:
        command.append(f"--include={include}")
    worker = Process("worker", command, env)
    worker.wait_for_log(rf"{name}@\S+ ready\.", seconds=60)
    return worker


def gunicorn(env: dict[str, str], *, workers: int) -> tuple[Process, str]:
    """gunicorn serving the project on a free loopback port; returns it and its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "runway_project.wsgi:application"]
    command += [f"--bind=127.0.0.1:{port}", f"--workers={workers}", "--log-level=warning"]
    server = Process("gunicorn", command, env)
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"gunicorn did not start; its log ends:\n{server.tail()}")
        time.sleep(0.1)
    return server, f"http://127.0.0.1:{port}"


def database_url() -> str:
    """The URL of the database Django is connected to, for child processes."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    host, port = db["HOST"] or "localhost", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_used_memory(url: str) -> int:
    """Bytes the Redis server holds for data (INFO memory's used_memory), all databases together."""
    used: int = redis.Redis.from_url(url).info("memory")["used_memory"]
    return used


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                # The parent pid is the 2nd field after the command name, which may hold spaces.
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _executable(pid: int) -> str:
    try:
        return os.path.realpath(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _rss(pid: int) -> int:
    return _status_kib(Path(f"/proc/{pid}/status"), "VmRSS") * 1024


def _pss(pid: int) -> int:
    return _status_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss") * 1024


def _status_kib(path: Path, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0
