"""Alerts by email: each is sent when its condition becomes true, once per crossing of its
threshold, and not again until the condition has cleared and come back (the `Alert` row).

- Staff hear when Runway's credit balance falls under RUNWAY_CREDITS_LOW (at each reading of it),
  and, at each of beat's alert checks (`alerts_check`), when jobs are long overdue or more than
  ALERT_FAILED_SHARE of the last hour's jobs failed.
- A user hears, at beat's check, when what they spent this month reaches 80 % and then 100 % of
  their monthly budget: once each a month (again if staff give them a new budget); a group's
  members, each in a mail of their own, when their shared budget (services/groups.py) does.
- A user who ticked "Email me when it is done" hears when that job is done, failed or timed out:
  its ending (`job_ended`) sends `videos.tasks.mail_job_done`, whose worker hands the mail to a
  thread of its own, so that a slow mail server never holds the worker's steps; beat's check
  sends what a lost message or a refused mail did not, for a day.

Mail goes through Django's email settings (EMAIL_URL); without them nothing is checked or sent,
so that each alert is sent once mail works. Links lead to SITE_URL.
"""

import enum
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail, send_mass_mail
from django.db import close_old_connections
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import timezone

from videos.models import Alert, CreditBalance, JobEvent, Status, VideoGeneration
from videos.services import groups, ledger
from videos.services.queue import task_send

logger = logging.getLogger(__name__)

CREDITS_LOW = "credits_low"
OVERDUE = "jobs_overdue"
FAILING = "jobs_failing"
BUDGET = "budget"
FAILURE_WINDOW = timedelta(hours=1)
BUDGET_LEVELS = (100, 80)  # the shares of a monthly budget a user is told of, in percent, highest first
DONE_MAIL_TASK = "videos.tasks.mail_job_done"
DONE_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT)  # cancelled: the user knows
DONE_MAIL_WINDOW = timedelta(days=1)  # how long a "done" mail the server refused is tried again
CATCH_UP_AFTER = timedelta(seconds=30)  # an ending's own message has had its chance by then
CATCH_UP_BATCH = 50
MAIL_THREADS = 2


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
    return [name for name, check in checks if check(now)] + budgets_check(now=now)


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
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    if not _mail(subject, body, sorted(staff.values_list("email", flat=True)), to="staff"):
        alert_update(name, raised=False, now=now)  # not sent: the next check tries again
        return False
    return True


# --- A user's own: their budget, and the jobs they asked to hear about ----------------------


def budgets_check(*, now: datetime) -> list[str]:
    """Tell each active user with an address who has spent 80 % or 100 % of this month's budget, and
    the members of each group whose shared budget (services/groups.py) has, once per level, month and
    budget; the alerts this call sent. What was spent counts Runway's estimates of unfinished jobs,
    as the limits do (services/ledger.py)."""
    month = ledger.month_start(now)
    Alert.objects.filter(name__startswith=f"{BUDGET}_", changed_at__lt=month - timedelta(days=62)).delete()
    due = _users_near_budget(month, now) + _groups_near_budget(month, now)
    # One read for those told already (most, at each check of a month's end), rather than two each.
    told = set(
        Alert.objects.filter(name__in=[crossing.names[0] for crossing in due], raised=True).values_list(
            "name", flat=True
        )
    )
    return [crossing.names[0] for crossing in due if crossing.names[0] not in told and _budget_alert(crossing, now)]


@dataclass(frozen=True)
class _Crossing:
    """A budget at or past a level: its alerts (the level's first, then the lower ones passed on the
    way, raised with it so that they are never told after it), and the mail that tells it."""

    names: list[str]
    recipients: list[str]
    subject: str
    body: str


def _crossing(key: str, recipients: list[str], *, budget: int, spent: int, now: datetime, group: str = "") -> _Crossing:
    """One alert per budget (`key`: a user's number, or `group-<number>`), level, month and budget
    figure: a budget staff change is a new threshold to cross."""
    level = next(level for level in BUDGET_LEVELS if spent * 100 >= budget * level)
    month = f"{ledger.month_start(now):%Y-%m}"
    names = [f"{BUDGET}_{each}:{key}:{month}:{budget}" for each in BUDGET_LEVELS if each <= level]
    subject, body = _budget_mail(level, budget=budget, spent=spent, now=now, group=group)
    return _Crossing(names, recipients, subject, body)


