"""Helpers for tests that run the real stack: Celery worker and beat processes against a broker
(Redis, or RabbitMQ), the test database and the Runway simulator."""

import base64
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import amqp
import kombu
import pytest
import redis
from celery import Celery, current_app
from django.conf import settings

from harness.stack import CeleryBeat, CeleryWorker, database_url, environment
from runway_simulator import ManualClock, RunwaySimulator
from videos.models import VideoGeneration

BASE_DIR = Path(settings.BASE_DIR)
POLL_INTERVAL = 5  # the shortest Runway allows
# RabbitMQ for the tests that run on both brokers (README: Deployment). CI requires it
# (TEST_RABBITMQ_REQUIRED=1 in .ci/run); elsewhere those tests skip when it does not answer.
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = ["redis", "rabbitmq"]


LOG_DIR = BASE_DIR / "var"


@dataclass(frozen=True)
class Message:
    """A task message of the test's queue that the broker holds."""

    task: str
    args: list[Any]
    unacked: bool


class StackBroker:
    """The broker the stack's processes use, and the test's queue on it."""

    name = ""
    # Whether messages a live worker holds (its countdowns) show in messages().
    shows_held_messages = False

    def __init__(self, url: str, queue: str) -> None:
        self.url = url
        self.queue = queue

    def messages(self) -> list[Message]:
        """The queue's messages that the broker can show."""
        raise NotImplementedError

    def forget(self) -> list[Message]:
        """Delete the queue's messages, as a broker that lost them would, and return them."""
        raise NotImplementedError

    def wait_until_unconsumed(self, *, seconds: float = 15.0) -> None:
        """Return once no consumer holds the queue's messages any more (its workers are dead)."""

    def close(self) -> None:
        """Leave nothing of the test's queue behind."""
        self.forget()

    @contextmanager
    def sending(self) -> Iterator[None]:
        """In this block, the services called in this thread send their task messages here.

        The test process's own Celery app is the test settings' (Redis database 15, the run's queue);
        a Celery app of the same settings but this broker and queue is made current meanwhile
        (Celery's `current_app` is per thread). It is what a web server configured for this broker sends.
        """
        previous = current_app._get_current_object()
        app = Celery(previous.main, set_as_current=False)
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.conf.update(broker_url=self.url, task_default_queue=self.queue)
        # Celery takes CELERY_BROKER_URL from the environment before its configuration.
        saved_env = os.environ.pop("CELERY_BROKER_URL", None)
        app.set_current()
        try:
            yield
        finally:
            previous.set_current()
            app.close()
            if saved_env is not None:
                os.environ["CELERY_BROKER_URL"] = saved_env


class RedisBroker(StackBroker):
    """Redis: what a worker has taken but not acknowledged (every countdown it holds) stays in Redis,
    in kombu's `unacked` hash, until acknowledged or restored."""

    name = "redis"
    shows_held_messages = True

    def messages(self) -> list[Message]:
        return self._messages(forget=False)

    def forget(self) -> list[Message]:
        return self._messages(forget=True)

    def _messages(self, *, forget: bool) -> list[Message]:
        """The queue's messages (and kombu's per-priority lists beside it), and those in kombu's
        `unacked` hash and `unacked_index` that were taken from it. Other queues in the database
        (maybe another test run's) are left alone."""
        client = redis.Redis.from_url(self.url)
        found = []
        for key in list(client.scan_iter(match=f"{self.queue}*")):
            if key == self.queue.encode() or key.startswith(self.queue.encode() + b"\x06\x16"):
                found += [_redis_message(json.loads(raw), unacked=False) for raw in client.lrange(key, 0, -1)]
                if forget:
                    client.delete(key)
        for tag, raw in list(client.hscan_iter("unacked")):
            payload, _exchange, routing_key = json.loads(raw)
            if routing_key == self.queue:
                found.append(_redis_message(payload, unacked=True))
                if forget:
                    client.hdel("unacked", tag)
                    client.zrem("unacked_index", tag)
        client.close()
        return found


def _redis_message(payload: dict[str, Any], *, unacked: bool) -> Message:
    args, _kwargs, _embed = json.loads(base64.b64decode(payload["body"]))
    return Message(payload["headers"]["task"], args, unacked)


