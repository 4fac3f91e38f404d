"""Helpers for tests that run the real stack: Celery worker and beat processes against Redis, the
test database and the Runway simulator."""

import base64
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from bench.processes import Process, database_url
from runway_simulator import RunwaySimulator
from videos.models import VideoGeneration

BASE_DIR = Path(settings.BASE_DIR)
POLL_INTERVAL = 5  # the shortest Runway allows


def _environment(simulator: RunwaySimulator, *, max_wait: int, db_url: str) -> dict[str, str]:
    """Production settings (DEBUG off) pointed at the test database, broker queue and simulator."""
    return {
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


class _Celery(Process):
    """A `celery -A runway_project ...` process in a session of its own, logging to a file under var/."""

    def __init__(self, kind: str, arguments: list[str], env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "celery", "-A", "runway_project", kind, "--loglevel=INFO", *arguments]
        super().__init__(f"stack-{kind}", command, env, log_dir=BASE_DIR / "var")


class Worker(_Celery):
    """A `celery worker` process configured like production, but for the test database and simulator."""

    def __init__(self, simulator: RunwaySimulator, *, max_wait: int, db_url: str, concurrency: int = 2) -> None:
        self.name = f"stack-{uuid.uuid4().hex}"
        self._clear_queue()
        arguments = [f"--concurrency={concurrency}", "--without-gossip", "--without-mingle", "-n", f"{self.name}@%h"]
        super().__init__("worker", arguments, _environment(simulator, max_wait=max_wait, db_url=db_url))

    def stop(self) -> None:
        super().stop()
        self._clear_queue()

    def _clear_queue(self) -> None:
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)

    def wait_until_ready(self, *, seconds: float) -> None:
        """Return once the worker consumes from the queue, polling its log with a deadline."""
        deadline = time.monotonic() + seconds
        while not re.search(rf"{self.name}@\S+ ready\.", self.log.read_text(errors="replace")):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start; its log:\n{self.tail()}")
            time.sleep(0.1)

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


class Beat(_Celery):
    """A `celery beat` process sending the sweep every `sweep_interval` seconds, with its own schedule file."""

    def __init__(self, simulator: RunwaySimulator, *, max_wait: int, db_url: str, sweep_interval: int) -> None:
        self.schedule = BASE_DIR / "var" / f"stack-beat-schedule-{uuid.uuid4().hex[:8]}"
        env = _environment(simulator, max_wait=max_wait, db_url=db_url)
        env["RUNWAY_SWEEP_INTERVAL"] = str(sweep_interval)
        super().__init__("beat", [f"--schedule={self.schedule}"], env)

    def stop(self) -> None:
        super().stop()
        for path in self.schedule.parent.glob(self.schedule.name + "*"):  # shelve may add suffixes
            path.unlink()


@dataclass(frozen=True)
class Message:
    """A task message of this run that Redis holds: waiting in the queue, or taken by a worker but not acknowledged."""

    task: str
    args: list[Any]
    unacked: bool


def broker_messages(*, forget: bool = False) -> list[Message]:
    """This run's task messages in Redis; with `forget`, also delete them, as a Redis restart without persistence would.

    They live in the queue (and kombu's per-priority lists beside it), and in kombu's `unacked`
    hash and `unacked_index` when a worker has taken them but not acknowledged them yet, as it
    does with every countdown it holds. Other queues in the database (maybe another test run's)
    are left alone.
    """
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    found = []
    for key in list(client.scan_iter(match=f"{queue}*")):
        if key == queue.encode() or key.startswith(queue.encode() + b"\x06\x16"):
            found += [_message(json.loads(raw), unacked=False) for raw in client.lrange(key, 0, -1)]
            if forget:
                client.delete(key)
    for tag, raw in list(client.hscan_iter("unacked")):
        payload, _exchange, routing_key = json.loads(raw)
        if routing_key == queue:
            found.append(_message(payload, unacked=True))
            if forget:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    return found


def _message(payload: dict[str, Any], *, unacked: bool) -> Message:
    args, _kwargs, _embed = json.loads(base64.b64decode(payload["body"]))
    return Message(payload["headers"]["task"], args, unacked)


@contextmanager
def running_worker(django_db_blocker: Any, simulator: RunwaySimulator, *, max_wait: int) -> Iterator[Worker]:
    """A worker for a module's stack tests, stopped when the module is done."""
    with django_db_blocker.unblock():
        worker = Worker(simulator, max_wait=max_wait, db_url=database_url())
    try:
        yield worker
    finally:
        worker.stop()
