"""Helpers for tests that run the real stack: Celery worker and beat processes against Redis, the
test database and the Runway simulator."""

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from harness.stack import CeleryBeat, CeleryWorker, database_url, environment
from runway_simulator import RunwaySimulator
from videos.models import VideoGeneration

BASE_DIR = Path(settings.BASE_DIR)
POLL_INTERVAL = 5  # the shortest Runway allows


LOG_DIR = BASE_DIR / "var"


def stack_environment(simulator: RunwaySimulator, *, max_wait: int, db_url: str) -> dict[str, str]:
    """Production settings (DEBUG off) pointed at the test database, broker queue and simulator."""
    return environment(
        dict(os.environ),
        secret_key=settings.SECRET_KEY,
        database_url=db_url,
        broker_url=settings.CELERY_BROKER_URL,
        queue=settings.CELERY_TASK_DEFAULT_QUEUE,
        media_root=str(settings.MEDIA_ROOT),
        api_key=settings.RUNWAY_API_KEY,
        runway_url=simulator.base_url,
        poll_interval=POLL_INTERVAL,
        max_wait=max_wait,
        LOG_LEVEL="DEBUG",
    )


class Worker(CeleryWorker):
    """A Celery worker configured like production, but for the test database, queue and simulator."""

    def __init__(
        self, simulator: RunwaySimulator, *, max_wait: int, db_url: str, concurrency: int | None = None
    ) -> None:
        broker_messages(forget=True)
        env = stack_environment(simulator, max_wait=max_wait, db_url=db_url)
        super().__init__(env, log_dir=LOG_DIR, concurrency=concurrency)

    def stop(self, *, grace: float = 30.0) -> None:
        """Kill it: a test's worker has nothing to finish, and the next starts with none of its messages."""
        self.kill()
        broker_messages(forget=True)

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


class Beat(CeleryBeat):
    """Celery beat sending the sweep every `sweep_interval` seconds."""

    def __init__(self, simulator: RunwaySimulator, *, max_wait: int, db_url: str, sweep_interval: int) -> None:
        env = stack_environment(simulator, max_wait=max_wait, db_url=db_url)
        env["RUNWAY_SWEEP_INTERVAL"] = str(sweep_interval)
        super().__init__(env, log_dir=LOG_DIR)

    def stop(self, *, grace: float = 30.0) -> None:
        self.kill()
        self.remove_schedule()


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
