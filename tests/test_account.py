"""The account's credit balance (services.account, selectors.account_credits): the worker reads it
from Runway and keeps it; pages read the row and at most ask the worker for a fresh figure."""

from datetime import timedelta

import pytest
import responses
from django.conf import settings
from django.utils import timezone

from videos import tasks
from videos.models import CreditBalance
from videos.services import account, selectors

pytestmark = pytest.mark.django_db
ORGANIZATION_URL = "https://runway.test/v1/organization"


@responses.activate
def test_refresh_keeps_runways_figure_and_when_it_came():
    responses.get(ORGANIZATION_URL, json={"creditBalance": 10_000, "tier": {}, "usage": {}})
    now = timezone.now()

    account.credit_balance_refresh(now=now)

    balance = CreditBalance.objects.get()
    assert (balance.credits, balance.fetched_at, balance.checked_at, balance.last_error) == (10_000, now, now, "")


@responses.activate
@pytest.mark.parametrize(
    "answer",
    [{"status": 503}, {"json": {"tier": {}}}, {"json": {"creditBalance": "lots"}}, {"json": [1]}],
    ids=["unavailable", "no_balance", "not_a_number", "not_an_object"],
)
def test_a_failed_refresh_keeps_the_last_good_figure_and_says_why(answer):
    responses.get(ORGANIZATION_URL, json={"creditBalance": 700})
    good = timezone.now() - timedelta(minutes=5)
    account.credit_balance_refresh(now=good)
    responses.replace(responses.GET, ORGANIZATION_URL, **answer)
    later = timezone.now()

    account.credit_balance_refresh(now=later)

    balance = CreditBalance.objects.get()
    assert (balance.credits, balance.fetched_at, balance.checked_at) == (700, good, later)
    assert balance.last_error
    assert settings.RUNWAY_API_KEY not in balance.last_error


@responses.activate
def test_the_task_refreshes_the_balance_and_asks_nothing_without_a_key(settings):
    responses.get(ORGANIZATION_URL, json={"creditBalance": 42})
    tasks.refresh_credit_balance.apply(throw=True)
    assert CreditBalance.objects.get().credits == 42

    settings.RUNWAY_API_KEY = ""
    tasks.refresh_credit_balance.apply(throw=True)
    assert len(responses.calls) == 1


def test_beat_refreshes_the_balance_every_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["refresh-credit-balance"]
    assert entry["task"] == tasks.refresh_credit_balance.name
    assert entry["schedule"] == settings.RUNWAY_CREDITS_REFRESH == 60


def test_the_balance_is_read_from_the_row_with_its_age(broker):
    now = timezone.now()
    CreditBalance.objects.create(credits=1234, fetched_at=now - timedelta(seconds=30))

    with responses.RequestsMock() as runway:
        credits = selectors.account_credits(now=now)
        assert len(runway.calls) == 0

    assert credits == selectors.AccountCredits(1234, now - timedelta(seconds=30), timedelta(seconds=30))
    assert credits.just_now
    assert broker.messages() == []


def test_a_stale_or_missing_figure_asks_the_worker_once_per_interval_however_many_pages_ask(broker):
    interval = timedelta(seconds=settings.RUNWAY_CREDITS_REFRESH)
    now = timezone.now()
    assert selectors.account_credits(now=now) is None  # none read yet
    for _ in range(5):
        selectors.account_credits(now=now)
    assert len(broker.credit_refreshes()) == 1

    # The worker read it, but that was long ago (beat stopped, say): shown, and asked for again...
    CreditBalance.objects.filter().update(credits=5, fetched_at=now - 3 * interval)
    later = now + interval / 2
    assert selectors.account_credits(now=later).credits == 5
    assert len(broker.credit_refreshes()) == 1  # ...but not within an interval of the last request
    for _ in range(5):
        selectors.account_credits(now=now + interval)
    assert len(broker.credit_refreshes()) == 2


def test_a_figure_younger_than_two_intervals_asks_nothing(broker):
    now = timezone.now()
    fresh = now - timedelta(seconds=2 * settings.RUNWAY_CREDITS_REFRESH - 1)
    CreditBalance.objects.create(credits=5, fetched_at=fresh)
    selectors.account_credits(now=now)
    assert broker.messages() == []


# A broker that is down or hangs: tests/test_queue.py, against a real redis-server killed and frozen.