def _users_near_budget(month: datetime, now: datetime) -> list[_Crossing]:
    standing = ledger.users_standing(day_start=month, month_from=month, budget=settings.RUNWAY_MONTHLY_BUDGET_PER_USER)
    near = (
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .annotate(budget=standing["budget"], spent=standing["spent"])
        .alias(spent_fifths=F("spent") * 5)
        .filter(budget__gt=0, spent_fifths__gte=F("budget") * 4)  # spent >= 80 % of budget, in whole numbers
        .values_list("pk", "email", "budget", "spent")
    )
    return [_crossing(str(pk), [email], budget=budget, spent=spent, now=now) for pk, email, budget, spent in near]


def _groups_near_budget(month: datetime, now: datetime) -> list[_Crossing]:
    crossings = []
    for group_id, name, budget, spent in groups.groups_budgets(month_from=month):
        if spent * 5 < budget * 4:
            continue
        members = get_user_model().objects.filter(groups=group_id, is_active=True).exclude(email="")
        recipients = sorted(members.values_list("email", flat=True))
        crossings.append(_crossing(f"group-{group_id}", recipients, budget=budget, spent=spent, now=now, group=name))
    return crossings


def _budget_alert(crossing: _Crossing, now: datetime) -> bool:
    """Raise the crossing's alert and mail it if this call raised it (each recipient a mail of their
    own); the next check tries again when the mail could not be sent."""
    if not alert_update(crossing.names[0], raised=True, now=now):
        return False  # told already
    for lower in crossing.names[1:]:
        alert_update(lower, raised=True, now=now)
    if not _mail(crossing.subject, crossing.body, crossing.recipients, to="user(s)", each=True):
        alert_update(crossing.names[0], raised=False, now=now)
        return False
    return True


def _budget_mail(level: int, *, budget: int, spent: int, now: datetime, group: str = "") -> tuple[str, str]:
    renews = f"{ledger.next_month_start(now):%-d %B} (UTC)"
    if group:
        whose, refused = f"The {group} group's", "its members' new videos are refused"
        spent_text = (
            f"Your group {group} has spent {ledger.credits_text(spent)} of the {ledger.credits_text(budget)} "
            "a month its members share"
        )
    else:
        whose, refused = "Your", "new videos are refused"
        spent_text = (
            f"You have spent {ledger.credits_text(spent)} of your monthly budget of {ledger.credits_text(budget)}"
        )
    if level >= 100:
        subject = f"{whose} video budget for this month is all used"
        body = f"{spent_text}. {refused.capitalize()} until the budget renews on {renews}."
    else:
        subject = f"{whose} video budget for this month is {level} % used"
        body = f"{spent_text}. Once it is all spent, {refused} until the budget renews on {renews}."
    body += (
        "\n\nWhat was spent counts the estimates of videos still being made. Staff can change the budget."
        f"\n\n{settings.SITE_URL}{reverse('videos:account')}"
    )
    return subject, body


class Mailed(enum.Enum):
    SENT = "sent"
    NOTHING = "nothing to send"
    REFUSED = "not sent"


def on_job_ended(sender: object, event: JobEvent, notify: bool = False, **kwargs: object) -> None:
    """The `job_ended` receiver (connected in VideosConfig.ready): a job whose owner asked to be
    told has its mail sent by a worker; the others cost nothing."""
    if notify and settings.EMAIL_CONFIGURED and event.status in DONE_STATUSES:
        task_send(DONE_MAIL_TASK, args=(event.pk,))


_mailer: ThreadPoolExecutor | None = None


