"""Making a job (services.creation): the per-user limits and the one-time request tokens."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone

from videos import catalog
from videos.catalog import VideoRequest
from videos.models import Status, VideoGeneration
from videos.services import creation, ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def create(user, broker, django_capture_on_commit_callbacks):
    """generation_create for alice, with on-commit callbacks run as after a real commit."""

    def create(*, owner=None, request_token=None, prompt="A serene mountain landscape at sunset"):
        request = VideoRequest(prompt=prompt)
        with django_capture_on_commit_callbacks(execute=True):
            return creation.generation_create(owner=owner or user, request=request, request_token=request_token)

    return create


def refusal(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(excinfo.value.message_dict[NON_FIELD_ERRORS])


def age(job: VideoGeneration, **delta: float) -> None:
    VideoGeneration.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(**delta))


def made(job: VideoGeneration, **delta: float) -> VideoGeneration:
    """A job made `delta` ago through the service: aged, with its reservation in the spend ledger
    (what the daily limit counts)."""
    if delta:
        age(job, **delta)
    job.refresh_from_db()
    ledger.spend_reserve(generation=job)
    return job


# --- Per-user limits -------------------------------------------------------------------------


def test_fourth_unfinished_job_is_refused_and_nothing_is_stored_or_enqueued(make_job, create, broker):
    for status in (Status.QUEUED, Status.SUBMITTING, Status.RUNNING):
        make_job(status=status)

    with pytest.raises(ValidationError) as excinfo:
        create()

    assert "You already have 3 videos in progress" in refusal(excinfo)
    assert "cancel one" in refusal(excinfo)
    assert VideoGeneration.objects.count() == 3
    assert broker.tasks() == []


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT])
def test_finished_jobs_do_not_count_toward_the_active_limit(make_job, create, broker, status):
    make_job(status=Status.PENDING)
    make_job(status=Status.THROTTLED)
    for _ in range(3):
        make_job(status=status)

    job = create()

    assert job.status == Status.QUEUED
    assert [t.args for t in broker.tasks()] == [[job.pk, 0]]


def test_active_limit_follows_the_setting(make_job, create, broker, settings):
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 5
    for _ in range(4):
        make_job(status=Status.RUNNING)

    fifth = create()
    with pytest.raises(ValidationError) as excinfo:
        create()

    assert fifth.status == Status.QUEUED
    assert "You already have 5 videos in progress" in refusal(excinfo)
    assert VideoGeneration.objects.count() == 5
    assert [t.args for t in broker.tasks()] == [[fifth.pk, 0]]


def test_active_limit_counts_only_the_owners_jobs(make_job, create, other_user):
    for _ in range(3):
        make_job(owner=other_user, status=Status.RUNNING)
    assert create().status == Status.QUEUED


def test_daily_limit_counts_every_job_of_the_last_24_hours_and_says_when_the_next_is_possible(
    make_job, create, broker, settings
):
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 3
    oldest = made(make_job(status=Status.FAILED), hours=23, minutes=30)
    made(make_job(status=Status.SUCCEEDED), hours=5)
    made(make_job(status=Status.CANCELLED), minutes=1)

    with pytest.raises(ValidationError) as excinfo:
        create()

    free_at = oldest.created_at + timedelta(days=1)
    assert "You have made 3 videos in the last 24 hours" in refusal(excinfo)
    assert f"You can make another after {free_at:%Y-%m-%d %H:%M} UTC" in refusal(excinfo)
    assert VideoGeneration.objects.count() == 3
    assert broker.tasks() == []


def test_daily_limit_names_the_time_when_enough_jobs_have_aged_out(make_job, create, settings):
    # Four jobs in the day against a limit of three: the second oldest must age out too.
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 3
    for hours in (20, 10, 3, 1):
        made(make_job(status=Status.FAILED), hours=hours)
    second_oldest = VideoGeneration.objects.order_by("created_at")[1]

    with pytest.raises(ValidationError) as excinfo:
        create()

    assert f"after {second_oldest.created_at + timedelta(days=1):%Y-%m-%d %H:%M} UTC" in refusal(excinfo)


def test_a_job_older_than_24_hours_does_not_count_toward_the_daily_limit(make_job, create, broker, settings):
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 3
    made(make_job(status=Status.FAILED), hours=24, minutes=1)
    made(make_job(status=Status.FAILED), hours=2)
    made(make_job(status=Status.SUCCEEDED), hours=1)

    job = create()

    assert job.status == Status.QUEUED
    assert [t.args for t in broker.tasks()] == [[job.pk, 0]]


def test_daily_limit_follows_the_setting(make_job, create, settings):
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 2
    made(make_job(status=Status.FAILED))
    create()
    with pytest.raises(ValidationError) as excinfo:
        create()
    assert "You have made 2 videos in the last 24 hours" in refusal(excinfo)


# --- One-time request tokens ---------------------------------------------------------------


def test_same_request_token_twice_makes_one_job_and_one_message(create, broker):
    token = uuid.uuid4()

    first = create(request_token=token)
    second = create(request_token=token, prompt="A different description")

    assert second.pk == first.pk
    assert second.prompt == "A serene mountain landscape at sunset"
    assert VideoGeneration.objects.count() == 1
    assert [t.args for t in broker.tasks()] == [[first.pk, 0]]


def test_a_used_request_token_returns_the_job_even_at_the_limit(make_job, create):
    token = uuid.uuid4()
    first = create(request_token=token)
    make_job(status=Status.RUNNING)
    make_job(status=Status.RUNNING)

    assert create(request_token=token).pk == first.pk


def test_another_user_with_the_same_token_gets_their_own_job(create, other_user, broker):
    token = uuid.uuid4()

    mine = create(request_token=token)
    theirs = create(request_token=token, owner=other_user)

    assert theirs.pk != mine.pk
    assert theirs.owner == other_user
    assert [t.args for t in broker.tasks()] == [[mine.pk, 0], [theirs.pk, 0]]


@pytest.fixture
def twin_commits_first(make_job, monkeypatch):
    """Simulate the race of a double click: the twin request (same form token) commits its job
    after this request looked for the token and before it takes the owner's lock."""

    def arrange(token: uuid.UUID) -> None:
        check_request = catalog.check_request

        def check_then_twin_commits(request):
            make_job(request_token=token, status=Status.QUEUED)  # autocommit: the twin is done
            monkeypatch.setattr(catalog, "check_request", check_request)
            return check_request(request)

        monkeypatch.setattr(catalog, "check_request", check_then_twin_commits)

    return arrange


@pytest.mark.django_db(transaction=True)
def test_a_double_post_that_loses_the_race_returns_the_twins_job(create, twin_commits_first):
    token = uuid.uuid4()
    twin_commits_first(token)

    job = create(request_token=token)

    assert job.request_token == token
    assert VideoGeneration.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_double_post_that_loses_the_race_at_the_limit_returns_the_twins_job(make_job, create, twin_commits_first):
    # The twin's job is the owner's third active one. This request must answer with that job,
    # not refuse the double click as a fourth video (the page would show an error for a job that exists).
    make_job(status=Status.RUNNING)
    make_job(status=Status.RUNNING)
    token = uuid.uuid4()
    twin_commits_first(token)

    job = create(request_token=token)

    assert job.request_token == token
    assert VideoGeneration.objects.count() == 3
