"""Alerts by email (videos/services/alerts.py), sent to a real SMTP server (aiosmtpd) on loopback."""

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
import responses
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.contrib.auth import get_user_model
from django.utils import timezone

from harness.processes import free_port
from videos import tasks
from videos.models import Alert, CreditBalance, Status, VideoGeneration
from videos.services import account, alerts

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ORGANIZATION_URL = "https://runway.test/v1/organization"


class Inbox:
    """What the SMTP server received: each message's recipients and its parsed email."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], object]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.received.append((sorted(envelope.rcpt_tos), message_from_bytes(content)))
        return "250 Message accepted"


class MailServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def subjects(self) -> list[str]:
        return [message["Subject"] for _, message in self.inbox.received]  # type: ignore[index]


@pytest.fixture
def mail(settings) -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    settings.EMAIL_CONFIGURED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "runway@example.com"
    settings.RUNWAY_CREDITS_LOW = 5000
    yield server
    server.stop()


@pytest.fixture
def staff() -> None:
    users = get_user_model().objects
    users.create_user("ops", email="ops@example.com", is_staff=True)
    users.create_user("lead", email="lead@example.com", is_staff=True)
    users.create_user("gone", email="gone@example.com", is_staff=True, is_active=False)
    users.create_user("noaddress", email="", is_staff=True)
    users.create_user("bob", email="bob@example.com")  # not staff


def balance_of(credits: int) -> CreditBalance:
    balance, _ = CreditBalance.objects.update_or_create(pk=CreditBalance.ONLY, defaults={"credits": credits})
    return balance


def test_staff_hear_once_each_time_the_balance_falls_under_the_threshold(mail, staff):
    assert not alerts.credits_low_check(balance_of(9000), now=NOW)
    assert alerts.credits_low_check(balance_of(4000), now=NOW)
    assert not alerts.credits_low_check(balance_of(3000), now=NOW)  # still under: no storm
    assert not alerts.credits_low_check(balance_of(6000), now=NOW)  # back above: cleared, quietly
    assert alerts.credits_low_check(balance_of(4500), now=NOW)  # a new crossing

    assert mail.subjects == ["Runway credits low: 4000 left", "Runway credits low: 4500 left"]
    recipients, message = mail.inbox.received[0]
    assert recipients == ["lead@example.com", "ops@example.com"]  # active staff with an address
    assert message["From"] == "runway@example.com"  # type: ignore[index]
    assert "under RUNWAY_CREDITS_LOW (5000)" in message.get_payload()  # type: ignore[attr-defined]
    assert Alert.objects.get(name=alerts.CREDITS_LOW).raised


def test_an_alert_the_mail_server_did_not_take_is_sent_at_the_next_check(mail, staff):
    mail.stop()  # the SMTP server is down: the connection is refused

    assert not alerts.credits_low_check(balance_of(4000), now=NOW)
    assert not Alert.objects.get(name=alerts.CREDITS_LOW).raised

    mail.start()
    assert alerts.credits_low_check(balance_of(3900), now=NOW)
    assert mail.subjects == ["Runway credits low: 3900 left"]


def test_without_a_threshold_or_mail_settings_nothing_is_sent_or_raised(mail, staff, settings):
    settings.RUNWAY_CREDITS_LOW = 0
    assert not alerts.credits_low_check(balance_of(10), now=NOW)
    settings.RUNWAY_CREDITS_LOW, settings.EMAIL_CONFIGURED = 5000, False
    assert not alerts.credits_low_check(balance_of(10), now=NOW)

    assert mail.subjects == []
    assert not Alert.objects.filter(raised=True).exists()  # sent once mail works


def test_the_two_workers_that_see_the_crossing_at_once_raise_it_once():
    assert alerts.alert_update("credits_low", raised=True, now=NOW)
    assert not alerts.alert_update("credits_low", raised=True, now=NOW)
    assert not alerts.alert_update("credits_low", raised=False, now=NOW)
    assert alerts.alert_update("credits_low", raised=True, now=NOW)


@responses.activate
def test_refreshing_the_balance_from_runway_checks_it(mail, staff):
    responses.get(ORGANIZATION_URL, json={"creditBalance": 1200})

    account.credit_balance_refresh(now=NOW)

    assert mail.subjects == ["Runway credits low: 1200 left"]


def test_staff_hear_once_of_long_overdue_jobs_and_again_after_they_moved(mail, staff, make_job):
    now = timezone.now()
    job = make_job(status=Status.RUNNING, runway_task_id="task-1", step=3, next_check_at=now - timedelta(minutes=5))

    assert alerts.alerts_check(now=now) == [alerts.OVERDUE]
    assert alerts.alerts_check(now=now) == []  # still overdue: no storm
    VideoGeneration.objects.filter(pk=job.pk).update(next_check_at=now + timedelta(seconds=5))
    assert alerts.alerts_check(now=now) == []  # moving again: cleared
    VideoGeneration.objects.filter(pk=job.pk).update(next_check_at=now - timedelta(minutes=5))
    assert alerts.alerts_check(now=now) == [alerts.OVERDUE]

    assert mail.subjects == ["1 video job(s) overdue"] * 2
    assert "manage.py health" in mail.inbox.received[0][1].get_payload()  # type: ignore[attr-defined]


def test_staff_hear_when_more_than_the_share_of_the_last_hours_jobs_failed(mail, staff, make_job, settings):
    settings.ALERT_FAILED_SHARE, settings.ALERT_FAILED_MIN_JOBS = 0.5, 4
    now = timezone.now()
    recent, old = now - timedelta(minutes=10), now - timedelta(hours=2)
    for status in (Status.FAILED, Status.TIMED_OUT, Status.SUCCEEDED):
        make_job(status=status, finished_at=recent)
    for _ in range(3):
        make_job(status=Status.FAILED, finished_at=old)  # over an hour ago: not counted
        make_job(status=Status.CANCELLED, finished_at=recent)  # the user's choice: not counted
    assert alerts.alerts_check(now=now) == []  # 2 of 3: too few jobs to judge

    make_job(status=Status.FAILED, finished_at=recent)  # 3 of 4
    assert alerts.alerts_check(now=now) == [alerts.FAILING]
    make_job(status=Status.FAILED, finished_at=recent)  # 4 of 5: still failing, no second mail
    assert alerts.alerts_check(now=now) == []

    assert mail.subjects == ["3 of 4 video jobs failed in the last hour"]


def test_no_share_no_failure_alert(mail, staff, make_job, settings):
    settings.ALERT_FAILED_SHARE, settings.ALERT_FAILED_MIN_JOBS = 0, 1
    make_job(status=Status.FAILED, finished_at=timezone.now())

    assert alerts.alerts_check(now=timezone.now()) == []


def test_beat_has_the_worker_check_the_alerts(mail, staff, make_job, settings):
    assert settings.CELERY_BEAT_SCHEDULE["check-alerts"]["task"] == "videos.tasks.check_alerts"
    make_job(status=Status.RUNNING, runway_task_id="task-1", step=3, next_check_at=timezone.now() - timedelta(hours=1))

    tasks.check_alerts.apply(throw=True)

    assert mail.subjects == ["1 video job(s) overdue"]


def test_a_mail_server_that_never_answers_holds_a_check_only_email_timeout(mail, staff, settings):
    mail.stop()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never says a word
    settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = silent.getsockname()[1], 1
    started = time.monotonic()

    assert not alerts.credits_low_check(balance_of(100), now=NOW)

    assert time.monotonic() - started < 5
    assert not Alert.objects.get(name=alerts.CREDITS_LOW).raised  # tried again at the next reading
    silent.close()
