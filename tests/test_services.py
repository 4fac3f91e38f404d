"""The services on their own: per-user limits, one-time request tokens, retry, and the sweep."""

import uuid
from datetime import timedelta

import pytest
import responses
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files.base import ContentFile
from django.utils import timezone

from videos import catalog, tasks
from videos.catalog import VideoRequest
from videos.models import Status, VideoGeneration
from videos.services import actions, creation, recovery, steps

BASE = "https://runway.test"
TASK_ID = "acf9ba3d-a513-42c9-a646-96e8bc97c691"
TASK_URL = f"{BASE}/v1/tasks/{TASK_ID}"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

pytestmark = pytest.mark.django_db


@pytest.fixture
def create(user, broker, django_capture_on_commit_callbacks):
    """generation_create for alice, with on-commit callbacks run as after a real commit."""

    def create(*, owner=None, request_token=None, prompt="A serene mountain landscape at sunset"):
        request = VideoRequest(prompt=prompt)
        with django_capture_on_commit_callbacks(execute=True):
            return creation.generation_create(owner=owner or user, request=request, request_token=request_token)

    return create


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def refusal(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(excinfo.value.message_dict[NON_FIELD_ERRORS])


def age(job: VideoGeneration, **delta: float) -> None:
    VideoGeneration.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(**delta))


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
    oldest = make_job(status=Status.FAILED)
    age(oldest, hours=23, minutes=30)
    age(make_job(status=Status.SUCCEEDED), hours=5)
    age(make_job(status=Status.CANCELLED), minutes=1)
    oldest.refresh_from_db()

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
        age(make_job(status=Status.FAILED), hours=hours)
    second_oldest = VideoGeneration.objects.order_by("created_at")[1]

    with pytest.raises(ValidationError) as excinfo:
        create()

    assert f"after {second_oldest.created_at + timedelta(days=1):%Y-%m-%d %H:%M} UTC" in refusal(excinfo)


def test_a_job_older_than_24_hours_does_not_count_toward_the_daily_limit(make_job, create, broker, settings):
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 3
    age(make_job(status=Status.FAILED), hours=24, minutes=1)
    age(make_job(status=Status.FAILED), hours=2)
    age(make_job(status=Status.SUCCEEDED), hours=1)

    job = create()

    assert job.status == Status.QUEUED
    assert [t.args for t in broker.tasks()] == [[job.pk, 0]]


def test_daily_limit_follows_the_setting(make_job, create, settings):
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 2
    make_job(status=Status.FAILED)
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


# --- Retry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.FAILED, Status.TIMED_OUT, Status.CANCELLED])
def test_retry_makes_a_new_job_with_the_same_settings_and_enqueues_it(
    make_job, broker, django_capture_on_commit_callbacks, status
):
    source = make_job(
        status=status, model="gen4.5", ratio="720:1280", duration=8, seed=123456, message="It went wrong."
    )

    with django_capture_on_commit_callbacks(execute=True):
        new = actions.generation_retry(generation_id=source.pk)

    assert new.pk != source.pk
    assert new.status == Status.QUEUED
    assert (new.owner, new.prompt, new.endpoint, new.model, new.ratio, new.duration, new.seed) == (
        source.owner,
        source.prompt,
        source.endpoint,
        "gen4.5",
        "720:1280",
        8,
        123456,
    )
    assert new.message == ""
    assert [t.args for t in broker.tasks()] == [[new.pk, 0]]
    source.refresh_from_db()
    assert source.status == status


def test_retry_of_a_model_without_seed_keeps_no_seed(make_job, broker, django_capture_on_commit_callbacks):
    source = make_job(status=Status.FAILED, model="veo3.1_fast", ratio="1920:1080", duration=6, seed=None)
    with django_capture_on_commit_callbacks(execute=True):
        new = actions.generation_retry(generation_id=source.pk)
    assert (new.model, new.ratio, new.duration, new.seed) == ("veo3.1_fast", "1920:1080", 6, None)


