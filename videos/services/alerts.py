"""Alerts by email: each is sent when its condition becomes true, once per crossing of its
threshold, and not again until the condition has cleared and come back (the `Alert` row).

For now: staff hear when Runway's credit balance falls under RUNWAY_CREDITS_LOW. Mail goes through
Django's email settings (EMAIL_URL); without them nothing is sent and the alert stays clear, so
that it is sent once mail works.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from videos.models import Alert, CreditBalance

logger = logging.getLogger(__name__)

CREDITS_LOW = "credits_low"


def alert_update(name: str, *, raised: bool, now: datetime) -> bool:
    """Note whether alert `name` is raised; True only for the call that raises it (a conditional
    UPDATE: of two workers at once, one)."""
    Alert.objects.get_or_create(name=name)
    changed = Alert.objects.filter(name=name, raised=not raised).update(raised=raised, changed_at=now)
    return raised and changed == 1


def credits_low_check(balance: CreditBalance, *, now: datetime) -> bool:
    """Tell staff once when the balance falls under RUNWAY_CREDITS_LOW; True if this call did."""
    threshold = settings.RUNWAY_CREDITS_LOW
    if not threshold or balance.credits is None:
        return False
    low = balance.credits < threshold
    if not alert_update(CREDITS_LOW, raised=low, now=now):
        return False
    subject = f"Runway credits low: {balance.credits} left"
    body = (
        f"The Runway account's credit balance is {balance.credits} credits (1 credit = 1 US cent), "
        f"under RUNWAY_CREDITS_LOW ({threshold}). Buy credits before jobs fail on an empty account.\n\n"
        "This is sent once each time the balance falls under the threshold."
    )
    if not _mail_staff(subject, body):
        alert_update(CREDITS_LOW, raised=False, now=now)  # not sent: the next check tries again
        return False
    return True


def _mail_staff(subject: str, body: str) -> bool:
    """Send to every active staff user with an email address; False if it could not be sent."""
    if not settings.EMAIL_CONFIGURED:
        logger.warning("Alert not sent, EMAIL_URL is not set: %s", subject)
        return False
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
