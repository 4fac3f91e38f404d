"""Every kind of input, end to end: the form, a real Celery worker, the database and the Runway
simulator over HTTP, which judges each create by Runway's own contract (the SDK's types). A clip
to edit, small (inline) or too large for a data URI (uploaded to the simulator's storage first and
sent as its runway:// URI); a finished video upscaled; a character driven by a performance; a
first and a last frame. Each makes one create, and our own copy of the result."""

import hashlib
import io
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from runway_simulator import RunwaySimulator
from tests.conftest import PNG, clip
from tests.stack import Worker, running_worker
from videos.catalog import VideoRequest
from videos.model_table import CHARACTER_PERFORMANCE, IMAGE_TO_VIDEO, OFFERS, VIDEO_TO_VIDEO, VIDEO_UPSCALE, Offer
from videos.models import Status, VideoGeneration
from videos.services import creation, inputs

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=2.0, api_key=settings.RUNWAY_API_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, simulator) -> Iterator[Worker]:
    with running_worker(django_db_blocker, simulator, max_wait=60) as worker:
        yield worker


def creates(simulator: RunwaySimulator) -> list[dict]:
    return [r.json for r in simulator.requests if r.method == "POST" and r.path == "/v1/video_to_video"]


def post_clip(client, data: bytes, **fields) -> VideoGeneration:
    upload = SimpleUploadedFile("holiday.mp4", data, content_type="video/mp4")
    response = client.post("/videos/", {"prompt": "Make it snow", "video": upload, **fields})
    assert response.status_code == 302, response.content.decode()[:2000]
    return VideoGeneration.objects.latest("pk")


def test_a_small_clip_is_edited_inline_into_a_video_of_our_own(client, user, worker, simulator):
    client.force_login(user)
    before = len(creates(simulator))
    data = clip(2.0)

    job = worker.wait_for(post_clip(client, data).pk, lambda job: job.is_settled, seconds=40)  # poster made too

    assert job.status == Status.SUCCEEDED, job.message or job.last_error
    sent = creates(simulator)[before:]
    assert len(sent) == 1
    assert sent[0]["model"] == "aleph2" and sent[0]["videoUri"].startswith("data:video/mp4;base64,")
    assert job.video_file and job.poster  # our copy, and its poster
    assert client.get(f"/videos/{job.pk}/status/").json()["status"] == "succeeded"


