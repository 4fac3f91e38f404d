"""Alerts by email: each is sent when its condition becomes true, once per crossing of its
threshold, and not again until the condition has cleared and come back (the `Alert` row).

Staff hear when Runway's credit balance falls under RUNWAY_CREDITS_LOW (at each reading of it),
and, at each of beat's alert checks (`alerts_check`), when jobs are long overdue or more than
ALERT_FAILED_SHARE of the last hour's jobs failed. Mail goes through Django's email settings
(EMAIL_URL); without them nothing is checked or sent, so that each alert is sent once mail works.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db.models import Count, Q

from videos.models import Alert, CreditBalance, Status, VideoGeneration

logger = logging.getLogger(__name__)

CREDITS_LOW = "credits_low"
OVERDUE = "jobs_overdue"
FAILING = "jobs_failing"
FAILURE_WINDOW = timedelta(hours=1)


def alert_update(name: str, *, raised: bool, now: datetime) -> bool:
    """Note whether alert `name` is raised; True only for the call that raises it (a conditional
    UPDATE: of two workers at once, one)."""
    Alert.objects.get_or_create(name=name)
    changed = Alert.objects.filter(name=name, raised=not raised).update(raised=raised, changed_at=now)
    return raised and changed == 1


def credits_low_check(balance: CreditBalance, *, now: datetime) -> bool:
    """Tell staff once when the balance falls under RUNWAY_CREDITS_LOW; True if this call did."""
    threshold = settings.RUNWAY_CREDITS_LOW
    if not threshold or balance.credits is None or not settings.EMAIL_CONFIGURED:
        return False
    subject = f"Runway credits low: {balance.credits} left"
    body = (
        f"The Runway account's credit balance is {balance.credits} credits (1 credit = 1 US cent), "
        f"under RUNWAY_CREDITS_LOW ({threshold}). Buy credits before jobs fail on an empty account."
    )
    return _staff_alert(CREDITS_LOW, raised=balance.credits < threshold, now=now, subject=subject, body=body)


def alerts_check(*, now: datetime) -> list[str]:
    """Beat's check (every ALERT_CHECK_INTERVAL seconds): the alerts this call sent."""
    if not settings.EMAIL_CONFIGURED:
        return []
    checks = ((OVERDUE, _overdue_check), (FAILING, _failing_check))
    return [name for name, check in checks if check(now)]


def _overdue_check(now: datetime) -> bool:
    count = VideoGeneration.objects.long_overdue(now).count()
    subject = f"{count} video job(s) overdue"
    body = (
        f"{count} job(s) have a step overdue by more than two poll intervals, or a step claimed and never "
        "finished: the workers are down or behind, or beat is not running. `manage.py health` says which; "
        'the admin\'s "Overdue" filter lists the jobs. Nothing is lost: they move once a worker and beat run.'
    )
    return _staff_alert(OVERDUE, raised=count > 0, now=now, subject=subject, body=body)


def _failing_check(now: datetime) -> bool:
    share, minimum = settings.ALERT_FAILED_SHARE, settings.ALERT_FAILED_MIN_JOBS
    if not share:
        return False
    ended = VideoGeneration.objects.filter(finished_at__gte=now - FAILURE_WINDOW).exclude(status=Status.CANCELLED)
    failures = Q(status__in=[Status.FAILED, Status.TIMED_OUT])
    counts = ended.aggregate(total=Count("pk"), failed=Count("pk", filter=failures))
    total, failed = counts["total"], counts["failed"]
    failing = total >= minimum and failed > share * total
    subject = f"{failed} of {total} video jobs failed in the last hour"
    body = (
        f"{failed} of the {total} jobs that ended in the last hour failed or timed out, more than "
        f"ALERT_FAILED_SHARE ({share:.0%}). The admin lists them with Runway's reasons; the worker's log "
        "has each error."
    )
    return _staff_alert(FAILING, raised=failing, now=now, subject=subject, body=body)


def _staff_alert(name: str, *, raised: bool, now: datetime, subject: str, body: str) -> bool:
    """Raise or clear alert `name`; mail staff when this call raises it. True if it sent the mail."""
    if not alert_update(name, raised=raised, now=now):
        return False
    body += "\n\nThis is sent once each time it happens, and again only after it has cleared."
    if not _mail_staff(subject, body):
        alert_update(name, raised=False, now=now)  # not sent: the next check tries again
        return False
    return True


def _mail_staff(subject: str, body: str) -> bool:
    """Send to every active staff user with an email address; False if it could not be sent."""
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    recipients = sorted(staff.values_list("email", flat=True))
    if not recipients:
        logger.warning("Alert not sent, no active staff user has an email address: %s", subject)
        return False
    try:
        send_mail(subject, body, None, recipients)
    except OSError as exc:  # smtplib's errors are OSErrors: the server is down, or refused us
        logger.warning("Alert not sent (%s): %s", exc, subject)
        return False
    logger.info("Alert sent to %s staff: %s", len(recipients), subject)
    return True
