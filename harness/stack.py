"""The product's processes as production runs them: a Celery worker, beat, and gunicorn."""

import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from harness.processes import Process, free_port, wait_for_port

PROJECT_DIR = Path(__file__).resolve().parent.parent


def environment(
    base: dict[str, str],
    *,
    secret_key: str,
    database_url: str,
    broker_url: str,
    queue: str,
    media_root: str,
    api_key: str,
    runway_url: str,
    poll_interval: int,
    max_wait: int,
    **more: str,
) -> dict[str, str]:
    """Production's settings (DEBUG off) pointed at the given database, broker queue, storage and Runway."""
    return {
        **base,
        "DJANGO_SETTINGS_MODULE": "runway_project.settings",
        "DEBUG": "False",
        "SECRET_KEY": secret_key,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_QUEUE": queue,
        "MEDIA_ROOT": media_root,
        "RUNWAY_API_KEY": api_key,
        "RUNWAY_API_BASE_URL": runway_url,
        "RUNWAY_POLL_INTERVAL": str(poll_interval),
        "RUNWAY_MAX_WAIT": str(max_wait),
        **more,
    }


class CeleryWorker(Process):
    """`celery -A runway_project worker` with a name of its own: its pool and concurrency are the
    settings' (CELERY_WORKER_POOL, CELERY_WORKER_CONCURRENCY in `env`), as the README's command
    starts it, unless `concurrency` is given."""

    def __init__(
        self, env: dict[str, str], *, log_dir: Path, concurrency: int | None = None, include: str = ""
    ) -> None:
        self.name = f"worker-{uuid.uuid4().hex[:8]}"
        command = [sys.executable, "-m", "celery", "-A", "runway_project", "worker", "--loglevel=INFO"]
        if concurrency is not None:
            command.append(f"--concurrency={concurrency}")
        command += ["--without-gossip", "--without-mingle", "-n", f"{self.name}@%h"]
        if include:
            command.append(f"--include={include}")
        super().__init__("worker", command, env, log_dir=log_dir)

    def wait_until_ready(self, *, seconds: float = 60) -> None:
        """Return once the worker consumes from its queue."""
        self.wait_for_log(rf"{self.name}@\S+ ready\.", seconds=seconds)

    def dump_threads(self) -> None:
        """Celery's SIGUSR1 handler logs every thread's stack: what a stuck worker waits on."""
        size = self.log.stat().st_size
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while self.log.stat().st_size == size and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # the dump is written in pieces


class CeleryBeat(Process):
    """`celery -A runway_project beat`, with a schedule file of its own (removed when it stops)."""

    def __init__(self, env: dict[str, str], *, log_dir: Path) -> None:
        self.schedule = log_dir / f"beat-schedule-{uuid.uuid4().hex[:8]}"
        command = [sys.executable, "-m", "celery", "-A", "runway_project", "beat", "--loglevel=INFO"]
        super().__init__("beat", [*command, f"--schedule={self.schedule}"], env, log_dir=log_dir)

    def stop(self, *, grace: float = 30.0) -> None:
        super().stop(grace=grace)
        self.remove_schedule()

    def remove_schedule(self) -> None:
        for path in self.schedule.parent.glob(self.schedule.name + "*"):  # shelve may add suffixes
            path.unlink()


class Gunicorn(Process):
    """gunicorn serving the project on a free loopback port, at `base_url` once `wait_until_ready()` returns."""

    def __init__(self, env: dict[str, str], *, log_dir: Path, workers: int) -> None:
        # As behind the one TLS proxy production has: a request that says `X-Forwarded-Proto: https`
        # is taken for HTTPS (settings.SECURE_PROXY_SSL_HEADER), one that does not is redirected.
        env = {"TRUSTED_PROXY_COUNT": "1", **env}
        if "STATIC_ROOT" not in env:
            # Production's pages name hashed static files, which only `collectstatic` makes.
            env = {**env, "STATIC_ROOT": collected_static(env)}
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "gunicorn", "runway_project.wsgi:application"]
        command += [f"--bind=127.0.0.1:{self.port}", f"--workers={workers}", "--log-level=warning"]
        super().__init__("gunicorn", command, env, log_dir=log_dir)

    def wait_until_ready(self, *, seconds: float = 60) -> None:
        wait_for_port(self.port, self, seconds=seconds)


_collected: dict[str, str] = {}


def collect_static(env: dict[str, str], static_root: Path) -> None:
    """`manage.py collectstatic`, as a deployment runs it, into `static_root`."""
    subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, str(PROJECT_DIR / "manage.py"), "collectstatic", "--noinput", "--verbosity=0"],
        env={**env, "STATIC_ROOT": str(static_root)},
        check=True,
        timeout=120,
    )


def collected_static(env: dict[str, str]) -> str:
    """A STATIC_ROOT that `collectstatic` filled, once for this process (the files do not change)."""
    if "root" not in _collected:
        root = Path(tempfile.mkdtemp(prefix="runway-static-"))
        collect_static(env, root)
        _collected["root"] = str(root)
    return _collected["root"]


def database_url() -> str:
    """The URL of the database this process's Django is connected to, for the processes it starts."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    host, port = db["HOST"] or "localhost", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port}/{db['NAME']}"
