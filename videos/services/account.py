"""The Runway account's credit balance: the worker asks Runway and keeps the figure in one row,
which pages read without ever waiting on Runway."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from videos.models import CreditBalance
from videos.runway import RunwayError, get_client
from videos.services import alerts
from videos.services.bookkeeping import connection_release
from videos.services.queue import task_send

logger = logging.getLogger(__name__)

REFRESH_TASK = "videos.tasks.refresh_credit_balance"


def credit_balance_refresh(*, now: datetime | None = None) -> CreditBalance:
    """Ask Runway for the balance (GET /v1/organization) and keep it; on failure keep the last
    good figure and note why. For the worker and the command line, never a web request."""
    now = now or timezone.now()
    balance = _credit_balance_row()
    connection_release()  # while Runway answers
    try:
        credits = get_client().get_organization().get("creditBalance")
        if not isinstance(credits, int) or isinstance(credits, bool):
            raise RunwayError("Runway's answer about the organization had no credit balance", permanent=False)
    except RunwayError as exc:
        logger.warning("Could not read the credit balance: %s", exc.message)
        balance.checked_at, balance.last_error = now, exc.message
        balance.save(update_fields=["checked_at", "last_error"])
        return balance
    balance.credits, balance.fetched_at, balance.checked_at, balance.last_error = credits, now, now, ""
    balance.save(update_fields=["credits", "fetched_at", "checked_at", "last_error"])
    alerts.credits_low_check(balance, now=now)
    return balance


def credit_balance_request_refresh(*, now: datetime | None = None) -> bool:
    """Have the worker refresh the balance soon; True if this call sent the message.

    At most one message per RUNWAY_CREDITS_REFRESH seconds, whichever process asks: a conditional
    UPDATE of `requested_at` lets one caller through, so a crowd of pages finding the figure stale
    sends one. A broker that cannot be reached is logged, never raised: pages call this.
    """
    now = now or timezone.now()
    interval = settings.RUNWAY_CREDITS_REFRESH
    _credit_balance_row()
    not_asked_lately = Q(requested_at__isnull=True) | Q(requested_at__lte=now - timedelta(seconds=interval))
    if not CreditBalance.objects.filter(not_asked_lately, pk=CreditBalance.ONLY).update(requested_at=now):
        return False
    # A broker that cannot be reached is logged there; the page goes on with the figure it has.
    return task_send(REFRESH_TASK, expires=interval)


def _credit_balance_row() -> CreditBalance:
    balance, _ = CreditBalance.objects.get_or_create(pk=CreditBalance.ONLY)
    return balance