def test_a_clip_too_large_for_a_data_uri_goes_through_an_upload(client, user, worker, simulator):
    client.force_login(user)
    before, uploads_before = len(creates(simulator)), len(simulator.uploads)
    data = clip(3.0, large=True)
    assert len(data) > 5 * 1024 * 1024

    job = worker.wait_for(post_clip(client, data, model="seedance2", duration="5").pk, seconds=60)

    assert job.status == Status.SUCCEEDED, job.message or job.last_error
    [upload] = simulator.uploads[uploads_before:]
    assert (upload.size, upload.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    [sent] = creates(simulator)[before:]
    assert sent["promptVideo"] == upload.runway_uri and sent["duration"] == 5

    # Re-run uploads the stored clip afresh (an upload lasts 24 hours at Runway; the job keeps the file).
    client.post(f"/videos/{job.pk}/rerun/")
    again = worker.wait_for(VideoGeneration.objects.latest("pk").pk, seconds=60)
    assert again.pk != job.pk and again.status == Status.SUCCEEDED, again.last_error
    [second] = simulator.uploads[uploads_before + 1 :]
    assert second.sha256 == upload.sha256 and second.runway_uri != upload.runway_uri
    assert len(creates(simulator)) - before == 2


def test_a_finished_video_is_upscaled_from_our_copy_into_a_new_one(client, user, worker, simulator):
    client.force_login(user)
    client.post("/videos/", {"prompt": "A lighthouse in a storm"})
    original = worker.wait_for(VideoGeneration.objects.latest("pk").pk, seconds=40)
    assert original.status == Status.SUCCEEDED, original.last_error
    before = [r for r in simulator.requests if r.path == "/v1/video_upscale"]

    response = client.post(f"/videos/{original.pk}/upscale/")

    upscaled = worker.wait_for(VideoGeneration.objects.latest("pk").pk, seconds=40)
    assert response.status_code == 302 and upscaled.pk != original.pk
    assert upscaled.status == Status.SUCCEEDED, upscaled.message or upscaled.last_error
    [sent] = [r.json for r in simulator.requests if r.path == "/v1/video_upscale"][len(before) :]
    with original.video_file.open("rb") as ours:
        assert sent == {
            "model": "magnific_video_upscaler_creative",
            "videoUri": inputs.data_uri(ours.read(), "video/mp4"),
        }
    assert upscaled.source_id == original.pk and upscaled.video_file


def test_a_performance_drives_a_character_image_into_a_video(client, user, worker, simulator):
    client.force_login(user)
    before = [r for r in simulator.requests if r.path == "/v1/character_performance"]
    performance = SimpleUploadedFile("me.mp4", clip(2.0), content_type="video/mp4")
    image = SimpleUploadedFile("captain.png", PNG, content_type="image/png")

    response = client.post(
        "/videos/", {"prompt": "The captain", "image": image, "performance": performance, "body_control": "on"}
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    job = worker.wait_for(VideoGeneration.objects.latest("pk").pk, lambda job: job.is_settled, seconds=40)
    assert job.status == Status.SUCCEEDED, job.message or job.last_error
    [sent] = [r.json for r in simulator.requests if r.path == "/v1/character_performance"][len(before) :]
    assert sent["model"] == "act_two" and sent["bodyControl"] is True and "promptText" not in sent
    assert sent["character"]["type"] == "image" and sent["character"]["uri"].startswith("data:image/png;base64,")
    assert sent["reference"]["type"] == "video" and sent["reference"]["uri"].startswith("data:video/mp4;base64,")
    assert job.video_file and job.poster


def test_a_first_and_a_last_frame_make_a_veo_video(client, user, worker, simulator):
    client.force_login(user)
    first = SimpleUploadedFile("dawn.png", PNG, content_type="image/png")
    last = SimpleUploadedFile("dusk.png", PNG, content_type="image/png")

    response = client.post(
        "/videos/", {"prompt": "Dawn to dusk", "model": "veo3.1", "image": first, "last_image": last}
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    job = worker.wait_for(VideoGeneration.objects.latest("pk").pk, seconds=40)
    assert job.status == Status.SUCCEEDED, job.message or job.last_error
    sent = [r.json for r in simulator.requests if r.path == "/v1/image_to_video"][-1]
    assert [frame["position"] for frame in sent["promptImage"]] == ["first", "last"]


def _request_for(offer: Offer, performance_clip: bytes) -> VideoRequest:
    """The simplest request the table says `offer` takes: its needed inputs, and its defaults."""
    image = io.BytesIO(PNG) if offer.endpoint in (IMAGE_TO_VIDEO, CHARACTER_PERFORMANCE) else None
    video = io.BytesIO(performance_clip) if offer.endpoint in (VIDEO_TO_VIDEO, VIDEO_UPSCALE) else None
    performance = io.BytesIO(performance_clip) if offer.endpoint == CHARACTER_PERFORMANCE else None
    return VideoRequest(
        prompt=f"A test of {offer.label}",
        model=offer.model,
        image=image,
        video=video,
        upscale=offer.endpoint == VIDEO_UPSCALE,
        performance=performance,
    )


def test_a_job_of_every_model_on_every_endpoint_goes_through_the_worker_and_the_simulator_to_done(
    user, worker, simulator, settings
):
    # Every row of the table, as the product sends it, against the simulator's own contract (the SDK's).
    settings.RUNWAY_MAX_ACTIVE_PER_USER = settings.RUNWAY_DAILY_LIMIT_PER_USER = 1000
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 10_000_000
    rows = sorted(OFFERS)
    data = clip(2.0)
    jobs = {}
    for key in rows:
        jobs[key] = creation.generation_create(owner=user, request=_request_for(OFFERS[key], data)).pk

    done = {key: worker.wait_for(pk, seconds=120) for key, pk in jobs.items()}

    failed = {
        f"{m} on {e}": job.last_error or job.message for (m, e), job in done.items() if job.status != Status.SUCCEEDED
    }
    assert failed == {}
    assert len(done) == len(OFFERS) >= 63
    assert {job.runway_task_id for job in done.values()}.isdisjoint({""})
    creates = [r for r in simulator.requests if r.method == "POST" and isinstance(r.json, dict) and "model" in r.json]
    sent = {(r.json["model"], r.path.removeprefix("/v1/")) for r in creates}
    assert set(rows) <= sent
