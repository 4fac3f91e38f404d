"""Sending task messages to the broker, which may be down or hang: a send never fails its caller.

The database row is the truth and the broker only schedules (videos/services/recovery.py): a job
whose message could not be sent still says on its row that its step is due, and the sweep sends
that message once the broker is back. So a send that fails is logged and reported as False, never
raised, and a web request never waits on a broken broker longer than one send's timeouts
(CELERY_BROKER_TIMEOUT, one retry). After a failure this process sends nothing for
PAUSE_AFTER_FAILURE seconds: a hanging broker costs one request a few seconds, not every request.
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from celery import current_app
from django.db import DatabaseError, connections
from kombu.exceptions import KombuError

from runway_project import installation

logger = logging.getLogger(__name__)

PAUSE_AFTER_FAILURE = 5.0
# What users and staff are told when what they asked for waits for the broker.
QUEUE_DOWN_MESSAGE = (
    "The job queue is not answering right now. What you asked for is saved, and the worker carries "
    "it out by itself once the queue is back (usually within a minute or two)."
)
# The headers of every task message that say which installation sent it (videos/services/strays.py).
ORIGIN_HEADER = "runway_installation"
DATABASE_HEADER = "runway_database"
# What a send raises when the broker is refused, reset, or silent past the timeouts (kombu wraps
# the transport's own errors in its OperationalError; a socket error may escape bare).
BROKER_ERRORS = (KombuError, OSError)


class _Pause:
    """Since when, and until when, this process does not try the broker (monotonic seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.until = 0.0
        self.lock = threading.Lock()

    def active(self) -> bool:
        return self.clock() < self.until

    def start(self) -> None:
        with self.lock:
            self.until = self.clock() + PAUSE_AFTER_FAILURE

    def end(self) -> None:
        self.until = 0.0


_pause = _Pause()


def task_send(
    name: str,
    *,
    args: Sequence[Any] = (),
    countdown: float | None = None,
    expires: float | None = None,
    despite_pause: bool = False,
    headers: dict[str, object] | None = None,
) -> bool:
    """Send a message for the task `name`; False if the broker could not take it now (logged).

    `despite_pause` tries even if a send failed moments ago: the sweep's first send, which is how
    the product finds out that the broker is back. The message carries this installation's
    origin_headers(), or `headers` (another installation's stray, handed back).
    """
    if _pause.active() and not despite_pause:
        logger.warning("Not sending %s%s: the broker failed moments ago; the sweep sends it later", name, tuple(args))
        return False
    try:
        current_app.send_task(
            name, args=tuple(args), countdown=countdown, expires=expires, headers=headers or origin_headers()
        )
    except BROKER_ERRORS as exc:
        _pause.start()
        logger.error("Could not send %s%s (%s); the sweep sends it once the broker is back", name, tuple(args), exc)
        return False
    _pause.end()
    return True


def this_database() -> str:
    """This process's database as runway_project.installation describes it (for people: a worker
    that gets another installation's message says which database sent it)."""
    return installation.database_description(connections["default"].settings_dict)


_installation_keys: dict[str, str | None] = {}


def this_installation() -> str | None:
    """The name the database gave itself when it was first migrated (migration 0012): the same for
    every process that uses it, however each reaches it (a proxy, a pooler, another host name).
    None when it cannot be read now; read once per process and database."""
    database = str(connections["default"].settings_dict.get("NAME"))
    if _installation_keys.get(database) is None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT key FROM runway_installation")
                row = cursor.fetchone()
        except DatabaseError:
            return None  # not migrated yet, or away: a message then says nothing of its origin
        _installation_keys[database] = str(row[0]) if row else None
    return _installation_keys[database]


def origin_headers() -> dict[str, object]:
    """The headers that say a message comes from this installation (none when it cannot be told)."""
    key = this_installation()
    return {ORIGIN_HEADER: key, DATABASE_HEADER: this_database()} if key else {}


def queue_unreachable() -> bool:
    """Whether a send from this process failed moments ago: pages then say the job waits for the queue."""
    return _pause.active()
