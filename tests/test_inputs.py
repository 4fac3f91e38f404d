"""A job's inputs in its create request: an image or a clip inline as a data URI while it fits
Runway's limit, else uploaded to Runway's ephemeral storage first and sent as its runway:// URI;
a failed upload sends no create and is tried again."""

import json

import pytest
import responses
from django.core.files.base import ContentFile

from tests.conftest import MP4, PNG, run_next_step
from videos import catalog
from videos.models import Status
from videos.services import inputs, steps

pytestmark = pytest.mark.django_db
BASE = "https://runway.test"
UPLOAD_URL = "https://storage.runway.test/uploads"
RUNWAY_URI = "runway://uploads/0b6f1cd0-2c50-4a47-9a43-6a3d2a3d7b53"


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def upload_slot(mocked, *, status=204):
    mocked.post(
        f"{BASE}/v1/uploads",
        json={"uploadUrl": UPLOAD_URL, "fields": {"key": "uploads/x/clip.mp4", "policy": "p"}, "runwayUri": RUNWAY_URI},
    )
    mocked.post(UPLOAD_URL, status=status)


def clip_job(make_job, model="aleph2", data=MP4, **fields):
    return make_job(
        endpoint=catalog.VIDEO_TO_VIDEO, model=model, ratio=None, duration=None, seed=None, clip_seconds=3.0,
        clip=ContentFile(data, name="clip.mp4"), **fields,
    )  # fmt: skip


def test_a_small_clip_goes_inline_under_its_models_field(make_job, media):
    aleph = steps.generation_payload(generation=clip_job(make_job))
    seedance = steps.generation_payload(generation=clip_job(make_job, model="seedance2"))

    assert aleph["videoUri"] == inputs.data_uri(MP4, "video/mp4")
    assert seedance["promptVideo"] == inputs.data_uri(MP4, "video/mp4")
    assert "videoUri" not in seedance and "promptImage" not in aleph


def test_a_clip_too_large_for_a_data_uri_is_uploaded_first_without_our_key(make_job, media, mocked, monkeypatch):
    monkeypatch.setattr(catalog, "DATA_URI_MAX_LENGTH", 1000)
    upload_slot(mocked)

    payload = steps.generation_payload(generation=clip_job(make_job))

    assert payload["videoUri"] == RUNWAY_URI
    slot, upload = mocked.calls
    assert json.loads(slot.request.body) == {"filename": slot_name(slot), "type": "ephemeral"}
    assert slot.request.headers["Authorization"].startswith("Bearer key_")
    assert "Authorization" not in upload.request.headers  # the storage host is not Runway's API
    assert b'name="key"\r\n\r\nuploads/x/clip.mp4' in upload.request.body
    assert MP4 in upload.request.body


def slot_name(call) -> str:
    name = json.loads(call.request.body)["filename"]
    assert name.endswith(".mp4")
    return name


def test_a_large_image_is_uploaded_too(make_job, media, mocked, monkeypatch):
    monkeypatch.setattr(catalog, "DATA_URI_MAX_LENGTH", 100)
    upload_slot(mocked)
    job = make_job(endpoint=catalog.IMAGE_TO_VIDEO, model="gen4_turbo", image=ContentFile(PNG, name="frame.png"))

    assert steps.generation_payload(generation=job)["promptImage"] == RUNWAY_URI


def test_a_refused_upload_sends_no_create_and_the_job_tries_again(make_job, media, mocked, monkeypatch):
    monkeypatch.setattr(catalog, "DATA_URI_MAX_LENGTH", 1000)
    upload_slot(mocked, status=403)
    job = clip_job(make_job, status=Status.QUEUED)

    job = run_next_step(job)

    assert [call.request.url for call in mocked.calls] == [f"{BASE}/v1/uploads", UPLOAD_URL]  # no create
    assert job.status == Status.QUEUED and job.runway_task_id == ""
    assert "Runway's storage refused the upload (HTTP 403)" in job.last_error
    assert job.next_step is not None  # tried again after a backoff


def test_an_upload_slot_without_a_url_is_a_temporary_error_that_created_nothing(make_job, media, mocked, monkeypatch):
    monkeypatch.setattr(catalog, "DATA_URI_MAX_LENGTH", 1000)
    mocked.post(f"{BASE}/v1/uploads", json={"fields": {}})
    with pytest.raises(steps.RunwayError) as failed:
        steps.generation_payload(generation=clip_job(make_job))
    assert (failed.value.permanent, failed.value.may_have_created) == (False, False)


def test_the_data_uri_limit_counts_what_base64_makes_of_a_file():
    assert inputs.fits_in_a_data_uri(3 * 1024 * 1024)
    assert not inputs.fits_in_a_data_uri(4 * 1024 * 1024)
