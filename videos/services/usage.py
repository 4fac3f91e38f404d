"""The daily reconciliation: Runway's own figures of what was spent, per day and model (POST
/v1/organization/usage), beside our spend ledger's, so that staff see where the two differ.

The ledger counts each job on the day (UTC) it was made, with what it finally cost; Runway counts
a charge on the day it made it and a refund on the day it gave it back, so a job made just before
midnight, or refunded a day later, can show as a difference on two neighbouring days that cancel
out. Anything else that differs is worth a look: a task Runway billed that the ledger thinks was
refunded (or the other way round), or another program using the same Runway account.
"""

import logging
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from videos.models import SpendEntry, UsageCheck, UsageDay
from videos.runway import RunwayError, get_client
from videos.services import queue

logger = logging.getLogger(__name__)

# Days read each time, today included: refunds and Runway's corrections land days later.
USAGE_DAYS = 7


def usage_reconcile(*, now: datetime | None = None, days: int = USAGE_DAYS) -> list[UsageDay]:
    """Read Runway's usage of the last `days` days (today's is partial) and keep it beside the
    ledger's, one UsageDay per day and model; returns them. A failure is kept in UsageCheck (and
    the rows of the last reading stay) and raised."""
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    start, before = today - timedelta(days=days - 1), today + timedelta(days=1)
    try:
        runway = {(used.day, used.model): used.credits for used in get_client().get_usage(start=start, before=before)}
    except RunwayError as exc:
        UsageCheck.objects.update_or_create(pk=UsageCheck.ONLY, defaults={"checked_at": now, "error": exc.message})
        logger.warning("Usage not reconciled: %s", exc.message)
        raise
    ours = ledger_by_day(start=start, before=before)
    rows = [
        UsageDay(day=day, model=model, runway_credits=runway.get((day, model)), checked_at=now)
        for day, model in sorted(set(runway) | set(ours))
    ]
    for row in rows:
        row.ledger_credits = ours.get((row.day, row.model), 0)
    with transaction.atomic():
        UsageDay.objects.filter(day__gte=start, day__lt=before).delete()
        UsageDay.objects.bulk_create(rows)
        checked = {"checked_at": now, "error": "", "start": start}
        UsageCheck.objects.update_or_create(pk=UsageCheck.ONLY, defaults=checked)
    differing = [row for row in rows if row.difference]
    if differing:
        logger.warning("Usage: %s day(s) and model(s) differ from Runway's figures since %s", len(differing), start)
    return rows


def ledger_by_day(*, start: date, before: date) -> dict[tuple[date, str], int]:
    """What the spend ledger says the jobs made on each day (UTC) from `start` to the day before
    `before` cost, per model."""
    since, until = (datetime.combine(day, time.min, tzinfo=UTC) for day in (start, before))
    totals = (
        SpendEntry.objects.filter(job_created_at__gte=since, job_created_at__lt=until)
        .annotate(day=TruncDate("job_created_at", tzinfo=UTC))
        .values("day", "model")
        .annotate(total=Sum("credits"))
        .order_by()
    )
    return {(row["day"], row["model"]): int(row["total"] or 0) for row in totals}


RECONCILE_TASK = "videos.tasks.reconcile_usage"


def usage_check_request() -> bool:
    """Ask the worker to reconcile now; False if the broker could not take the message."""
    return queue.task_send(RECONCILE_TASK)