class RabbitMQBroker(StackBroker):
    """RabbitMQ: a message a worker has taken (every countdown it holds) is that worker's until it
    acknowledges it or its connection closes, when RabbitMQ puts it back in the queue. So only the
    messages no worker holds can be seen or forgotten."""

    name = "rabbitmq"

    def messages(self) -> list[Message]:
        with kombu.Connection(self.url) as connection:
            if self._stats(connection) is None:
                return []
            channel = connection.channel()
            queue = kombu.Queue(self.queue, channel=channel)
            found = []
            while (message := queue.get(no_ack=False)) is not None:
                found.append(_amqp_message(message))
            channel.close()  # and with it, every message taken here goes back to the queue
            return found

    def forget(self) -> list[Message]:
        with kombu.Connection(self.url) as connection:
            if self._stats(connection) is None:
                return []
            queue = kombu.Queue(self.queue, channel=connection.default_channel)
            found = []
            while (message := queue.get(no_ack=True)) is not None:
                found.append(_amqp_message(message))
            return found

    def wait_until_unconsumed(self, *, seconds: float = 15.0) -> None:
        """RabbitMQ notices a killed worker's closed connection a moment later, and puts its messages back."""
        deadline = time.monotonic() + seconds
        with kombu.Connection(self.url) as connection:
            while (stats := self._stats(connection)) is not None and stats[1] > 0:
                if time.monotonic() > deadline:
                    pytest.fail(f"queue {self.queue} still has {stats[1]} consumer(s) after {seconds} s")
                time.sleep(0.05)

    def close(self) -> None:
        with kombu.Connection(self.url) as connection:
            channel = connection.default_channel
            channel.queue_delete(self.queue)
            channel.exchange_delete(self.queue)  # Celery names the default queue's exchange after it

    def _stats(self, connection: kombu.Connection) -> tuple[int, int] | None:
        """(messages ready, consumers) of the queue; None when it does not exist (yet)."""
        channel = connection.channel()
        try:
            _name, ready, consumers = channel.queue_declare(self.queue, passive=True)
        except amqp.exceptions.NotFound:
            return None  # the channel is closed by the error
        channel.close()
        return ready, consumers


def _amqp_message(message: Any) -> Message:
    args, _kwargs, _embed = message.payload
    return Message(message.headers["task"], args, unacked=False)


def session_broker() -> RedisBroker:
    """The test settings' broker (Redis database 15) and the run's queue."""
    return RedisBroker(settings.CELERY_BROKER_URL, settings.CELERY_TASK_DEFAULT_QUEUE)


@contextmanager
def stack_broker(name: str) -> Iterator[StackBroker]:
    """A broker for one test, by name (BROKERS). RabbitMQ gets a queue of the test's own, deleted at
    its end; when it does not answer the test is skipped, or failed where it is required (CI)."""
    if name == "redis":
        broker: StackBroker = session_broker()
    else:
        broker = RabbitMQBroker(RABBITMQ_URL, f"{settings.CELERY_TASK_DEFAULT_QUEUE}-{uuid.uuid4().hex[:8]}")
        _require_rabbitmq(broker.url)
    try:
        yield broker
    finally:
        broker.close()


def _require_rabbitmq(url: str) -> None:
    connection = kombu.Connection(url, connect_timeout=2)
    try:
        connection.ensure_connection(max_retries=0)  # one attempt
    except Exception as exc:  # noqa: BLE001 (any reason it does not answer)
        reason = f"RabbitMQ does not answer at {connection.as_uri()} ({exc!r}); set TEST_RABBITMQ_URL"
        if os.environ.get("TEST_RABBITMQ_REQUIRED"):
            pytest.fail(reason + " (TEST_RABBITMQ_REQUIRED is set)")
        pytest.skip(reason)
    finally:
        connection.release()


def production_environment(
    *,
    database_url: str,
    broker_url: str = "",
    queue: str = "",
    runway_url: str = "",
    poll_interval: int = 0,
    max_wait: int = 0,
    secret_key: str = "",
    **more: str,
) -> dict[str, str]:
    """Production settings (DEBUG off) for a process a test starts: the test settings' broker,
    queue, storage, key and Runway unless given."""
    return environment(
        dict(os.environ),
        secret_key=secret_key or settings.SECRET_KEY,
        database_url=database_url,
        broker_url=broker_url or settings.CELERY_BROKER_URL,
        queue=queue or settings.CELERY_TASK_DEFAULT_QUEUE,
        media_root=str(settings.MEDIA_ROOT),
        api_key=settings.RUNWAY_API_KEY,
        runway_url=runway_url or settings.RUNWAY_API_BASE_URL,
        poll_interval=poll_interval or settings.RUNWAY_POLL_INTERVAL,
        max_wait=max_wait or settings.RUNWAY_MAX_WAIT,
        **more,
    )


def stack_environment(
    simulator: RunwaySimulator, *, max_wait: int, db_url: str, broker: StackBroker | None = None, **more: str
) -> dict[str, str]:
    """Production settings (DEBUG off) pointed at the test database, broker queue and simulator."""
    broker = broker or session_broker()
    return production_environment(
        database_url=db_url,
        broker_url=broker.url,
        queue=broker.queue,
        runway_url=simulator.base_url,
        poll_interval=POLL_INTERVAL,
        max_wait=max_wait,
        LOG_LEVEL="DEBUG",
        **more,
    )


