"""Publishers and consumers of the embedded broker, run as processes of their own by
tests/test_embedded_broker.py: `python -m tests.embedded_broker_client publish|drain|create ...`.

Each uses the product's Celery app, so its connection is the one the settings make of
CELERY_BROKER_URL=filesystem:// and CELERY_BROKER_DIR in its environment.
"""

import argparse
import os
import queue
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runway_project.settings")

import django  # noqa: E402

django.setup()

from runway_project.celery import app  # noqa: E402

QUEUE = "embedded-broker-test"


def publish(count: int, label: str) -> None:
    with app.connection_for_write() as connection:
        messages = connection.SimpleQueue(QUEUE)
        for number in range(count):
            messages.put({"label": label, "number": number, "padding": "x" * 2000})


def drain(total: int, seconds: float, record: str) -> int:
    """Take `total` messages (0: until none comes for 2 s after the first), acknowledging each; print how many
    distinct ones arrived, and with `record` write each one's label and number there, a line each."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + seconds
    idle_since = time.monotonic()
    with app.connection_for_write() as connection:
        messages = connection.SimpleQueue(QUEUE)
        while (len(set(seen)) < total or not total) and time.monotonic() < deadline:
            try:
                message = messages.get(timeout=0.2)
            except queue.Empty:
                if not total and seen and time.monotonic() - idle_since > 2:
                    break
                continue
            idle_since = time.monotonic()
            seen.append((message.payload["label"], message.payload["number"]))
            message.ack()
    if record:
        with open(record, "w") as file:
            file.writelines(f"{label} {number}\n" for label, number in seen)
    print(f"received {len(set(seen))}", flush=True)
    return 0 if len(set(seen)) == total or not total else 2


def create(count: int, threads: int, username: str) -> None:
    """Make `count` jobs for `username` through the product's service, from `threads` threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    from django.contrib.auth.models import User
    from django.db import connection

    from videos.catalog import VideoRequest
    from videos.services.creation import generation_create

    owner = User.objects.get(username=username)

    def one(number: int) -> int:
        try:
            return generation_create(owner=owner, request=VideoRequest(prompt=f"Scene number {number}")).pk
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        ids = list(pool.map(one, range(count)))
    print(f"created {len(ids)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    publisher = commands.add_parser("publish")
    publisher.add_argument("count", type=int)
    publisher.add_argument("label")
    drainer = commands.add_parser("drain")
    drainer.add_argument("total", type=int)
    drainer.add_argument("--seconds", type=float, default=60)
    drainer.add_argument("--record", default="")
    creator = commands.add_parser("create")
    creator.add_argument("count", type=int)
    creator.add_argument("--threads", type=int, default=20)
    creator.add_argument("--user", required=True)
    arguments = parser.parse_args()
    if arguments.command == "create":
        create(arguments.count, arguments.threads, arguments.user)
        return 0
    if arguments.command == "publish":
        publish(arguments.count, arguments.label)
        return 0
    return drain(arguments.total, arguments.seconds, arguments.record)


if __name__ == "__main__":
    sys.exit(main())
