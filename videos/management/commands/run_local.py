"""Run the whole product on this machine with one command (what `make run` does after migrating)."""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from runway_project import local_stack
from runway_project.parent_watch import RUN_LOCAL_PID_ENV
from runway_simulator import RunwaySimulator
from runway_simulator.options import SERVE_PORT
from runway_simulator.state import StateError
from videos.services import health

FIRST_ACCOUNT = "admin"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
# A worker that ran this many seconds is restarted at once when it dies; one that dies sooner waits
# twice as long as the last, up to MAX_RESTART_DELAY.
STABLE_AFTER = 60.0
MAX_RESTART_DELAY = 30.0


class Command(BaseCommand):
    worker: subprocess.Popen[bytes] | None = None  # the one running now
    server: subprocess.Popen[bytes] | None = None

    help = (
        "Start the web server and a Celery worker (and the Runway simulator when RUNWAY_API_KEY is empty) "
        "for local use; Ctrl-C stops them all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Web server interface (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Web server port (default 8000).")
        parser.add_argument(
            "--simulator-port", type=int, default=SERVE_PORT, help="Simulator port; 0 picks a free one."
        )
        parser.add_argument("--task-seconds", type=float, default=20.0, help="How long a simulated video takes.")
        parser.add_argument(
            "--simulator-state",
            default=str(settings.BASE_DIR / "var" / "runway-simulator.json"),
            help="Where the simulator keeps its tasks across restarts (default var/runway-simulator.json).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._check_can_start()
        _stop_on_signals()
        # Each child stops when this process does, even killed with SIGKILL (runway_project/parent_watch.py).
        env = {**os.environ, "DEBUG": "True", "PYTHONUNBUFFERED": "1", RUN_LOCAL_PID_ENV: str(os.getpid())}
        env["CELERY_BROKER_URL"], broker_note = _choose_broker(settings.CELERY_BROKER_URL)
        self.stdout.write(f"Broker: {broker_note}")
        self.stdout.write(f"Queue: {queue_note()}")
        simulator = self._start_simulator(env, options) if not settings.RUNWAY_API_KEY else None
        if simulator is None:
            self.stdout.write(f"Runway: {settings.RUNWAY_API_BASE_URL} (RUNWAY_API_KEY is set: generations are billed)")
        login = self._first_login(options["host"])
        self._record_stack(env, simulated=simulator is not None)
        try:
            self._serve(env, options, login)
        except KeyboardInterrupt:
            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                self.stdout.write("\nStopping…")
        finally:
            if settings.LOCAL_STACK_FILE:
                local_stack.stack_remove(settings.LOCAL_STACK_FILE, pid=os.getpid())
            _stop([process for process in (self.worker, self.server) if process is not None])
            if simulator is not None:
                simulator.stop()

    def _check_can_start(self) -> None:
        if not settings.DEBUG:
            raise CommandError("run_local is for a developer's machine and needs DEBUG=True (make run sets it).")
        if settings.LOCAL_STACK:
            raise CommandError(
                f"`make run` is already running on this checkout (process {settings.LOCAL_STACK['pid']}): "
                "stop it first, or use it."
            )

    def _record_stack(self, env: dict[str, str], *, simulated: bool) -> None:
        """Keep what a command in a second terminal needs to join this stack (runway_project/local_stack.py)."""
        if not settings.LOCAL_STACK_FILE:
            return
        shared = {name: env[name] for name in local_stack.SHARED if name in env}
        shared["CELERY_BROKER_URL"] = env["CELERY_BROKER_URL"]
        if simulated:
            shared.update({name: env[name] for name in ("RUNWAY_API_BASE_URL", "RUNWAY_API_KEY", "RUNWAY_SIMULATED")})
        local_stack.stack_write(settings.LOCAL_STACK_FILE, pid=os.getpid(), env=shared)

    def _serve(self, env: dict[str, str], options: dict[str, Any], login: str) -> None:
        """Start the worker and the web server, say how to log in, and watch them until Ctrl-C."""
        (settings.BASE_DIR / "var").mkdir(exist_ok=True)  # beat keeps its schedule there
        address = f"http://{options['host']}:{options['port']}/"
        self._start_worker(env)
        self.server = server = _spawn(
            [sys.executable, "manage.py", "runserver", f"{options['host']}:{options['port']}"], env
        )
        _wait_until_serving(address + "accounts/login/", [server])
        self.stdout.write(self.style.SUCCESS(f"\nOpen {address} and {login}. Ctrl-C stops everything."))
        self.stdout.write(_second_terminal_hint() + "\n")
        self._watch(server, env)

    def _start_worker(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        # The worker runs beat inside it (-B): one machine, so one beat, which sweeps up lost jobs.
        command = [sys.executable, "-m", "celery", "-A", "runway_project", "worker", "-B", "--loglevel=INFO"]
        self.worker = worker = _spawn(command, env)
        self.stdout.write(f"Worker started (pid {worker.pid})")
        return worker

    def _watch(self, server: subprocess.Popen[bytes], env: dict[str, str]) -> None:
        """Wait for Ctrl-C; start a new worker whenever the worker dies, and stop if the web server does.

        A worker that keeps dying is started again less and less often, up to once every
        MAX_RESTART_DELAY seconds. The web server and the simulator run on meanwhile: jobs wait
        in the broker, and beat's sweep (in the new worker) sends again any step the dead one held.
        """
        worker = self.worker or self._start_worker(env)
        delay = 0.0
        started = time.monotonic()
        while True:
            if server.poll() is not None:
                raise CommandError("The web server stopped unexpectedly (see its output above); stopping the others.")
            if worker.poll() is None:
                time.sleep(0.5)
                self._stop_if_stuck(worker, started)
                continue
            _end_session(worker)  # beat's process, which outlives a killed worker
            delay = restart_delay(delay, lived=time.monotonic() - started)
            self.stdout.write(
                self.style.WARNING(
                    f"The worker stopped ({exit_reason(worker.returncode)}); the web server goes on. "
                    f"Starting a new worker in {delay:.0f} s."
                )
            )
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and server.poll() is None:
                time.sleep(0.2)
            worker = self._start_worker(env)
            started = time.monotonic()

    def _stop_if_stuck(self, worker: subprocess.Popen[bytes], started: float) -> None:
        """Kill a worker that runs but has taken no message for WORKER_STALE_AFTER seconds (its
        heartbeat, runway_project/liveness.py), as a supervisor would: the watch then starts another."""
        if time.monotonic() - started < settings.WORKER_STALE_AFTER:
            return  # a new worker has that long to take its first message
        check = health.worker_check()
        if check.ok:
            return
        self.stdout.write(self.style.WARNING(f"The worker {check.summary}: stopping it."))
        _end_session(worker)
        worker.wait()

    def _start_simulator(self, env: dict[str, str], options: dict[str, Any]) -> RunwaySimulator:
        kept = {"task_seconds": options["task_seconds"], "state_file": options["simulator_state"]}
        try:
            simulator = RunwaySimulator(port=options["simulator_port"], **kept).start()
        except OSError:  # the port is taken: any free one will do
            simulator = RunwaySimulator(port=0, **kept).start()
        except StateError as exc:
            raise CommandError(f"{exc} Move it away to start the simulator with no tasks.") from exc
        env.update(
            RUNWAY_API_BASE_URL=simulator.base_url,
            RUNWAY_API_KEY="key_" + secrets.token_hex(64),
            RUNWAY_SIMULATED="True",
        )
        self.stdout.write(
            f"Runway: the simulator at {simulator.base_url}, since RUNWAY_API_KEY is empty "
            f"(its tasks kept in {options['simulator_state']})"
        )
        return simulator

    def _first_login(self, host: str) -> str:
        """How to log in; on the very first run, make an account with a random password and say it."""
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return "log in with your account (python manage.py changepassword NAME resets a password)"
        if host not in LOOPBACK:
            return "create an account first: python manage.py createsuperuser"
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=FIRST_ACCOUNT, email="", password=password)
        return (
            f"log in as {FIRST_ACCOUNT!r} with password {password!r} "
            f"(shown this once; python manage.py changepassword {FIRST_ACCOUNT} changes it)"
        )


EMBEDDED_NOTE = "embedded (messages kept as files under var/broker)"


def _stop_on_signals() -> None:
    """Ctrl-C, `kill` and a closed terminal all stop everything, through KeyboardInterrupt. SIGINT is
    set too, as a shell ignores it for background jobs; SIGHUP is what closing the terminal sends
    (the children, in sessions of their own, do not get it). SIGKILL is parent_watch.py's."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)


def queue_note() -> str:
    """Which queue the worker and the web server use, and why: the first thing to know when another
    installation shares the broker (runway_project/installation.py)."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    if settings.INSTALLATION_QUEUE_DERIVED:
        return f"{queue} (this installation's own, named after its database; CELERY_QUEUE sets another)"
    return f"{queue} (from CELERY_QUEUE: another installation on this broker must not use it)"


def _second_terminal_hint() -> str:
    """What a second terminal can run meanwhile: it joins this stack (runway_project/local_stack.py)."""
    python = Path(sys.executable)
    if python.is_relative_to(settings.BASE_DIR):
        python = python.relative_to(settings.BASE_DIR)  # .venv/bin/python, as the README writes it
    return f'From another terminal: {python} manage.py generate_video "A lighthouse in a storm" --wait'


def _choose_broker(url: str) -> tuple[str, str]:
    """The configured Redis if it answers, else the embedded file broker; and a line saying which."""
    parts = urlsplit(url)
    if parts.scheme == "filesystem":
        return url, EMBEDDED_NOTE
    if parts.scheme not in ("redis", "rediss"):
        default_port = {"amqp": 5672, "amqps": 5671, "pyamqp": 5672}.get(parts.scheme)
        where = f"{parts.hostname or 'localhost'}:{parts.port or default_port}" if default_port else parts.netloc
        name = "RabbitMQ" if default_port else parts.scheme
        return url, f"{name} at {where}"
    where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except (redis.RedisError, OSError):
        return "filesystem://", f"{EMBEDDED_NOTE}, since no Redis answers at {where}"
    return url, f"Redis at {where}"


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own, so that stopping it also stops what it starts (runserver's reloader).
    return subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, start_new_session=True)  # noqa: S603 - our own commands


def _wait_until_serving(url: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise CommandError("A process stopped while starting (see its output above).")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own server
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise CommandError(f"The web server did not answer at {url} within {START_TIMEOUT:.0f} s.")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Ask each process to stop, give them time, then end whatever is left of their sessions."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        _end_session(process)  # e.g. the server that runserver's reloader started
        process.wait()


def _end_session(process: subprocess.Popen[bytes]) -> None:
    """Kill whatever is left of the session a process started in (the process itself, or its children)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def restart_delay(previous: float, *, lived: float) -> float:
    """Seconds to wait before starting a worker again, after the last one lived `lived` seconds.

    At once (1 s) after a worker that ran a while; twice the last delay, up to MAX_RESTART_DELAY,
    after one that died young, so a worker that cannot start does not restart in a loop.
    """
    if lived >= STABLE_AFTER:
        return 1.0
    return min(MAX_RESTART_DELAY, max(1.0, previous * 2))


def exit_reason(returncode: int) -> str:
    """How a process ended, in words: "exit code 1", "killed by SIGKILL"."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"
