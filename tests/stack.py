"""Helpers for tests that run the real stack: a Celery worker process against Redis, the test
database and the Runway simulator."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from videos.models import VideoGeneration
from videos.simulator import RunwaySimulator

BASE_DIR = Path(settings.BASE_DIR)
POLL_INTERVAL = 5  # the shortest Runway allows


def database_url() -> str:
    """The URL of the test database, for the worker process."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    host, port = db["HOST"] or "localhost", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port}/{db['NAME']}"


class Worker:
    """A `celery worker` process configured like production, but for the test database and simulator."""

    def __init__(self, simulator: RunwaySimulator, *, max_wait: int, db_url: str) -> None:
        (BASE_DIR / "var").mkdir(exist_ok=True)
        self.log = BASE_DIR / "var" / f"stack-worker-{uuid.uuid4().hex[:8]}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "runway_project.settings",
            "DEBUG": "False",
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "RUNWAY_API_KEY": settings.RUNWAY_API_KEY,
            "RUNWAY_API_BASE_URL": simulator.base_url,
            "RUNWAY_POLL_INTERVAL": str(POLL_INTERVAL),
            "RUNWAY_MAX_WAIT": str(max_wait),
            "LOG_LEVEL": "DEBUG",
        }
        self._clear_queue()
        command = [sys.executable, "-m", "celery", "-A", "runway_project", "worker", "--loglevel=INFO"]
        command += ["--concurrency=2", "--without-gossip", "--without-mingle", "-n", f"stack-{uuid.uuid4().hex}@%h"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._clear_queue()

    def _clear_queue(self) -> None:
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no worker log)"

    def wait_for(
        self, job_id: int, done: Callable[[VideoGeneration], bool] = lambda job: job.is_final, *, seconds: float
    ) -> VideoGeneration:
        """The job once `done` holds for it (by default: once it ended), polling with a deadline."""
        deadline = time.monotonic() + seconds
        while True:
            job = VideoGeneration.objects.get(pk=job_id)
            if done(job):
                return job
            if time.monotonic() > deadline:
                pytest.fail(f"job {job_id} still {job.status} after {seconds} s; worker log:\n{self.tail()}")
            time.sleep(0.2)