def test_retry_copies_an_uploaded_image(make_job, media, broker, django_capture_on_commit_callbacks):
    source = make_job(
        status=Status.FAILED,
        endpoint=catalog.IMAGE_TO_VIDEO,
        model="gen4_turbo",
        ratio="960:960",
        duration=7,
        seed=99,
        image=ContentFile(PNG, name="first-frame.png"),
    )

    with django_capture_on_commit_callbacks(execute=True):
        new = actions.generation_retry(generation_id=source.pk)

    assert (new.endpoint, new.model, new.ratio, new.duration, new.seed) == (
        catalog.IMAGE_TO_VIDEO,
        "gen4_turbo",
        "960:960",
        7,
        99,
    )
    assert new.image
    with new.image.open("rb") as f:
        assert f.read() == PNG
    assert new.image.name.endswith(".png")
    with source.image.open("rb") as f:
        assert f.read() == PNG  # the source keeps its own file
    assert [t.args for t in broker.tasks()] == [[new.pk, 0]]


def test_retry_keeps_an_image_url(make_job, broker, django_capture_on_commit_callbacks):
    source = make_job(
        status=Status.CANCELLED,
        endpoint=catalog.IMAGE_TO_VIDEO,
        model="gen4_turbo",
        image_url="https://images.test/frame.jpg",
    )
    with django_capture_on_commit_callbacks(execute=True):
        new = actions.generation_retry(generation_id=source.pk)
    assert (new.endpoint, new.image_url) == (catalog.IMAGE_TO_VIDEO, "https://images.test/frame.jpg")


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.RUNNING, Status.QUEUED])
def test_a_succeeded_or_unfinished_job_cannot_be_retried(make_job, broker, django_capture_on_commit_callbacks, status):
    source = make_job(status=status)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(actions.GenerationError, match="Only a"):
        actions.generation_retry(generation_id=source.pk)
    assert VideoGeneration.objects.count() == 1
    assert broker.tasks() == []


def test_retry_obeys_the_active_limit(make_job, broker, django_capture_on_commit_callbacks):
    source = make_job(status=Status.FAILED)
    for _ in range(3):
        make_job(status=Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as excinfo:
        actions.generation_retry(generation_id=source.pk)

    assert "in progress" in refusal(excinfo)
    assert VideoGeneration.objects.count() == 4
    assert broker.tasks() == []


def test_retry_obeys_the_daily_limit(make_job, broker, settings, django_capture_on_commit_callbacks):
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 2
    source = make_job(status=Status.FAILED)
    make_job(status=Status.FAILED)

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as excinfo:
        actions.generation_retry(generation_id=source.pk)

    assert "in the last 24 hours" in refusal(excinfo)
    assert VideoGeneration.objects.count() == 2
    assert broker.tasks() == []


# --- Sweep ----------------------------------------------------------------------------------


def overdue(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def touched(job: VideoGeneration, seconds_ago: float) -> VideoGeneration:
    """Set updated_at (auto_now, so only a queryset update can move it back)."""
    VideoGeneration.objects.filter(pk=job.pk).update(updated_at=overdue(seconds_ago))
    job.refresh_from_db()
    return job


def test_sweep_reenqueues_a_queued_job_overdue_by_more_than_the_poll_interval(make_job, broker, settings):
    settings.RUNWAY_POLL_INTERVAL = 10
    job = make_job(status=Status.QUEUED, next_check_at=overdue(11))

    assert recovery.generation_sweep() == 1

    [queued] = broker.tasks()
    assert queued.name == "videos.tasks.submit"
    assert queued.args == [job.pk, 0]


@pytest.mark.parametrize("status", [Status.PENDING, Status.THROTTLED, Status.RUNNING])
def test_sweep_reenqueues_a_job_at_runway_with_its_current_step(make_job, broker, status):
    job = make_job(status=status, runway_task_id=TASK_ID, step=4, next_check_at=overdue(60))

    assert recovery.generation_sweep() == 1

    assert [t.args for t in broker.tasks()] == [[job.pk, 4]]
    job.refresh_from_db()
    assert job.status == status
    assert job.step == 4


def test_a_swept_job_is_not_sent_again_by_the_next_sweep_while_its_message_may_still_run(make_job, broker):
    make_job(status=Status.RUNNING, runway_task_id=TASK_ID, step=4, next_check_at=overdue(60))

    assert recovery.generation_sweep() == 1
    assert recovery.generation_sweep() == 0
    assert len(broker.tasks()) == 1


def test_sweep_leaves_alone_jobs_that_are_not_due(make_job, broker, settings):
    settings.RUNWAY_POLL_INTERVAL = 10
    make_job(status=Status.QUEUED, next_check_at=timezone.now() + timedelta(seconds=30))
    make_job(status=Status.RUNNING, runway_task_id=TASK_ID, step=2, next_check_at=timezone.now() + timedelta(seconds=5))
    # Due, but not yet late by a poll interval: its own message is probably just behind.
    make_job(status=Status.PENDING, runway_task_id=TASK_ID, step=1, next_check_at=overdue(3))

    assert recovery.generation_sweep() == 0
    assert broker.tasks() == []


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT])
def test_sweep_leaves_alone_a_finished_job(make_job, broker, status):
    job = touched(make_job(status=status, runway_task_id=TASK_ID, step=3, next_check_at=overdue(600)), 600)
    snapshot = VideoGeneration.objects.filter(pk=job.pk).values().get()

    assert recovery.generation_sweep() == 0

    assert broker.tasks() == []
    assert VideoGeneration.objects.filter(pk=job.pk).values().get() == snapshot


