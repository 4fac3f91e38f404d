"""What users and staff do to a job (services.actions): try again with the same settings."""

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files.base import ContentFile

from videos import catalog
from videos.models import Status, VideoGeneration
from videos.services import actions

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def refusal(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(excinfo.value.message_dict[NON_FIELD_ERRORS])


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
