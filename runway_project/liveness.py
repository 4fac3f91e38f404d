"""Whether a worker takes messages: the heartbeat a supervisor reads (`manage.py health --worker`).

A worker can be alive and take nothing: its broker connection silent after a failover, or its
consumer stuck (celery#8030, #8091 and kin). A process check cannot tell; this can. Every
LIVENESS_PING_SECONDS the worker sends a message to a queue of its own, which only it consumes from
the same connection as its work; each message it takes (that one or any other) is noted, and the
time of the last is written to WORKER_HEARTBEAT_FILE. When nothing arrives, the file grows old:
`health --worker` fails once it is older than WORKER_STALE_AFTER, and the supervisor restarts the
worker (deploy/, and `make run`'s own watch, videos/management/commands/run_local.py).
"""

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from celery import Celery
from django.conf import settings
from kombu import Queue

logger = logging.getLogger("videos.worker")

LIVENESS_PING_SECONDS = 10.0
PING_TASK = "runway_project.liveness.ping"


def own_queue_name(default_queue: str, hostname: str) -> str:
    """The queue only this worker consumes: its pings reach it and no other worker."""
    return f"{default_queue}.alive.{hostname}"


def is_own_queue(name: str) -> bool:
    return ".alive." in name


def own_queue(default_queue: str, hostname: str) -> Queue:
    name = own_queue_name(default_queue, hostname)
    # RabbitMQ deletes it a while after its worker is gone (Redis keeps an empty list, which costs nothing).
    return Queue(name, routing_key=name, durable=False, expires=600.0)


class Heartbeat:
    """Notes when the worker took a message, writes it down, and sends itself a ping to take."""

    def __init__(self, app: Celery, *, hostname: str, path: Path, interval: float = LIVENESS_PING_SECONDS) -> None:
        self.app = app
        self.queue = own_queue(app.conf.task_default_queue, hostname)
        self.path = path
        self.interval = interval
        self.taken_at = time.time()  # a worker just ready has until WORKER_STALE_AFTER to take one
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="liveness", daemon=True)

    def start(self) -> None:
        self.write()
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def took_one(self) -> None:
        """Called by the consumer for every message it takes: a float assignment, nothing more."""
        self.taken_at = time.time()

    def write(self) -> None:
        """The file's content and its modification time are both the time the last message came."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        partial.write_text(f"{self.taken_at:.3f}\n")
        os.utime(partial, (self.taken_at, self.taken_at))
        partial.replace(self.path)

    def _run(self) -> None:
        # Written a moment before the next ping: the file is at most `interval` behind the consumer.
        while True:
            self._ping()
            if self._stopped.wait(self.interval):
                return
            try:
                self.write()
            except OSError as exc:  # a full or read-only disk: the probe then fails, and says why
                logger.warning("Liveness: cannot write %s: %s", self.path, exc)

    def _ping(self) -> None:
        try:
            self.app.send_task(
                PING_TASK,
                queue=self.queue.name,  # the Queue the worker consumes (consume_own_queue)
                expires=self.interval * 3,  # a ping that waited that long says nothing any more
                retry_policy=settings.CELERY_TASK_PUBLISH_RETRY_POLICY,
            )
        except Exception as exc:  # noqa: BLE001 (a broker away: the file growing old says so)
            logger.debug("Liveness ping not sent: %r", exc)


_heartbeat: Heartbeat | None = None


def heartbeat_start(app: Celery, *, hostname: str) -> Heartbeat:
    global _heartbeat
    _heartbeat = Heartbeat(app, hostname=hostname, path=Path(settings.WORKER_HEARTBEAT_FILE))
    _heartbeat.start()
    return _heartbeat


def heartbeat_stop() -> None:
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None


def last_message_at() -> float | None:
    """When this worker last took a message (a Unix time); None outside a worker."""
    return _heartbeat.taken_at if _heartbeat is not None else None


def message_taken(**kwargs: Any) -> None:
    """celery.signals.task_received: the consumer took a message."""
    if _heartbeat is not None:
        _heartbeat.took_one()


def last_taken(path: Path) -> float | None:
    """When the worker writing `path` last took a message (a Unix time), or None if it never wrote it."""
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None
