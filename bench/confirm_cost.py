"""`python -m bench.confirm_cost`: what RabbitMQ's publisher confirms cost a send (README: Redis or
RabbitMQ). Sends `--sends` liveness pings to a queue of its own, unconfirmed and confirmed, in
alternating rounds, and prints the median and p99 of each; the queue is deleted at the end."""

import argparse
import os
import statistics
import time
from typing import Any

import django


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.confirm_cost", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--broker-url", default=os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
    )
    parser.add_argument("--sends", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    queue = f"confirm-cost-{os.getpid()}"
    os.environ.update(DJANGO_SETTINGS_MODULE="runway_project.settings", DEBUG="True", CELERY_BROKER_URL=args.broker_url)
    django.setup()
    from runway_project.celery import app

    try:
        for _ in range(args.rounds):
            for confirm in (False, True):
                median, p99 = _sends(app, queue, confirm=confirm, count=args.sends)
                print(f"confirm_publish={confirm}: median {median:.2f} ms, p99 {p99:.2f} ms a send")
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)  # type: ignore[attr-defined]


def _sends(app: Any, queue: str, *, confirm: bool, count: int) -> tuple[float, float]:
    """`app` is the Celery app: its producer pools are private, and dropped so the option takes."""
    from kombu import pools

    from runway_project.liveness import PING_TASK

    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "confirm_publish": confirm}
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.send_task(PING_TASK, queue=queue, expires=30)  # connects
    took = []
    for _ in range(count):
        started = time.perf_counter()
        app.send_task(PING_TASK, queue=queue, expires=30)
        took.append(time.perf_counter() - started)
    took.sort()
    return statistics.median(took) * 1000, took[int(count * 0.99)] * 1000


if __name__ == "__main__":
    main()
