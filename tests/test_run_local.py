"""`make run` on a machine with nothing: no Redis, no PostgreSQL, no Runway key, no .env."""

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings

from harness.processes import free_port
from videos.management.commands.run_local import MAX_RESTART_DELAY, _choose_broker, exit_reason, restart_delay

BASE_DIR = Path(settings.BASE_DIR)


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment carries the marker: everything run_local started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes() and (entry / "stat").read_text().split()[2] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def read_until(process: subprocess.Popen[str], pattern: str, seconds: float, seen: list[str]) -> re.Match[str]:
    deadline = time.monotonic() + seconds
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.05)
    pytest.fail(f"no line matching {pattern!r}; output:\n{''.join(seen)[-4000:]}")


class RunLocal:
    """`manage.py run_local` on a bare setup in `folder` (its own SQLite, broker folder, media, simulator store)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.marker = f"RUN_LOCAL_TEST_{uuid.uuid4().hex}"
        self.port = free_port()
        self.seen: list[str] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RUNWAY_", "DATABASE_", "CELERY_"))},
            "DJANGO_SETTINGS_MODULE": "runway_project.settings",
            "DEBUG": "True",
            "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "CELERY_BROKER_DIR": str(folder / "broker"),
            "CELERY_BEAT_SCHEDULE_FILENAME": str(folder / "celerybeat-schedule"),
            "MEDIA_ROOT": str(folder / "media"),
            "RUNWAY_API_KEY": "",
            "RUNWAY_POLL_INTERVAL": "5",
            "RUNWAY_SWEEP_INTERVAL": "10",
            "RUNWAY_LOCAL_STACK_FILE": str(folder / "local-stack.json"),
            "WORKER_HEARTBEAT_FILE": str(folder / "worker-heartbeat"),
            self.marker: "1",
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=BASE_DIR,
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        command = [sys.executable, "manage.py", "run_local", "--port", str(self.port), "--simulator-port", "0"]
        command += ["--task-seconds", "2", "--simulator-state", str(self.folder / "simulator.json")]
        self.process = subprocess.Popen(  # noqa: S603 - our own command
            command,
            cwd=BASE_DIR,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def start_in_a_terminal(self) -> None:
        """As `start`, but in a terminal of its own (a pseudo-terminal that a small process holds,
        copying its output to our pipe), so that the test can close it, as a user closes theirs."""
        command = [sys.executable, "manage.py", "run_local", "--port", str(self.port), "--simulator-port", "0"]
        command += ["--task-seconds", "2", "--simulator-state", str(self.folder / "simulator.json")]
        terminal = [sys.executable, "-c", "import pty, sys; pty.spawn(sys.argv[1:])", *command]
        self.process = subprocess.Popen(  # noqa: S603 - our own command
            terminal, cwd=BASE_DIR, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def read_until(self, pattern: str, seconds: float) -> re.Match[str]:
        assert self.process is not None
        return read_until(self.process, pattern, seconds, self.seen)

    @property
    def output(self) -> str:
        return "".join(self.seen)[-4000:]

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def log_in(self, password: str) -> requests.Session:
        browser = requests.Session()
        browser.get(self.address + "accounts/login/", timeout=5)
        page = browser.post(
            self.address + "accounts/login/",
            {"username": "admin", "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            timeout=5,
        )
        assert page.url == self.address + "videos/"
        assert "Videos come from the Runway simulator" in page.text
        return browser

    def create(self, browser: requests.Session, prompt: str) -> int:
        """Post the form; the new job's id."""
        created = browser.post(
            self.address + "videos/",
            {"prompt": prompt, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Accept": "application/json"},
            timeout=5,
        )
        assert created.status_code == 201
        job_id: int = created.json()["id"]
        return job_id

    def status_when(
        self, browser: requests.Session, job_id: int, done: Callable[[dict[str, object]], bool], seconds: float
    ) -> dict[str, object]:
        """The job's status once `done` holds for it, polling with a deadline."""
        status_url = f"{self.address}videos/{job_id}/status/"
        deadline = time.monotonic() + seconds
        while not done(status := browser.get(status_url, timeout=5).json()):
            assert time.monotonic() < deadline, f"still {status['status']}; output:\n{self.output}"
            time.sleep(0.3)
        return dict(status)

    def generate(self, browser: requests.Session, prompt: str) -> dict[str, object]:
        """Post the form, then follow the job's status until it ends; its last status."""
        return self.status_when(browser, self.create(browser, prompt), lambda status: bool(status["is_final"]), 60)

    def stop(self) -> None:
        """Ctrl-C, and check that everything it started has stopped."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail("run_local did not stop on Ctrl-C")
        finally:
            self.process = None
        deadline = time.monotonic() + 10
        while processes_with(self.marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {
            pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in processes_with(self.marker)
        }
        assert left == {}, "every process run_local started has stopped"


@pytest.fixture
def run_local(tmp_path) -> Iterator[RunLocal]:
    runner = RunLocal(tmp_path)
    try:
        yield runner
    finally:
        if runner.process is not None:
            runner.process.kill()
        for pid in processes_with(runner.marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.stack
def test_make_run_on_a_bare_machine_serves_a_generation_and_stops_everything(run_local):
    run_local.start()
    assert "embedded" in run_local.read_until(r"^Broker: (.*)", 30).group(1)
    run_local.read_until(r"^Runway: the simulator at http://127\.0\.0\.1:\d+", 10)
    login = run_local.read_until(r"Open (http://\S+) and log in as 'admin' with password '([^']+)'", 60)
    assert login.group(1) == run_local.address
    browser = run_local.log_in(login.group(2))

    status = run_local.generate(browser, "A serene mountain landscape at sunset")

    assert status["status"] == "succeeded", (status["message"], run_local.output)
    video = browser.get(run_local.address.rstrip("/") + str(status["output_url"]), timeout=5)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    assert processes_with(run_local.marker), "the test should see the processes it started"
    run_local.stop()


def started_processes(run_local: RunLocal, *, at_least: int, seconds: float) -> dict[int, str]:
    """The processes of run_local's stack, by pid (their command lines), once there are `at_least`."""
    deadline = time.monotonic() + seconds
    while len(found := processes_with(run_local.marker)) < at_least:
        assert time.monotonic() < deadline, f"only {len(found)} processes; output:\n{run_local.output}"
        time.sleep(0.2)
    return {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in found}


def gone_within(run_local: RunLocal, seconds: float) -> dict[int, str]:
    """What is left of run_local's stack after `seconds` (none of it, hopefully): pid -> command."""
    deadline = time.monotonic() + seconds
    while processes_with(run_local.marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {}
    for pid in processes_with(run_local.marker):
        with contextlib.suppress(OSError):
            left[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return left


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.stack
@pytest.mark.parametrize(
    "ending",
    ["Ctrl-C", "SIGTERM", "terminal closed", "SIGKILL"],
)
def test_nothing_make_run_started_outlives_it_however_it_ends(run_local, ending):
    if ending == "terminal closed":
        run_local.start_in_a_terminal()
    else:
        run_local.start()
    run_local.read_until(r"Open http://\S+ and log in", 60)
    # run_local, the worker and the beat it runs, the web server's reloader and the server it runs.
    started = started_processes(run_local, at_least=5, seconds=30)
    assert sum("celery" in command and " worker " in command for command in started.values()) >= 2, started
    assert sum(" runserver " in command for command in started.values()) == 2, started
    process = run_local.process
    assert process is not None

    if ending == "terminal closed":
        process.kill()  # the terminal's end goes: the kernel hangs up run_local's session (SIGHUP)
    else:
        process.send_signal({"Ctrl-C": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}[ending])
    process.wait(timeout=30)
    run_local.process = None

    assert gone_within(run_local, 30) == {}, "every process run_local started has stopped"
    assert port_is_free(run_local.port)


@pytest.mark.stack
def test_run_local_starts_a_new_worker_when_its_worker_is_killed_and_the_site_stays_up(run_local):
    run_local.start()
    first = int(run_local.read_until(r"^Worker started \(pid (\d+)\)", 30).group(1))
    password = run_local.read_until(r"log in as 'admin' with password '([^']+)'", 60).group(1)
    browser = run_local.log_in(password)
    in_flight = run_local.create(browser, "A lighthouse in a storm")
    run_local.status_when(browser, in_flight, lambda status: status["status"] not in ("queued", "submitting"), 30)

    os.kill(first, signal.SIGKILL)  # it holds the job's next poll, and loses it

    run_local.read_until(r"The worker stopped \(killed by SIGKILL\); the web server goes on", 10)
    second = int(run_local.read_until(r"^Worker started \(pid (\d+)\)", 10).group(1))
    assert second != first
    assert run_local.log_in(password)  # the web server answers
    status = run_local.generate(browser, "Waves rolling onto a beach")
    assert status["status"] == "succeeded", (status["message"], run_local.output)
    # The dead worker's poll comes back with beat's sweep, every 10 s here.
    status = run_local.status_when(browser, in_flight, lambda status: bool(status["is_final"]), 60)
    assert status["status"] == "succeeded", (status["message"], run_local.output)
    assert run_local.process is not None and run_local.process.poll() is None
    run_local.stop()


@pytest.mark.stack
def test_run_local_restarts_a_worker_that_runs_but_takes_no_message(run_local):
    run_local.env["WORKER_STALE_AFTER"] = "20"
    run_local.start()
    first = int(run_local.read_until(r"^Worker started \(pid (\d+)\)", 30).group(1))
    password = run_local.read_until(r"log in as 'admin' with password '([^']+)'", 60).group(1)
    browser = run_local.log_in(password)

    os.kill(first, signal.SIGSTOP)  # alive, taking nothing: as a consumer stuck after a reconnect

    pattern = r"The worker took no message for (\d+) s \(WORKER_STALE_AFTER=20\): alive but not consuming: stopping it"
    assert 20 <= int(run_local.read_until(pattern, 60).group(1)) <= 40  # checked every half second
    run_local.read_until(r"The worker stopped \(killed by SIGKILL\); the web server goes on", 10)
    second = int(run_local.read_until(r"^Worker started \(pid (\d+)\)", 10).group(1))
    assert second != first
    status = run_local.generate(browser, "Waves rolling onto a beach")
    assert status["status"] == "succeeded", (status["message"], run_local.output)
    run_local.stop()


@pytest.mark.stack
def test_a_job_at_runway_when_run_local_stops_finishes_once_it_starts_again(run_local):
    run_local.start()
    password = run_local.read_until(r"log in as 'admin' with password '([^']+)'", 60).group(1)
    browser = run_local.log_in(password)
    job_id = run_local.create(browser, "A lighthouse in a storm")
    at_runway = run_local.status_when(
        browser, job_id, lambda status: status["status"] not in ("queued", "submitting"), 30
    )
    assert at_runway["status"] in ("pending", "running"), at_runway  # the simulator has the task, not done
    run_local.stop()

    run_local.start()  # a new simulator on another port, with the same state file
    run_local.read_until(r"Open http://\S+ and log in", 60)
    status = run_local.status_when(browser, job_id, lambda status: bool(status["is_final"]), 90)

    assert status["status"] == "succeeded", (status["message"], run_local.output)
    run_local.stop()


@pytest.mark.stack
def test_the_readmes_command_in_a_second_terminal_uses_the_running_stack(run_local):
    run_local.start()
    run_local.read_until(r"Open http://\S+ and log in", 60)
    hint = run_local.read_until(r"^From another terminal: (\S+) manage\.py generate_video (.*) --wait$", 5)
    assert shlex.split(hint.group(2)) == ["A lighthouse in a storm"]
    # A second terminal in the same checkout: no key, no broker, no DEBUG, no secret key of its own.
    # (Only the record's place is given: the test's, instead of var/local-stack.json.)
    env = {k: v for k, v in run_local.env.items() if not k.startswith(("RUNWAY_", "CELERY_", "DATABASE_", "MEDIA_"))}
    env = {k: v for k, v in env.items() if k not in ("DEBUG", "SECRET_KEY")}
    env["RUNWAY_LOCAL_STACK_FILE"] = run_local.env["RUNWAY_LOCAL_STACK_FILE"]
    command = [hint.group(1), "manage.py", "generate_video", "A lighthouse in a storm", "--wait"]

    result = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603

    assert result.returncode == 0, result.stdout + result.stderr + run_local.output
    assert re.search(r"^#\d+ succeeded: \S+\.mp4$", result.stdout, re.MULTILINE), result.stdout
    assert str(run_local.folder / "media") in result.stdout  # run_local's media folder: its worker stored it
    again = [sys.executable, "manage.py", "run_local", "--port", str(free_port())]
    twice = subprocess.run(again, cwd=BASE_DIR, env=run_local.env, capture_output=True, text=True, timeout=60)  # noqa: S603
    assert twice.returncode != 0 and "`make run` is already running on this checkout" in twice.stderr, twice.stderr
    run_local.stop()
    assert not Path(run_local.env["RUNWAY_LOCAL_STACK_FILE"]).exists()
    # With make run stopped, the command says what is missing instead of queueing for nobody.
    result = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60)  # noqa: S603
    assert result.returncode != 0
    assert "next to a running `make run`, or with DEBUG=True" in result.stderr


def test_a_worker_that_keeps_dying_young_is_restarted_less_and_less_often():
    delays = [1.0]
    for _ in range(7):
        delays.append(restart_delay(delays[-1], lived=2.0))
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_RESTART_DELAY, MAX_RESTART_DELAY, MAX_RESTART_DELAY]
    assert restart_delay(MAX_RESTART_DELAY, lived=600.0) == 1.0  # one that ran a while: at once


def test_the_broker_line_names_each_kind_of_broker_without_a_made_up_address():
    assert _choose_broker("filesystem://") == ("filesystem://", "embedded (messages kept as files under var/broker)")
    assert _choose_broker("amqp://guest:guest@127.0.0.1//")[1] == "RabbitMQ at 127.0.0.1:5672"
    assert _choose_broker("pyamqp://rabbit.internal:5673/videos")[1] == "RabbitMQ at rabbit.internal:5673"
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    assert _choose_broker(url) == (
        "filesystem://",
        f"embedded (messages kept as files under var/broker), since no Redis answers at {url[8:-2]}",
    )


def test_exit_reason_names_the_signal_or_the_code():
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_reason(1) == "exit code 1"


def test_run_local_refuses_to_run_without_debug(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "runway_project.settings", "DEBUG": "False", "SECRET_KEY": "x" * 50}
    result = subprocess.run(
        [sys.executable, "manage.py", "run_local"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "needs DEBUG=True" in result.stderr
