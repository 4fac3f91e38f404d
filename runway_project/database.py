"""A worker's database connections: on PostgreSQL, one pool per process that its threads share."""

from typing import Any

from django.conf import settings
from django.db import connections

POSTGRESQL = "django.db.backends.postgresql"


def connection_pool_enable(*, size: int, timeout: float) -> bool:
    """From now on this process's threads take their connection from a pool of at most `size`
    (Django's own `pool` option, psycopg_pool) and give it back after each step, instead of each
    keeping one for CONN_MAX_AGE; False (nothing changed) on SQLite or with `size` 0.

    Called when a worker starts (runway_project/celery.py), before its threads connect: Django reads
    a database's settings when a thread first connects, from the one dict every thread shares.
    """
    database: dict[str, Any] = settings.DATABASES["default"]
    if database["ENGINE"] != POSTGRESQL or size <= 0:
        return False
    connections.close_all()
    database["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": size,
        "timeout": timeout,
        "max_idle": 60.0,  # an idle connection beyond the first is closed after a minute
    }
    database["CONN_MAX_AGE"] = 0  # the pool keeps them; Django gives each back after use
    return True


def connection_pool_disable(*, conn_max_age: int) -> None:
    """Back to a connection per thread, kept `conn_max_age` seconds (tests that switched the pool on)."""
    database: dict[str, Any] = settings.DATABASES["default"]
    if "pool" not in database["OPTIONS"]:
        return
    connections.close_all()  # this thread's, back to the pool
    wrapper: Any = connections["default"]
    wrapper.close_pool()
    del database["OPTIONS"]["pool"]
    database["CONN_MAX_AGE"] = conn_max_age
