import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kombu
from celery import Celery, signals
from celery.worker.consumer import Consumer
from django.db import close_old_connections

from runway_project import liveness
from runway_project.parent_watch import stop_with_parent

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runway_project.settings")

logger = logging.getLogger("videos.worker")


class WorkerConsumer(Consumer):
    """Celery's consumer without its event heartbeat (the `worker-heartbeat` event every 2 s, for
    monitors such as Flower, which nothing here reads).

    That heartbeat publishes from the consumer's own event loop, retrying the broker's connection
    with no limit. With Redis killed, the loop then sat in that retry and never handled the lost
    connection: a worker that "never noticed" its broker was gone (a thread dump in CI showed it,
    in tests/test_deploys.py's Redis outage). Without it, the loop sees the loss and reconnects.
    """

    class Blueprint(Consumer.Blueprint):  # type: ignore[misc,valid-type]
        default_steps = [step for step in Consumer.Blueprint.default_steps if not step.endswith(":Heart")]


app = Celery("runway_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.worker_consumer = f"{__name__}:WorkerConsumer"
app.autodiscover_tasks()


@app.task(name=liveness.PING_TASK, ignore_result=True, acks_late=False)
def liveness_ping() -> None:
    """Nothing to do: the worker taking it is the point (runway_project/liveness.py)."""


@signals.celeryd_after_setup.connect
def consume_own_queue(sender: str = "", instance: Any = None, **kwargs: Any) -> None:
    """Each worker also consumes a queue of its own, where its liveness pings go."""
    queue = liveness.own_queue(instance.app.conf.task_default_queue, sender)
    instance.app.amqp.queues.select_add(queue)


@signals.worker_ready.connect
def start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    """Write down when this worker last took a message (`manage.py health --worker` reads it)."""
    liveness.heartbeat_start(sender.app, hostname=sender.hostname)


@signals.worker_shutdown.connect
def stop_heartbeat(**kwargs: Any) -> None:
    liveness.heartbeat_stop()


signals.task_received.connect(liveness.message_taken)


@signals.beat_embedded_init.connect
def stop_beat_with_its_worker(**kwargs: Any) -> None:
    """The beat that `celery worker -B` runs is a process of its own, whose parent is the worker:
    under `make run` it stops when the worker does, even a worker killed (parent_watch.py)."""
    stop_with_parent()


@signals.worker_ready.connect
def say_which_queue(sender: Any = None, **kwargs: Any) -> None:
    """Say where this worker takes its work from: with two installations on one broker, the first
    thing to know (runway_project/installation.py)."""
    from django.conf import settings

    consumed = sender.app.amqp.queues.consume_from if sender else {}
    queues = ", ".join(repr(name) for name in consumed if not liveness.is_own_queue(name))
    why = (
        f"this installation's own, named after its database ({settings.INSTALLATION_DATABASE})"
        if settings.INSTALLATION_QUEUE_DERIVED
        else "CELERY_QUEUE"
    )
    logging.getLogger("videos.worker").info("Taking work from queue %s (%s)", queues, why)


@signals.worker_init.connect
def pool_database_connections(**kwargs: Any) -> None:
    """A worker's threads share a pool of DATABASE_POOL_SIZE connections on PostgreSQL
    (runway_project/database.py), switched on before any of them connects."""
    from django.conf import settings

    from runway_project.database import connection_pool_enable

    if connection_pool_enable(size=settings.DATABASE_POOL_SIZE, timeout=settings.DATABASE_POOL_TIMEOUT):
        logger.info(
            "Database connections: this worker's threads share a pool of at most %s", settings.DATABASE_POOL_SIZE
        )


@signals.worker_init.connect
def yield_the_cpu_to_the_web_tier(**kwargs: Any) -> None:
    """A worker runs at WORKER_NICENESS (added to its own): on a machine it shares with the web
    server, a page's answer goes before a step's bookkeeping, which can wait milliseconds. Set in the
    main thread before the worker starts its others, which inherit it (niceness is a thread's own)."""
    from django.conf import settings

    if settings.WORKER_NICENESS > 0:
        niceness = os.nice(settings.WORKER_NICENESS)
        session = " and its session's" if _lower_own_session(niceness) else ""
        logger.info("Running at niceness %s%s: the web server on this machine goes first", niceness, session)


def _lower_own_session(niceness: int) -> bool:
    """Linux's autogroups (kernel.sched_autogroup_enabled) share the CPU between sessions first, and
    niceness orders threads only within one: a worker in a session of its own (a service, `make
    run`'s) gives its session the same niceness, or the web server in another would gain nothing.
    False in a session it shares (a terminal's, whose other processes it would slow down with it), or
    where there are no autogroups. Under systemd, a unit's CPUWeight= does this (README)."""
    if os.getsid(0) != os.getpid():
        return False
    try:
        Path("/proc/self/autogroup").write_text(f"{niceness}\n")
    except OSError:
        return False
    return True


@signals.worker_ready.connect
def warm_up_storage(**kwargs: Any) -> None:
    """A bucket's client is made before the first video ends, not by it (runway_project/storage.py)."""
    from runway_project.storage import storage_warm_up

    storage_warm_up()


@signals.worker_ready.connect
def start_holding_polls(sender: Any = None, **kwargs: Any) -> None:
    """In a worker whose tasks run in this process (the threads or solo pool), jobs' polls wait in
    the worker instead of the broker (videos/services/polling.py). A prefork worker's tasks run in
    other processes: their polls go through the broker."""
    from django.conf import settings

    from videos import posters
    from videos.services import polling

    pool = type(getattr(sender, "pool", None)).__module__
    if settings.WORKER_POLL_THREADS > 0 and pool in ("celery.concurrency.thread", "celery.concurrency.solo"):
        polling.poller_start(settings.WORKER_POLL_THREADS, settings.WORKER_FINISH_THREADS, posters.AT_ONCE)


@signals.worker_shutdown.connect
def hand_back_held_polls(**kwargs: Any) -> None:
    """A worker that stops hands the polls it kept back to the broker, each with the time it had left."""
    from videos.services import polling

    polling.poller_stop()


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_database_connections(sender: Any = None, **kwargs: Any) -> None:
    """Around each task in a worker, what Django does around each request: keep the connection up
    to CONN_MAX_AGE, and drop it when it broke or a query failed.

    Celery's own Django support would close it after every task, and reconnecting cost more than a
    whole step (docs/PERFORMANCE.md). A task applied in the caller's process (`.apply()`) runs
    inside the caller's work, whose connection is not the task's to close.
    """
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()


def _forgetting_the_default_channel(collect: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(collect)
    def collect_and_forget(self: kombu.Connection, *args: Any, **kwargs: Any) -> None:
        try:
            collect(self, *args, **kwargs)
        finally:
            self._default_channel = None  # type: ignore[attr-defined]

    return collect_and_forget


# A worker that loses Redis must reconnect, not die. Celery 5.7's worker, on losing its broker
# connection, first collects it (kombu tears the transport down, but keeps the connection's default
# channel, half-closed when Redis is gone) and then closes it, closing that channel a second time:
# kombu then tries to hand the worker's held countdowns back to Redis through the transport that is
# no more, and the AttributeError ends the worker ("Unrecoverable error"). With the channel
# forgotten once collected, the worker reconnects; the countdowns it held are lost with Redis anyway
# (or come back after the visibility timeout), and the sweep sends their steps again.
# tests/test_deploys.py kills Redis under a worker and beat. Remove when kombu forgets it itself.
kombu.Connection.collect = _forgetting_the_default_channel(kombu.Connection.collect)  # type: ignore[method-assign]
