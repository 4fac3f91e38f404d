"""What users and staff do to a job (services.actions): cancel it, and try again with the same settings."""

import uuid
from datetime import datetime, timedelta

import pytest
import responses
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files.base import ContentFile
from django.utils import timezone

from tests.conftest import PNG, run_next_step
from videos import catalog
from videos.models import Status, VideoGeneration
from videos.services import actions, ledger, recovery
from videos.services.steps import MAX_CANCEL_ATTEMPTS

TASK_ID = "acf9ba3d-a513-42c9-a646-96e8bc97c691"
TASK_URL = f"https://runway.test/v1/tasks/{TASK_ID}"


pytestmark = pytest.mark.django_db


def refusal(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(excinfo.value.message_dict[NON_FIELD_ERRORS])


# --- Cancel ---------------------------------------------------------------------------------


@pytest.fixture
def at_runway(make_job):
    """A job whose task Runway is generating."""
    return make_job(status=Status.RUNNING, runway_task_id=TASK_ID, progress=40, step=3, next_check_at=timezone.now())


def seconds_until(eta: str | None) -> float:
    assert eta is not None
    return (datetime.fromisoformat(eta) - timezone.now()).total_seconds()


def test_cancel_answers_at_once_and_the_worker_deletes_the_task_at_runway(
    alice, at_runway, broker, django_capture_on_commit_callbacks
):
    with responses.RequestsMock() as runway, django_capture_on_commit_callbacks(execute=True):
        response = alice.post(f"/videos/{at_runway.pk}/cancel/", follow=True)
        assert len(runway.calls) == 0  # not one request to Runway while the user waits

    assert "The video is being cancelled." in response.content.decode()
    assert '<span class="status-label">Cancelling…</span>' in response.content.decode()
    job = VideoGeneration.objects.get(pk=at_runway.pk)
    assert (job.status, job.cancel_pending, job.status_label) == (Status.CANCELLED, True, "Cancelling…")
    status = alice.get(f"/videos/{job.pk}/status/").json()
    assert (status["status_label"], status["is_final"], status["settled"]) == ("Cancelling…", True, False)
    [queued] = broker.tasks()
    assert (queued.name, queued.args) == ("videos.tasks.cancel_at_runway", [job.pk, job.step])

    with responses.RequestsMock() as runway:
        runway.delete(TASK_URL, status=204)
        queued.run()
        assert [c.request.method for c in runway.calls] == ["DELETE"]

    job.refresh_from_db()
    assert (job.cancel_pending, job.status_label) == (False, "Cancelled")
    status = alice.get(f"/videos/{job.pk}/status/").json()
    assert (status["status_label"], status["settled"]) == ("Cancelled", True)
    assert "Cancelling" not in alice.get(f"/videos/{job.pk}/").content.decode()


def test_cancel_of_a_job_runway_never_had_is_cancelled_outright(make_job, broker, django_capture_on_commit_callbacks):
    job = make_job(status=Status.QUEUED)
    with responses.RequestsMock(), django_capture_on_commit_callbacks(execute=True):
        job = actions.generation_cancel(generation_id=job.pk)
    assert (job.status, job.cancel_pending, job.status_label, job.is_settled) == (
        Status.CANCELLED,
        False,
        "Cancelled",
        True,
    )
    assert broker.tasks() == []


@responses.activate
def test_a_failed_delete_at_runway_is_retried_with_backoff_then_given_up(
    at_runway, broker, django_capture_on_commit_callbacks
):
    responses.delete(TASK_URL, status=503)
    with django_capture_on_commit_callbacks(execute=True):
        actions.generation_cancel(generation_id=at_runway.pk)

    waits = []
    for _ in range(MAX_CANCEL_ATTEMPTS):
        queued = broker.tasks()[-1]
        waits.append(seconds_until(queued.eta) if queued.eta else 0.0)
        queued.run()

    job = VideoGeneration.objects.get(pk=at_runway.pk)
    assert len(responses.calls) == MAX_CANCEL_ATTEMPTS
    assert len(broker.tasks()) == MAX_CANCEL_ATTEMPTS  # the first, then one retry after each failure but the last
    interval = settings.RUNWAY_POLL_INTERVAL
    assert waits[0] == 0.0
    for attempt, wait in enumerate(waits[1:], start=1):  # exponential, with up to half again of jitter
        base = min(120, interval * 2 ** (attempt - 1))
        assert base - 1 <= wait <= base * 1.5, (attempt, waits)
    assert (job.cancel_pending, job.status_label, job.next_step) == (False, "Cancelled", None)
    assert "Could not cancel the task at Runway" in job.last_error


@responses.activate
def test_a_cancel_whose_message_died_with_its_worker_is_sent_again_by_the_sweep(
    at_runway, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = actions.generation_cancel(generation_id=at_runway.pk)
    broker.clear()  # the worker that took the message was killed: it is gone
    cancelled_at = timezone.now()
    interval = timedelta(seconds=settings.RUNWAY_POLL_INTERVAL)

    assert recovery.generation_sweep(now=cancelled_at + interval / 2) == 0
    assert recovery.generation_sweep(now=cancelled_at + interval + timedelta(seconds=1)) == 1

    [queued] = broker.tasks()
    assert (queued.name, queued.args) == ("videos.tasks.cancel_at_runway", [cancelled.pk, cancelled.step])
    responses.delete(TASK_URL, status=204)
    queued.run()
    job = VideoGeneration.objects.get(pk=cancelled.pk)
    assert (job.cancel_pending, job.status_label) == (False, "Cancelled")
    assert [c.request.method for c in responses.calls] == ["DELETE"]


def test_a_cancel_step_whose_worker_died_mid_way_is_sent_again_by_the_sweep(
    at_runway, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        actions.generation_cancel(generation_id=at_runway.pk)
    broker.clear()
    # The step was claimed (its number moved on), then the worker died before it finished.
    job = VideoGeneration.objects.get(pk=at_runway.pk)
    VideoGeneration.objects.filter(pk=job.pk).update(step=job.step + 1, next_check_at=None)

    assert recovery.generation_sweep(now=timezone.now() + timedelta(minutes=3)) == 1
    [queued] = broker.tasks()
    assert (queued.name, queued.args) == ("videos.tasks.cancel_at_runway", [job.pk, job.step + 1])
    with responses.RequestsMock() as runway:
        runway.delete(TASK_URL, status=204)
        assert run_next_step(job).cancel_pending is False


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


def test_retry_of_a_veo_job_stored_without_a_seed_gets_one(make_job, broker, django_capture_on_commit_callbacks):
    # Jobs from before Veo took a seed have none; their retry is sent with one, and stores it.
    source = make_job(status=Status.FAILED, model="veo3.1_fast", ratio="1920:1080", duration=6, seed=None)
    with django_capture_on_commit_callbacks(execute=True):
        new = actions.generation_retry(generation_id=source.pk)
    assert (new.model, new.ratio, new.duration) == ("veo3.1_fast", "1920:1080", 6)
    assert 0 <= new.seed <= catalog.SEED_MAX


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


def test_retry_of_a_job_whose_image_is_gone_is_refused_with_a_message(make_job, media, broker, client):
    source = make_job(
        status=Status.FAILED,
        endpoint=catalog.IMAGE_TO_VIDEO,
        model="gen4_turbo",
        ratio="960:960",
        image=ContentFile(PNG, name="first-frame.png"),
    )
    source.image.storage.delete(source.image.name)

    with pytest.raises(actions.GenerationError, match="no longer stored: use Edit & re-run"):
        actions.generation_retry(generation_id=source.pk)
    client.force_login(source.owner)
    answer = client.post(f"/videos/{source.pk}/retry/", {"token": str(uuid.uuid4())}, follow=True)
    assert answer.status_code == 200
    assert "no longer stored: use Edit &amp; re-run" in answer.content.decode()
    assert VideoGeneration.objects.count() == 1
    assert broker.tasks() == []


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
    ledger.spend_reserve(generation=source)
    ledger.spend_reserve(generation=make_job(status=Status.FAILED))

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as excinfo:
        actions.generation_retry(generation_id=source.pk)

    assert "in the last 24 hours" in refusal(excinfo)
    assert VideoGeneration.objects.count() == 2
    assert broker.tasks() == []
