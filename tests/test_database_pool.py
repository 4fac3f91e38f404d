"""The PostgreSQL connection pool (DATABASE_POOL_SIZE): a worker's threads share a few connections,
and a step gives its own back while it waits on something else."""

import threading

import pytest
from django.db import connection, transaction

from tests.test_settings import REPO, manage
from videos.models import VideoGeneration
from videos.services.bookkeeping import connection_release

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the pool is PostgreSQL's")


def test_on_postgresql_each_process_pools_its_connections():
    project = REPO
    code = (
        "from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(d['OPTIONS']['pool']['max_size'], d['OPTIONS']['pool']['timeout'], d['CONN_MAX_AGE'])"
    )
    url = "postgres://someone@127.0.0.1:5432/runway"
    result = manage(
        project, "shell", "-c", code, DEBUG="True", DATABASE_URL=url, DATABASE_POOL_SIZE="7", DATABASE_POOL_TIMEOUT="3"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["7", "3.0", "0"]  # the pool keeps them, not Django

    without = manage(project, "shell", "-c", "from django.conf import settings as s; "
                     "d = s.DATABASES['default']; print('pool' in d['OPTIONS'], d['CONN_MAX_AGE'])",
                     DEBUG="True", DATABASE_URL=url, DATABASE_POOL_SIZE="0")  # fmt: skip
    assert without.stdout.split()[-2:] == ["False", "60"]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_step_gives_its_connection_back_while_it_waits_and_takes_one_again_after():
    VideoGeneration.objects.count()
    pool = connection.pool
    assert pool is not None
    available = pool.get_stats()["pool_available"]

    connection_release()

    assert connection.connection is None
    assert pool.get_stats()["pool_available"] == available + 1  # back in the pool, not closed
    assert VideoGeneration.objects.count() == 0  # the next query takes one again


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_connection_in_a_transaction_is_kept():
    with transaction.atomic():
        VideoGeneration.objects.count()
        held = connection.connection
        connection_release()
        assert connection.connection is held


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_many_threads_share_the_pools_connections(settings):
    """Forty threads that each query, then wait, hold no more than the pool's connections."""
    size = connection.pool.max_size
    seen: set[int] = set()
    lock = threading.Lock()
    go = threading.Barrier(40)

    def step() -> None:
        try:
            go.wait(timeout=10)
            VideoGeneration.objects.count()
            with lock:
                seen.add(id(connection.connection))
            connection_release()
        finally:
            connection.close()

    threads = [threading.Thread(target=step) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(seen) <= size
