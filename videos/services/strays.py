"""Task messages that strayed in from another installation through a shared queue.

Each installation has a queue of its own by default (runway_project/installation.py). When two
share one anyway (both set the same CELERY_QUEUE), each worker takes about half of the other's
messages. Every message says which installation sent it (videos/services/queue.py); a worker that
gets another's touches nothing (its database has no such job, or a different job of the same
number), says so loudly in its log, keeps a count that /healthz reports, and hands the message
back to the queue for the other installation's workers.
"""

import logging
import random
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from videos.models import StrayMessages
from videos.services import queue

logger = logging.getLogger(__name__)

# How many times a stray is handed back to the queue (a hop count in its headers) before it is
# dropped for its own installation's sweep to send again (its workers may all be stopped); and how
# long after, at random: a worker's consumer asks Redis for the next message once a second, and a
# stray handed back after just that second went, in step with it, to the same wrong worker again
# and again (twenty times in a row, in a test).
HOPS_HEADER = "runway_hops"
STRAY_RETURNS = 20
STRAY_RETURN_AFTER = (0.3, 2.7)
# How long /healthz reports strays after the last one: long enough for a monitor to see it.
STRAYS_REPORTED_FOR = timedelta(minutes=15)


def is_stray(origin: object) -> bool:
    """Whether a message whose origin header says `origin` came from another installation's database.
    A message without one (sent by a version before the header, or by beat), or when this process
    cannot read its own database's name now, is taken as this one's."""
    if not isinstance(origin, str) or not origin:
        return False
    ours = queue.this_installation()
    return ours is not None and origin != ours


def stray_handle(*, task: str, args: tuple[object, ...], headers: dict[str, object], queue_name: str) -> None:
    """Another installation's message reached this one's worker: say so loudly, count it for
    /healthz, and hand it back to the queue (with its own headers) for that installation's workers,
    up to STRAY_RETURNS times; after that, that installation's sweep sends the step again."""
    database = headers.get(queue.DATABASE_HEADER)
    sender = database if isinstance(database, str) and database else "unknown"
    strays_count(database=sender[:300], task=task[:200], queue_name=queue_name[:200])
    hops = headers.get(HOPS_HEADER)
    hops = hops if isinstance(hops, int) and not isinstance(hops, bool) else 0
    returned = hops < STRAY_RETURNS and queue.task_send(
        task, args=args, countdown=random.uniform(*STRAY_RETURN_AFTER), headers={**headers, HOPS_HEADER: hops + 1}
    )
    logger.error(
        "Received %s%s from another installation (its database: %s) on queue %r, which two installations "
        "share; %s. Give each installation its own queue: leave CELERY_QUEUE unset (each then has its own) "
        "or set a different one in each.",
        task,
        args,
        sender,
        queue_name,
        "handed it back to the queue, untouched" if returned else "dropped it: its own sweep sends the step again",
    )


def strays_count(*, database: str, task: str, queue_name: str, now: datetime | None = None) -> None:
    """Add one stray to the count, with what it was and where it came from."""
    now = now or timezone.now()
    seen = {"last_at": now, "last_task": task, "last_database": database, "queue": queue_name}
    if StrayMessages.objects.filter(pk=StrayMessages.ONLY).update(count=F("count") + 1, **seen):
        return
    try:
        with transaction.atomic():
            StrayMessages.objects.create(pk=StrayMessages.ONLY, count=1, first_at=now, **seen)
    except IntegrityError:  # another worker counted the first one at the same moment
        StrayMessages.objects.filter(pk=StrayMessages.ONLY).update(count=F("count") + 1, **seen)


def recent_strays(*, now: datetime) -> StrayMessages | None:
    """The count of strays, if one came in the last STRAYS_REPORTED_FOR."""
    return StrayMessages.objects.filter(pk=StrayMessages.ONLY, last_at__gte=now - STRAYS_REPORTED_FOR).first()