def done_mail_hand_over(*, event_id: int) -> None:
    """The Celery task's work: hand the mail to this worker's mail threads, and return at once."""
    global _mailer
    if _mailer is None:
        _mailer = ThreadPoolExecutor(max_workers=MAIL_THREADS, thread_name_prefix="mail")
    _mailer.submit(_done_mail_in_thread, event_id)


def _done_mail_in_thread(event_id: int) -> None:
    try:
        done_mail_send(event_id=event_id, now=timezone.now())
    except Exception:
        logger.exception("The mail of job ending %s failed unexpectedly", event_id)
    finally:
        close_old_connections()


def done_mail_send(*, event_id: int, now: datetime) -> Mailed:
    """Tell the owner of the job whose ending is `event_id` that it is done, failed or timed out,
    once: the ending's `mailed_at` is claimed first (of two workers, one sends), and given back when
    the server did not take the mail, for the next check to try again."""
    if not JobEvent.objects.filter(pk=event_id, mailed_at__isnull=True).update(mailed_at=now):
        return Mailed.NOTHING  # sent, or being sent
    event = JobEvent.objects.select_related("generation", "owner").get(pk=event_id)
    job, owner = event.generation, event.owner
    if job is None or owner is None or job.delete_pending or not owner.is_active or not owner.email:
        return Mailed.NOTHING  # deleted meanwhile, or nobody to tell
    if not _mail(*_done_mail(job, event.status), [owner.email], to="the owner"):
        JobEvent.objects.filter(pk=event_id).update(mailed_at=None)
        return Mailed.REFUSED
    return Mailed.SENT


def done_mails_catch_up(*, now: datetime) -> int:
    """Send the last day's "done" mails that were not: their message was lost, or the mail server
    did not take them. Stops at the first the server refuses. Returns how many were sent."""
    if not settings.EMAIL_CONFIGURED:
        return 0
    missed = JobEvent.objects.filter(
        created_at__gte=now - DONE_MAIL_WINDOW,
        created_at__lte=now - CATCH_UP_AFTER,
        mailed_at__isnull=True,
        status__in=DONE_STATUSES,
        generation__notify_when_done=True,
    ).order_by("created_at")
    sent = 0
    for event_id in missed.values_list("pk", flat=True)[:CATCH_UP_BATCH]:
        mailed = done_mail_send(event_id=event_id, now=now)
        if mailed is Mailed.REFUSED:
            break
        sent += mailed is Mailed.SENT
    return sent


def _done_mail(job: VideoGeneration, status: str) -> tuple[str, str]:
    what = f'"{_shortened(job.prompt)}"' if job.prompt else "from your image or clip"
    link = f"{settings.SITE_URL}{reverse('videos:detail', args=[job.pk])}"
    if status == Status.SUCCEEDED:
        return (
            f"Your video #{job.pk} is ready",
            f"Your video {what} ({job.model_label}) is done. Watch it here:\n\n{link}",
        )
    if status == Status.TIMED_OUT:
        subject, ending = f"Your video #{job.pk} took too long", "took too long and was given up"
    else:
        subject, ending = f"Your video #{job.pk} could not be made", "could not be made"
    reason = f"\n\n{job.message}" if job.message else ""
    return subject, f"Your video {what} ({job.model_label}) {ending}.{reason}\n\nIts page says what it cost:\n\n{link}"


def _shortened(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _mail(subject: str, body: str, recipients: list[str], *, to: str, each: bool = False) -> bool:
    """Send to `recipients` (`to` says who they are, for the log), in one mail or, with `each`, one
    each (a group's members do not see each other's addresses); False if it could not be sent."""
    if not recipients:
        logger.warning("Alert not sent, %s has no email address: %s", to, subject)
        return False
    try:
        if each:
            send_mass_mail([(subject, body, None, [recipient]) for recipient in recipients])
        else:
            send_mail(subject, body, None, recipients)
    except OSError as exc:  # smtplib's errors are OSErrors: the server is down, or refused us
        logger.warning("Alert not sent (%s): %s", exc, subject)
        return False
    logger.info("Alert sent to %s: %s", to if len(recipients) == 1 else f"{len(recipients)} {to}", subject)
    return True
