"""Alerts by email (videos/services/alerts.py), sent to a real SMTP server (aiosmtpd) on loopback."""

from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes

import pytest
import responses
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.contrib.auth import get_user_model

from harness.processes import free_port
from videos.models import Alert, CreditBalance
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
    users.create_user("alice", email="alice@example.com")


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