class Worker(CeleryWorker):
    """A Celery worker configured like production, but for the test database, queue and simulator."""

    def __init__(
        self,
        simulator: RunwaySimulator,
        *,
        max_wait: int,
        db_url: str,
        concurrency: int | None = None,
        broker: StackBroker | None = None,
        takes_over: bool = False,
        **more: str,
    ) -> None:
        """With `takes_over`, it starts on the messages the queue holds (a deploy's next worker);
        otherwise the queue is emptied first, of an earlier test's messages. `more` adds settings."""
        self.broker = broker or session_broker()
        if not takes_over:
            self.broker.forget()
        env = stack_environment(simulator, max_wait=max_wait, db_url=db_url, broker=self.broker, **more)
        super().__init__(env, log_dir=LOG_DIR, concurrency=concurrency)

    def stop(self, *, grace: float = 30.0) -> None:
        """Kill it: a test's worker has nothing to finish, and the next starts with none of its messages."""
        self.kill()
        self.broker.forget()

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

    def __init__(
        self,
        simulator: RunwaySimulator,
        *,
        max_wait: int,
        db_url: str,
        sweep_interval: int,
        broker: StackBroker | None = None,
    ) -> None:
        env = stack_environment(simulator, max_wait=max_wait, db_url=db_url, broker=broker)
        env["RUNWAY_SWEEP_INTERVAL"] = str(sweep_interval)
        super().__init__(env, log_dir=LOG_DIR)

    def stop(self, *, grace: float = 30.0) -> None:
        self.kill()
        self.remove_schedule()


def broker_messages(*, forget: bool = False) -> list[Message]:
    """This run's task messages in the test settings' Redis; with `forget`, also delete them, as a
    Redis restart without persistence would."""
    broker = session_broker()
    return broker.forget() if forget else broker.messages()


@contextmanager
def running_worker(
    django_db_blocker: Any, simulator: RunwaySimulator, *, max_wait: int, **more: str
) -> Iterator[Worker]:
    """A worker for a module's stack tests, stopped when the module is done."""
    with django_db_blocker.unblock():
        worker = Worker(simulator, max_wait=max_wait, db_url=database_url(), **more)
    try:
        yield worker
    finally:
        worker.stop()


SWEEP_INTERVAL = 2


class Stack:
    """The simulator and Celery processes of one test on one broker, all stopped at its end."""

    def __init__(self, broker: StackBroker | None = None, *, max_wait: int = 300) -> None:
        self.broker = broker or session_broker()
        self.max_wait = max_wait
        self.simulator: RunwaySimulator | None = None
        self.processes: list[Worker | Beat] = []
        # The simulator's time: its tasks end when the test says so, however fast the machine is.
        self.clock = ManualClock()

    def start(self, *, task_seconds: float) -> RunwaySimulator:
        self.simulator = RunwaySimulator(
            task_seconds=task_seconds, api_key=settings.RUNWAY_API_KEY, clock=self.clock
        ).start()
        return self.simulator

    def worker(self, *, takes_over: bool = False, **more: str) -> Worker:
        """A worker of this stack; `more` adds settings."""
        assert self.simulator is not None
        worker = Worker(
            self.simulator,
            max_wait=self.max_wait,
            db_url=database_url(),
            broker=self.broker,
            takes_over=takes_over,
            **more,
        )
        self.processes.append(worker)
        return worker

    def beat(self, *, sweep_interval: int = SWEEP_INTERVAL) -> Beat:
        assert self.simulator is not None
        beat = Beat(
            self.simulator,
            max_wait=self.max_wait,
            db_url=database_url(),
            sweep_interval=sweep_interval,
            broker=self.broker,
        )
        self.processes.append(beat)
        return beat

    def logs(self) -> str:
        return "\n".join(f"--- {process.log.name}:\n{process.tail()}" for process in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.simulator is not None:
            self.simulator.stop()


def wait_until_idle(worker: "Worker", *, seconds: float = 30.0) -> None:
    """Return once no job has work left for the worker (no step due or running, no deletion
    pending): a test that ends while the worker still writes its jobs' rows races the test
    database's flush."""
    deadline = time.monotonic() + seconds
    busy = VideoGeneration.objects.with_next_step() | VideoGeneration.objects.filter(status="submitting")
    while busy.exists() or VideoGeneration.objects.filter(delete_pending=True).exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the worker still had work after {seconds} s\n{worker.tail()}")
        time.sleep(0.2)


def wait_until(
    condition: Callable[[], bool],
    *,
    seconds: float,
    stack: "Stack",
    what: str,
    detail: Callable[[], object] | None = None,
) -> None:
    """Return once `condition()` holds, polling with a deadline; `detail()` adds to the failure."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            more = f" ({detail()})" if detail is not None else ""
            pytest.fail(f"{what} did not happen within {seconds} s{more}\n{stack.logs()}")
        time.sleep(0.1)


def wait_for_jobs(
    stack: Stack, ids: list[int], done: Callable[[VideoGeneration], bool], *, seconds: float
) -> list[VideoGeneration]:
    """The jobs, in `ids` order, once `done` holds for every one of them, polling with a deadline."""
    deadline = time.monotonic() + seconds
    while True:
        jobs = {job.pk: job for job in VideoGeneration.objects.filter(pk__in=ids)}
        if len(jobs) == len(ids) and all(done(job) for job in jobs.values()):
            return [jobs[pk] for pk in ids]
        if time.monotonic() > deadline:
            statuses = Counter(job.status for job in jobs.values())
            pytest.fail(f"after {seconds} s the jobs are {dict(statuses)}\n{stack.logs()}")
        time.sleep(0.2)
