"""Which installation a process belongs to: the database it uses, named the same way by every one
of its processes, and the broker queue that follows from it.

Two installations on one broker (two checkouts of a developer, two small teams on one Redis) must
not take each other's task messages: a worker that takes another installation's step finds no such
job in its database (or worse, a job of its own with the same number). So the default queue is
the installation's own, named after its database, and every task message says which installation
sent it (videos/services/queue.py), so that a worker can tell one that strayed in from another
installation (videos/tasks.py) when a queue is shared anyway.

Only the standard library: settings.py imports this before Django is set up.
"""

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Host names that all mean "this machine": one database, however a process spells it.
_LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")
_DEFAULT_PORTS = {"postgresql": "5432", "mysql": "3306"}


def database_description(database: Mapping[str, Any]) -> str:
    """The database as people read it, without its user or password: "sqlite /srv/app/db.sqlite3",
    "postgresql localhost:5432/videos". Processes that use the same database describe it alike,
    whichever way they name this machine."""
    engine = str(database.get("ENGINE", "")).rsplit(".", 1)[-1]
    name = str(database.get("NAME") or "")
    if engine == "sqlite3":
        return f"sqlite {name if name.startswith(':memory:') or not name else Path(name).resolve()}"
    host = str(database.get("HOST") or "")
    host = "localhost" if host in _LOCAL_HOSTS else host
    port = str(database.get("PORT") or _DEFAULT_PORTS.get(engine, ""))
    return f"{engine} {host}{':' + port if port else ''}/{name}"


def default_queue(description: str) -> str:
    """The broker queue an installation uses unless CELERY_QUEUE names another: its own, named after
    its database. (Its messages name it by the key in the database itself: services/queue.py.)"""
    return f"runway-{hashlib.sha256(description.encode()).hexdigest()[:8]}"
