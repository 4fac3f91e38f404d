"""What handing a step to the broker costs per message: our after-commit send, against a
transactional outbox (an INSERT in the job's transaction, then a relay's DELETE, then the same
send). README "Outages" and docs/PERFORMANCE.md quote it.

    python -m bench.send_cost            # PostgreSQL of BENCH_DATABASE_URL, Redis of BENCH_BROKER_URL

Measured twice: on loopback, and through TCP proxies that add FIELD_LATENCY each way, as a
database and a broker in the same data centre but on other machines would.
"""

import os
import statistics
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import django

ROUNDS = 2000
FIELD_LATENCY = 0.00025  # seconds each way: a 0.5 ms round trip
QUEUE = "bench-send-cost"


def timed(action: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Median and 99th percentile of `action`, in milliseconds."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def measure(label: str, rounds: int) -> None:
    from django.db import connection, transaction

    from videos.services.queue import task_send

    def send() -> None:
        assert task_send("videos.tasks.poll", args=(1, 1), countdown=10)

    def outbox_insert() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_outbox (task, args) VALUES ('videos.tasks.poll', '[1, 1]')")

    def outbox_take() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM bench_outbox WHERE id = "
                "(SELECT id FROM bench_outbox ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING task, args"
            )

    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE bench_outbox (id bigserial PRIMARY KEY, task text, args jsonb)")
    send()  # the first opens the connection
    figures = {"send": timed(send, rounds), "outbox insert": timed(outbox_insert, rounds)}
    figures["outbox relay delete"] = timed(outbox_take, rounds)
    ours = figures["send"][0]
    outbox = sum(median for median, _ in figures.values())
    print(f"\n{label}")
    for name, (median, p99) in figures.items():
        print(f"  {name:<22} median {median:6.3f} ms   p99 {p99:6.3f} ms")
    print(f"  per message: ours {ours:.3f} ms, with an outbox {outbox:.3f} ms ({outbox / ours:.1f}x)")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_outbox")
    connection.close()


def main() -> None:
    from harness.faults import TcpProxy, celery_broker

    database_url = os.environ.get("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/root")
    broker_url = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    os.environ.update(
        DJANGO_SETTINGS_MODULE="runway_project.settings",
        DEBUG="True",
        CELERY_QUEUE=QUEUE,
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
    )
    django.setup()
    import redis
    from django.db import connection

    measure("loopback", rounds)

    # The same process again, its database and broker connections through proxies that add latency.
    db, broker = urlsplit(database_url), urlsplit(broker_url)
    db_proxy = TcpProxy(db.port or 5432, upstream_host=db.hostname or "127.0.0.1", latency=FIELD_LATENCY)
    broker_proxy = TcpProxy(broker.port or 6379, upstream_host=broker.hostname or "127.0.0.1", latency=FIELD_LATENCY)
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(db_proxy.port))
    with celery_broker(broker_url.replace(broker.netloc, f"127.0.0.1:{broker_proxy.port}")):
        measure(f"field: {FIELD_LATENCY * 2000:.1f} ms round trip to the database and to the broker", rounds // 4)

    redis.Redis.from_url(broker_url).delete(QUEUE)
    db_proxy.close()
    broker_proxy.close()


if __name__ == "__main__":
    main()
