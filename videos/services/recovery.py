"""The sweep: the database row is the truth, so work whose task message was lost is found from
the rows and put back to work."""

import logging
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from videos.models import LastSweep, Status, VideoGeneration
from videos.services import ledger
from videos.services.bookkeeping import NextStep, enqueue, finish, locked_row
from videos.services.steps import UNCONFIRMED_CODE, UNCONFIRMED_MESSAGE

logger = logging.getLogger(__name__)


def generation_sweep(*, now: datetime | None = None, queue: str = "") -> int:
    """Put back to work every job whose work was lost (VideoGeneration.objects.overdue); return how many.

    The broker only schedules; the rows say what is due. A job whose next step is overdue gets a
    new message for that step (if the old one turns up after all, only one of the two can claim
    the step). A job stuck in `submitting` lost its worker while the create request was out: it
    may have been made at Runway, so it is never sent again. When done, it notes the time, the
    count and the `queue` its worker took the sweep from (this installation's work) in LastSweep,
    for /healthz.
    """
    now = now or timezone.now()
    count = 0
    tried_broker = broker_down = False
    for row in VideoGeneration.objects.overdue(now).only("pk", "status", "step", *_NEXT_STEP_FIELDS):
        if row.status == Status.SUBMITTING:
            count += _give_up_on_create(row.pk)
            continue
        if broker_down:
            continue  # still overdue: the next sweep tries again
        step = row.next_step
        assert step is not None
        # The first send is tried even right after a failure: it is how the sweep finds the broker back.
        sent = enqueue(NextStep(row.pk, step, row.step, 0), despite_pause=not tried_broker)
        tried_broker, broker_down = True, not sent
        if sent:
            # Due now: the next sweep sends it again only if this message is lost too.
            VideoGeneration.objects.filter(pk=row.pk, step=row.step).update(next_check_at=now)
            count += 1
    if count:
        logger.warning("Sweep: %s job(s) had lost their task message", count)
    # Only a sweep that got to the end counts: one that fails every time shows as stale in /healthz.
    queue = queue or settings.CELERY_TASK_DEFAULT_QUEUE
    LastSweep.objects.update_or_create(pk=LastSweep.ONLY, defaults={"ran_at": now, "recovered": count, "queue": queue})
    return count


# What VideoGeneration.next_step reads.
_NEXT_STEP_FIELDS = ("video_pending", "cancel_pending", "poster_pending")


def _give_up_on_create(generation_id: int) -> int:
    with locked_row(generation_id) as row:
        if row.status != Status.SUBMITTING:
            return 0
        row.step += 1
        finish(
            row,
            Status.FAILED,
            message=UNCONFIRMED_MESSAGE,
            failure_code=UNCONFIRMED_CODE,
            error="The worker stopped while the create request was out.",
        )
        row.save()
        ledger.spend_settle(generation=row, charged=None, note=ledger.UNCONFIRMED_NOTE)
    return 1