@pytest.mark.parametrize("status", [Status.RUNNING, Status.SUBMITTING])
def test_sweep_leaves_alone_a_step_in_progress_that_is_recent(make_job, broker, status):
    job = touched(make_job(status=status, step=1, next_check_at=None), 5)

    assert recovery.generation_sweep() == 0

    assert broker.tasks() == []
    job.refresh_from_db()
    assert job.status == status


def test_sweep_reenqueues_a_step_whose_worker_died(make_job, broker):
    job = touched(make_job(status=Status.RUNNING, runway_task_id=TASK_ID, step=3, next_check_at=None), 180)
    assert recovery.generation_sweep() == 1
    assert [t.args for t in broker.tasks()] == [[job.pk, 3]]


@responses.activate
def test_sweep_fails_a_job_stuck_in_submitting_without_sending_it_again(make_job, broker):
    responses.post(f"{BASE}/v1/text_to_video", json={"id": TASK_ID})
    job = touched(make_job(status=Status.SUBMITTING, step=1, next_check_at=None), 150)

    assert recovery.generation_sweep() == 1

    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.failure_code == steps.UNCONFIRMED_CODE
    assert "not sent again" in job.message
    assert job.finished_at is not None
    assert job.step == 2
    assert broker.tasks() == []
    # The message of the step that was in flight, should it come back, is stale now.
    tasks.submit.apply(args=[job.pk, 1], throw=True)
    tasks.submit.apply(args=[job.pk, job.step], throw=True)
    assert len(responses.calls) == 0
    assert recovery.generation_sweep() == 0


def test_sweep_reenqueues_a_final_job_that_still_has_to_be_cancelled_at_runway(make_job, broker):
    job = make_job(
        status=Status.TIMED_OUT, runway_task_id=TASK_ID, cancel_pending=True, step=5, next_check_at=overdue(60)
    )
    assert recovery.generation_sweep() == 1
    assert [t.args for t in broker.tasks()] == [[job.pk, 5]]


def test_sweep_reenqueues_a_lost_poster_step(make_job, broker):
    overdue_since = overdue(60)
    job = make_job(status=Status.SUCCEEDED, poster_pending=True, step=7, next_check_at=overdue_since)
    make_job(status=Status.SUCCEEDED, step=7, next_check_at=overdue_since)  # its poster is made: nothing to do
    assert recovery.generation_sweep() == 1
    assert [t.args for t in broker.tasks()] == [[job.pk, 7]]


@responses.activate
def test_swept_message_and_its_duplicate_make_one_runway_call(make_job, broker):
    responses.get(TASK_URL, json={"id": TASK_ID, "status": "RUNNING", "progress": 0.4})
    job = make_job(status=Status.PENDING, runway_task_id=TASK_ID, step=2, next_check_at=overdue(60))
    recovery.generation_sweep()
    [swept] = broker.tasks()

    assert swept.name == "videos.tasks.poll"
    swept.run()
    swept.run()

    assert len(responses.calls) == 1
    job.refresh_from_db()
    assert job.status == Status.RUNNING
    assert job.progress == 40
    assert job.step == 3
    assert [t.args for t in broker.tasks()] == [[job.pk, 2], [job.pk, 3]]


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
