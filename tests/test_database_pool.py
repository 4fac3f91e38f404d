"""The PostgreSQL connection pool (DATABASE_POOL_SIZE): a worker's threads share a few connections,
and a step gives its own back while it waits on something else."""

import threading

import pytest
from django.conf import settings
from django.db import connection, transaction

from runway_project.database import connection_pool_disable, connection_pool_enable
from runway_simulator import RunwaySimulator
from tests.stack import running_worker
from videos.models import VideoGeneration
from videos.services.bookkeeping import connection_release

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the pool is PostgreSQL's")


@pytest.fixture
def pooled(settings):
    """This process pools its connections, as a worker does."""
    kept = settings.DATABASES["default"]["CONN_MAX_AGE"]
    assert connection_pool_enable(size=8, timeout=5.0)
    yield
    connection_pool_disable(conn_max_age=kept)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_worker_pools_its_connections_and_says_so(django_db_blocker):
    with RunwaySimulator() as simulator, running_worker(django_db_blocker, simulator, max_wait=300) as worker:
        worker.wait_until_ready(seconds=30)
        log = worker.log.read_text(errors="replace")
    assert f"share a pool of at most {settings.DATABASE_POOL_SIZE}" in log


def test_without_postgresql_or_with_a_size_of_0_nothing_is_pooled(settings):
    if connection.vendor == "postgresql":
        assert not connection_pool_enable(size=0, timeout=5.0)
    else:
        assert not connection_pool_enable(size=8, timeout=5.0)
    assert "pool" not in settings.DATABASES["default"]["OPTIONS"]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_step_gives_its_connection_back_while_it_waits_and_takes_one_again_after(pooled):
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
def test_a_connection_in_a_transaction_is_kept(pooled):
    with transaction.atomic():
        VideoGeneration.objects.count()
        held = connection.connection
        connection_release()
        assert connection.connection is held


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_many_threads_share_the_pools_connections(pooled):
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
