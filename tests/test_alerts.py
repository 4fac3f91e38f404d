"""Alerts by email (videos/services/alerts.py), sent to a real SMTP server (aiosmtpd) on loopback."""

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import responses
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from tests.mailserver import MailServer
from tests.test_strays import FROM_ELSEWHERE
from videos import tasks
from videos.models import (
    Alert,
    CreditBalance,
    GroupPolicy,
    JobEvent,
    SpendEntry,
    SpendKind,
    Status,
    UserBudget,
    VideoGeneration,
)
from videos.services import account, alerts
from videos.services.bookkeeping import finish

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ORGANIZATION_URL = "https://runway.test/v1/organization"


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


# --- A user's budget ------------------------------------------------------------------------

DEC = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def carol(django_user_model):
    """A user with an address and a budget of 1,000 credits a month."""
    carol = django_user_model.objects.create_user("carol", email="carol@example.com")
    UserBudget.objects.create(user=carol, monthly_credits=1000)
    return carol


def spend(user, credits: int, *, when: datetime = DEC) -> None:
    """An entry of `credits` in the user's ledger, for a job made at `when`."""
    job = VideoGeneration.objects.create(owner=user, prompt="p", endpoint="text_to_video", model="gen4.5")
    SpendEntry.objects.create(
        user=user,
        username=user.username,
        generation=job,
        generation_number=job.pk,
        job_created_at=when,
        model="gen4.5",
        kind=SpendKind.RESERVED,
        credits=credits,
    )


def test_a_user_hears_once_at_80_and_once_at_100_percent_of_their_budget(mail, carol):
    spend(carol, 790)
    assert alerts.alerts_check(now=DEC) == []  # 79 %

    spend(carol, 10)
    assert alerts.alerts_check(now=DEC) == [f"budget_80:{carol.pk}:2026-12:1000"]
    assert alerts.alerts_check(now=DEC) == []  # still over 80 %: no storm
    spend(carol, 150)
    assert alerts.alerts_check(now=DEC) == []  # 95 %

    spend(carol, 50)
    assert alerts.alerts_check(now=DEC) == [f"budget_100:{carol.pk}:2026-12:1000"]
    spend(carol, 300)
    assert alerts.alerts_check(now=DEC) == []

    assert mail.subjects == [
        "Your video budget for this month is 80 % used",
        "Your video budget for this month is all used",
    ]
    assert {tuple(recipients) for recipients, _ in mail.inbox.received} == {("carol@example.com",)}
    body = mail.inbox.received[1][1].get_payload()  # type: ignore[attr-defined]
    assert "You have spent 1,000 credits (US$10.00) of your monthly budget of 1,000 credits (US$10.00)" in body
    assert "New videos are refused until the budget renews on 1 January (UTC)" in body
    assert "http://127.0.0.1:8000/videos/account/" in body


def test_a_user_who_jumps_past_both_levels_hears_only_of_the_whole_budget(mail, carol):
    spend(carol, 1200)

    assert alerts.alerts_check(now=DEC) == [f"budget_100:{carol.pk}:2026-12:1000"]
    assert alerts.alerts_check(now=DEC) == []
    assert mail.subjects == ["Your video budget for this month is all used"]


def test_a_new_month_and_a_new_budget_are_new_crossings(mail, carol, settings):
    spend(carol, 850)
    assert alerts.alerts_check(now=DEC) == [f"budget_80:{carol.pk}:2026-12:1000"]

    january = datetime(2027, 1, 3, 9, 0, tzinfo=UTC)
    assert alerts.alerts_check(now=january) == []  # December's spending is not January's
    spend(carol, 820, when=january)
    assert alerts.alerts_check(now=january) == [f"budget_80:{carol.pk}:2027-01:1000"]

    UserBudget.objects.filter(user=carol).update(monthly_credits=1025)  # staff raise it a little
    assert alerts.alerts_check(now=january) == [f"budget_80:{carol.pk}:2027-01:1025"]
    assert len(mail.subjects) == 3


def test_users_without_an_address_or_a_budget_and_inactive_ones_are_not_mailed(mail, django_user_model, settings):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 100  # theirs, as they have none of their own
    nobody = django_user_model.objects.create_user("nobody", email="")
    gone = django_user_model.objects.create_user("gone", email="gone@example.com", is_active=False)
    off = django_user_model.objects.create_user("off", email="off@example.com")
    UserBudget.objects.create(user=off, monthly_credits=0)  # generating turned off for them
    dave = django_user_model.objects.create_user("dave", email="dave@example.com")
    for user in (nobody, gone, off, dave):
        spend(user, 100)

    assert alerts.alerts_check(now=DEC) == [f"budget_100:{dave.pk}:2026-12:100"]
    assert [recipients for recipients, _ in mail.inbox.received] == [["dave@example.com"]]


def test_a_budget_mail_the_server_refused_is_sent_at_the_next_check_and_old_months_are_tidied(mail, carol):
    stale = Alert.objects.create(
        name=f"budget_80:{carol.pk}:2026-09:1000", raised=True, changed_at=DEC - timedelta(days=80)
    )
    spend(carol, 900)
    mail.stop()
    assert alerts.alerts_check(now=DEC) == []

    mail.start()
    assert alerts.alerts_check(now=DEC) == [f"budget_80:{carol.pk}:2026-12:1000"]
    assert mail.subjects == ["Your video budget for this month is 80 % used"]
    assert not Alert.objects.filter(pk=stale.pk).exists()


# --- "Email me when it is done" -------------------------------------------------------------


@pytest.fixture
def erin(django_user_model):
    return django_user_model.objects.create_user("erin", email="erin@example.com")


def job_ended(job: VideoGeneration, status: Status, *, message: str = "") -> JobEvent:
    """End `job` as the worker does: its final status and its JobEvent written together."""
    job.refresh_from_db()
    with transaction.atomic():
        finish(job, status, message=message)
        job.save()
        job.record_ending()
    return JobEvent.objects.get(generation=job)


def test_a_job_whose_owner_asked_sends_its_mail_task_when_it_ends(
    mail, erin, make_job, broker, django_capture_on_commit_callbacks
):
    wanted = make_job(owner=erin, notify_when_done=True, status=Status.RUNNING)
    unwanted = make_job(owner=erin, status=Status.RUNNING)
    cancelled = make_job(owner=erin, notify_when_done=True, status=Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        event = job_ended(wanted, Status.SUCCEEDED)
        job_ended(unwanted, Status.SUCCEEDED)
        job_ended(cancelled, Status.CANCELLED)  # the user did it: they know

    assert [(task.name, task.args) for task in broker.tasks()] == [("videos.tasks.mail_job_done", [event.pk])]


def test_without_mail_settings_an_ending_sends_no_mail_task(
    mail, erin, make_job, broker, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_CONFIGURED = False
    job = make_job(owner=erin, notify_when_done=True, status=Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        job_ended(job, Status.FAILED)

    assert broker.tasks() == []


@pytest.mark.django_db(transaction=True)  # the mail thread reads the ending on a connection of its own
def test_the_worker_mails_the_owner_once_with_a_link_to_the_video(mail, erin, make_job, settings):
    settings.SITE_URL = "https://videos.example.com"
    job = make_job(owner=erin, notify_when_done=True, status=Status.RUNNING, prompt="A fox\nin the snow")
    event = job_ended(job, Status.SUCCEEDED)

    tasks.mail_job_done.apply(args=[event.pk], throw=True)  # handed to the mail threads
    deadline = time.monotonic() + 10
    while not mail.inbox.received and time.monotonic() < deadline:
        time.sleep(0.02)

    [(recipients, message)] = mail.inbox.received
    assert recipients == ["erin@example.com"]
    assert message["Subject"] == f"Your video #{job.pk} is ready"  # type: ignore[index]
    body = message.get_payload()  # type: ignore[attr-defined]
    assert 'Your video "A fox in the snow" (Gen-4.5) is done.' in body
    assert f"https://videos.example.com/videos/{job.pk}/" in body
    assert alerts.done_mail_send(event_id=event.pk, now=timezone.now()) is alerts.Mailed.NOTHING  # once
    assert len(mail.inbox.received) == 1


def test_a_failed_or_timed_out_job_says_so_and_why(mail, erin, make_job):
    failed = job_ended(
        make_job(owner=erin, notify_when_done=True, status=Status.RUNNING),
        Status.FAILED,
        message="Runway refused the prompt.",
    )
    late = job_ended(make_job(owner=erin, notify_when_done=True, status=Status.RUNNING), Status.TIMED_OUT)

    assert alerts.done_mail_send(event_id=failed.pk, now=timezone.now()) is alerts.Mailed.SENT
    assert alerts.done_mail_send(event_id=late.pk, now=timezone.now()) is alerts.Mailed.SENT

    assert mail.subjects == [
        f"Your video #{failed.generation_number} could not be made",
        f"Your video #{late.generation_number} took too long",
    ]
    assert "Runway refused the prompt." in mail.inbox.received[0][1].get_payload()  # type: ignore[attr-defined]


def test_a_deleted_job_or_an_owner_without_an_address_gets_no_mail(mail, erin, make_job, django_user_model):
    deleted = job_ended(make_job(owner=erin, notify_when_done=True, status=Status.RUNNING), Status.SUCCEEDED)
    VideoGeneration.objects.filter(pk=deleted.generation_id).update(delete_pending=True)
    silent = django_user_model.objects.create_user("silent", email="")
    unreachable = job_ended(make_job(owner=silent, notify_when_done=True, status=Status.RUNNING), Status.SUCCEEDED)

    for event in (deleted, unreachable):
        assert alerts.done_mail_send(event_id=event.pk, now=timezone.now()) is alerts.Mailed.NOTHING
    assert mail.inbox.received == []


def test_a_mail_the_server_refused_or_whose_message_was_lost_is_sent_by_the_next_check(mail, erin, make_job):
    event = job_ended(make_job(owner=erin, notify_when_done=True, status=Status.RUNNING), Status.SUCCEEDED)
    mail.stop()
    assert alerts.done_mail_send(event_id=event.pk, now=timezone.now()) is alerts.Mailed.REFUSED
    lost = job_ended(
        make_job(owner=erin, notify_when_done=True, status=Status.RUNNING), Status.SUCCEEDED
    )  # its message never came
    mail.start()

    soon = timezone.now() + timedelta(seconds=5)
    assert alerts.done_mails_catch_up(now=soon) == 0  # its own message may still be on its way
    later = timezone.now() + timedelta(minutes=1)
    assert alerts.done_mails_catch_up(now=later) == 2
    assert alerts.done_mails_catch_up(now=later) == 0
    assert mail.subjects == [
        f"Your video #{event.generation_number} is ready",
        f"Your video #{lost.generation_number} is ready",
    ]
    tomorrow = timezone.now() + timedelta(days=1, minutes=1)
    job_ended(make_job(owner=erin, notify_when_done=True, status=Status.RUNNING), Status.SUCCEEDED)
    assert alerts.done_mails_catch_up(now=tomorrow) == 0  # a day on: given up


def test_the_catch_up_stops_at_the_first_mail_a_silent_server_did_not_take(mail, erin, make_job, settings):
    events = [
        job_ended(make_job(owner=erin, notify_when_done=True, status=Status.RUNNING), Status.SUCCEEDED)
        for _ in range(3)
    ]
    mail.stop()
    silent = socket.create_server(("127.0.0.1", 0))
    settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = silent.getsockname()[1], 1
    started = time.monotonic()

    assert alerts.done_mails_catch_up(now=timezone.now() + timedelta(minutes=1)) == 0

    assert time.monotonic() - started < 2.5  # one EMAIL_TIMEOUT, not three
    assert not JobEvent.objects.filter(pk__in=[e.pk for e in events], mailed_at__isnull=False).exists()
    silent.close()


def test_a_mail_message_from_another_installation_mails_nobody(mail, erin, make_job, broker):
    event = job_ended(make_job(owner=erin, notify_when_done=True, status=Status.RUNNING), Status.SUCCEEDED)

    tasks.mail_job_done.apply(args=[event.pk], headers=FROM_ELSEWHERE, throw=True)

    assert JobEvent.objects.get(pk=event.pk).mailed_at is None  # its ending 1 is not ours
    assert [(task.name, task.args) for task in broker.tasks()] == [("videos.tasks.mail_job_done", [event.pk])]


def test_a_groups_members_each_hear_once_when_its_shared_budget_is_80_and_100_percent_used(
    mail, carol, django_user_model
):
    dan = django_user_model.objects.create_user("dan", email="dan@example.com")
    UserBudget.objects.create(user=dan, monthly_credits=100_000)  # far from his own
    silent = django_user_model.objects.create_user("silent", email="")
    group = Group.objects.create(name="Interns")
    group.user_set.add(carol, dan, silent)
    GroupPolicy.objects.create(group=group, monthly_credits=10_000)  # carol's own budget is 1,000
    Group.objects.create(name="Book club").user_set.add(carol)  # no budget: no alert
    spend(dan, 7_000)
    assert alerts.alerts_check(now=DEC) == []  # 70 %

    spend(dan, 1_000)
    assert alerts.alerts_check(now=DEC) == [f"budget_80:group-{group.pk}:2026-12:10000"]
    assert alerts.alerts_check(now=DEC) == []
    spend(dan, 2_000)
    assert alerts.alerts_check(now=DEC) == [f"budget_100:group-{group.pk}:2026-12:10000"]

    subjects = ["The Interns group's video budget for this month is 80 % used"] * 2
    subjects += ["The Interns group's video budget for this month is all used"] * 2
    assert mail.subjects == subjects
    # A mail each: the members do not see each other's addresses.
    assert [recipients for recipients, _ in mail.inbox.received] == [["carol@example.com"], ["dan@example.com"]] * 2
    body = mail.inbox.received[2][1].get_payload()  # type: ignore[attr-defined]
    assert "Your group Interns has spent 10,000 credits (US$100.00) of the 10,000 credits (US$100.00)" in body
    assert "Its members' new videos are refused until the budget renews on 1 January (UTC)." in body
