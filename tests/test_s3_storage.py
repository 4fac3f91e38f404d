"""Media in an S3 bucket, against a real S3 API over HTTP: moto's server in a process of its own
(harness/s3.py), with no mock of S3. What a worker on a machine of its own needs, sharing no disk
with the web server: a finished video and its poster kept in the bucket, input images and clips
uploaded there and read back, files served from it with ranges (or through a presigned link that
the bucket answers itself), and deleted from it with their job or their user. The last test runs
it all through a real Celery worker and the Runway simulator, configured with the bucket."""

import base64
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from harness.s3 import S3Bucket, s3_bucket
from runway_project.storage import storage_warm_up
from runway_simulator import RunwaySimulator
from tests.conftest import MP4, PNG, clip, run_next_step
from tests.stack import LOG_DIR, Worker, running_worker
from videos.models import Status, Step, VideoGeneration
from videos.services import steps
from videos.tasks import task_for

SIZE = len(MP4)
RUNWAY = "https://runway.test"


@pytest.fixture(scope="module")
def bucket() -> Iterator[S3Bucket]:
    with s3_bucket(log_dir=LOG_DIR) as bucket:
        yield bucket


@pytest.fixture
def in_bucket(settings, bucket, tmp_path) -> Iterator[S3Bucket]:
    """This test's Django keeps media in the bucket, which starts and ends empty; MEDIA_ROOT is a
    folder of the test's own, to show that nothing lands on the local disk."""
    settings.STORAGES = {**settings.STORAGES, "default": bucket.storage()}
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    empty(bucket)
    yield bucket
    empty(bucket)


def empty(bucket: S3Bucket) -> None:
    for key in bucket.object_keys():
        bucket.client().delete_object(Bucket=bucket.name, Key=key)


def object_bytes(bucket: S3Bucket, key: str) -> bytes:
    data: bytes = bucket.client().get_object(Bucket=bucket.name, Key=key)["Body"].read()
    return data


def local_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


# --- Keeping files --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_finished_video_and_its_poster_are_objects_in_the_bucket(in_bucket, make_job):
    job = make_job(status=Status.RUNNING, runway_task_id="t-1")

    name = steps.video_store(generation=job, url="unused: the video is given", video=io.BytesIO(MP4))
    job = make_job(status=Status.SUCCEEDED, runway_task_id="t-2", video_file=name, poster_pending=True)
    job = run_next_step(job)  # make_poster: ffmpeg reads the video from the bucket

    assert job.poster_pending is False
    assert in_bucket.object_keys() == sorted([name, job.poster.name])
    assert object_bytes(in_bucket, name) == MP4
    assert object_bytes(in_bucket, job.poster.name)[:2] == b"\xff\xd8"  # a JPEG
    assert local_files(settings.MEDIA_ROOT) == []


def test_a_large_object_read_from_the_bucket_is_held_on_disk_not_in_memory(in_bucket):
    """What a poster, a re-run or an upscale reads whole (django-storages' default keeps it all in memory)."""
    data = bytes(range(256)) * (6 * 1024 * 1024 // 256)  # 6 MiB, past MAX_MEMORY_BYTES
    name = default_storage.save("videos/test/large.mp4", ContentFile(data))
    with default_storage.open(name, "rb") as handle:
        assert handle.read(10) == data[:10]
        assert handle.file._rolled  # the SpooledTemporaryFile went to disk
        assert handle.read() == data[10:]


def test_a_processs_threads_share_one_boto3_session_each_with_a_resource_of_its_own(in_bucket):
    """django-storages makes a boto3 session per thread, each loading S3's service model again:
    dozens of worker threads cost some 20 MB and 100 ms of CPU each."""
    default_storage.exists("videos/warm-up.mp4")  # this thread's
    # The objects themselves are kept: an id is unique only among live objects, and a thread's
    # resource is freed when the thread ends, so another's could be given its address (and id).
    sessions, resources = [], []
    lock = threading.Lock()

    def use() -> None:
        default_storage.save(f"videos/threads/{threading.get_ident()}.mp4", ContentFile(b"x"))
        with lock:
            sessions.append(default_storage._create_session())
            resources.append(default_storage.connection)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len({id(session) for session in sessions}) == 1
    assert len({id(resource) for resource in resources}) == 8  # boto3's resources are not thread-safe: one each
    assert len(in_bucket.object_keys("videos/threads/")) == 8


def test_a_starting_worker_makes_the_buckets_client_before_any_video_needs_it(in_bucket):
    storage = storages["default"]
    assert "_shared_session" not in storage.__dict__  # nothing made yet in this test's storage

    storage_warm_up()

    assert storage.__dict__.get("_shared_session") is not None
    assert getattr(storage._connections, "connection", None) is not None


@pytest.mark.django_db
def test_uploaded_inputs_are_objects_in_the_bucket_and_a_rerun_reads_them_back(in_bucket, alice):
    response = alice.post("/videos/", {"prompt": "A lighthouse", "image": SimpleUploadedFile("me.png", PNG)})
    assert response.status_code == 302, response.content.decode()[:2000]
    with_image = VideoGeneration.objects.latest("pk")
    data = clip(2.0)
    response = alice.post("/videos/", {"prompt": "Make it snow", "video": SimpleUploadedFile("holiday.mp4", data)})
    assert response.status_code == 302, response.content.decode()[:2000]
    with_clip = VideoGeneration.objects.latest("pk")

    assert in_bucket.object_keys() == sorted([with_image.image.name, with_clip.clip.name])
    assert object_bytes(in_bucket, with_image.image.name) == PNG
    assert object_bytes(in_bucket, with_clip.clip.name) == data

    # Re-running sends the stored image again: read from the bucket, kept as the new job's own copy.
    VideoGeneration.objects.filter(pk=with_image.pk).update(status=Status.CANCELLED)
    alice.post(f"/videos/{with_image.pk}/rerun/")
    rerun = VideoGeneration.objects.latest("pk")
    assert rerun.pk != with_image.pk and rerun.image.name != with_image.image.name
    assert object_bytes(in_bucket, rerun.image.name) == PNG
    assert local_files(settings.MEDIA_ROOT) == []


@pytest.mark.django_db
def test_the_command_uploads_its_image_to_the_bucket_and_names_a_link_that_works(
    in_bucket, admin_user, monkeypatch, broker, tmp_path
):
    image = tmp_path / "me.png"
    image.write_bytes(PNG)
    video = default_storage.save("videos/test/done.mp4", ContentFile(MP4))

    def worker_finishes(seconds: float) -> None:  # between two of --wait's looks at the row
        VideoGeneration.objects.update(status=Status.SUCCEEDED, progress=100, video_file=video)

    monkeypatch.setattr("videos.management.commands.generate_video.sleep", worker_finishes)
    out = io.StringIO()
    call_command("generate_video", "A lighthouse", "--image", str(image), "--wait", stdout=out)

    job = VideoGeneration.objects.get()
    assert object_bytes(in_bucket, job.image.name) == PNG
    link = out.getvalue().strip().splitlines()[-1].split("succeeded: ", 1)[1]
    assert link.startswith(f"{in_bucket.endpoint_url}/{in_bucket.name}/{video}?")  # no path on a disk
    assert in_bucket.secret_key not in out.getvalue()
    assert requests.get(link, timeout=10).content == MP4


# --- Serving from the bucket through our views -----------------------------------------------------


@pytest.fixture
def video(in_bucket, make_job) -> VideoGeneration:
    name = default_storage.save("videos/test/stored.mp4", ContentFile(MP4))
    assert in_bucket.object_keys() == [name]
    return make_job(status=Status.SUCCEEDED, video_file=name, prompt="Lighthouse in a storm!")


def url(job: VideoGeneration) -> str:
    return f"/videos/{job.pk}/video.mp4"


@pytest.mark.django_db
def test_the_whole_video_is_served_from_the_bucket(alice, video):
    response = alice.get(url(video))
    assert response.status_code == 200
    assert body(response) == MP4
    assert response["Content-Length"] == str(SIZE)
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "video/mp4"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=500-999", 500, 999),
        ("bytes=-100", SIZE - 100, SIZE - 1),
        ("bytes=100-", 100, SIZE - 1),
    ],
)
def test_a_range_of_a_video_in_the_bucket_answers_206_with_those_bytes(alice, video, header, first, last):
    response = alice.get(url(video), HTTP_RANGE=header)
    assert response.status_code == 206
    assert body(response) == MP4[first : last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert response["Content-Length"] == str(last - first + 1)


@pytest.mark.django_db
def test_a_range_asks_the_bucket_for_those_bytes_only(alice, video):
    """django-storages' own file downloads the whole object for any read; a player seeking in a
    200 MB video must not cost the app 200 MB per request."""
    asked: list[bytes | None] = []
    events = default_storage.connection.meta.client.meta.events
    events.register("before-send.s3.GetObject", lambda request, **_: asked.append(request.headers.get("Range")))

    response = alice.get(url(video), HTTP_RANGE="bytes=100-199")

    assert body(response) == MP4[100:200]
    assert asked == [b"bytes=100-199"]


@pytest.mark.django_db
def test_a_range_past_the_end_of_a_video_in_the_bucket_answers_416(alice, video):
    response = alice.get(url(video), HTTP_RANGE=f"bytes={SIZE}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"


@pytest.mark.django_db
def test_if_range_and_revalidation_follow_the_object_in_the_bucket(alice, video):
    first = alice.get(url(video))
    etag, modified = first["ETag"], first["Last-Modified"]
    for validator in (etag, modified):
        same = alice.get(url(video), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=validator)
        assert (same.status_code, body(same)) == (206, MP4[:10])
    stale = alice.get(url(video), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"something-else"')
    assert (stale.status_code, body(stale)) == (200, MP4)
    revalidated = alice.get(url(video), HTTP_IF_NONE_MATCH=etag)
    assert revalidated.status_code == 304
    assert revalidated["ETag"] == etag


@pytest.mark.django_db
def test_an_object_gone_from_the_bucket_answers_404_with_a_clear_message(alice, video, in_bucket):
    in_bucket.client().delete_object(Bucket=in_bucket.name, Key=video.video_file.name)
    response = alice.get(url(video), HTTP_RANGE="bytes=0-9")
    assert response.status_code == 404
    assert b"The stored file for this video is missing" in response.content


@pytest.mark.django_db
def test_the_presigned_redirect_leads_to_the_bucket_which_serves_the_bytes_and_ranges(
    alice, video, settings, in_bucket
):
    settings.VIDEO_PRESIGNED_URL_SECONDS = 60
    response = alice.get(url(video))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{in_bucket.endpoint_url}/{in_bucket.name}/{video.video_file.name}?")
    assert in_bucket.secret_key not in location

    whole = requests.get(location, timeout=10)
    assert (whole.status_code, whole.content) == (200, MP4)
    assert whole.headers["Content-Type"] == "video/mp4"
    assert whole.headers["Content-Disposition"] == f'inline; filename="lighthouse-in-a-storm-{video.pk}.mp4"'
    ranged = requests.get(location, headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert (ranged.status_code, ranged.content) == (206, MP4[1000:2000])
    assert ranged.headers["Content-Range"] == f"bytes 1000-1999/{SIZE}"


# --- Deleting --------------------------------------------------------------------------------------


def run_cancel_steps(jobs: list[VideoGeneration], django_capture_on_commit_callbacks: Any) -> None:
    """The worker's cancel_at_runway step for each job: Runway's DELETE (answered here), then the
    job's files and its row."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as runway:
        runway.add(responses.DELETE, responses.matchers.re.compile(rf"{RUNWAY}/v1/tasks/.*"), status=204)
        for job in jobs:
            job.refresh_from_db()
            with django_capture_on_commit_callbacks(execute=True):
                task_for(Step.CANCEL_AT_RUNWAY).apply(args=[job.pk, job.step], throw=True)


def finished_job_with_files(make_job, task_id: str) -> VideoGeneration:
    job = make_job(status=Status.SUCCEEDED, runway_task_id=task_id)
    job.video_file.save("done.mp4", ContentFile(MP4), save=False)
    job.poster.save("done.jpg", ContentFile(b"\xff\xd8poster\xff\xd9"), save=False)
    job.image.save("input.png", ContentFile(PNG), save=False)
    job.save()
    return job


@pytest.mark.django_db
def test_deleting_a_job_removes_its_objects_from_the_bucket(
    alice, in_bucket, make_job, broker, django_capture_on_commit_callbacks
):
    job = finished_job_with_files(make_job, "t-1")
    kept = finished_job_with_files(make_job, "t-2")
    assert len(in_bucket.object_keys()) == 6

    with django_capture_on_commit_callbacks(execute=True):
        assert alice.post(f"/videos/{job.pk}/delete/").status_code == 302
    run_cancel_steps([job], django_capture_on_commit_callbacks)

    assert not VideoGeneration.objects.filter(pk=job.pk).exists()
    assert in_bucket.object_keys() == sorted([kept.video_file.name, kept.poster.name, kept.image.name])


@pytest.mark.django_db
def test_deleting_a_user_removes_their_objects_from_the_bucket(
    user, in_bucket, make_job, broker, django_capture_on_commit_callbacks
):
    done = finished_job_with_files(make_job, "t-1")
    never_sent = make_job(status=Status.QUEUED)
    never_sent.image.save("queued.png", ContentFile(PNG), save=True)
    assert len(in_bucket.object_keys()) == 4

    with django_capture_on_commit_callbacks(execute=True):
        user.delete()
    assert in_bucket.object_keys() == sorted([done.video_file.name, done.poster.name, done.image.name])  # the worker's
    run_cancel_steps([done], django_capture_on_commit_callbacks)

    assert in_bucket.object_keys() == []
    assert not VideoGeneration.objects.exists()


# --- End to end: a worker that shares no disk with the web server -------------------------------------


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=2.0, api_key=settings.RUNWAY_API_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def worker_media(tmp_path_factory) -> Path:
    """The worker's MEDIA_ROOT, which should stay empty."""
    folder: Path = tmp_path_factory.mktemp("worker-media")
    return folder


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, simulator, bucket, worker_media) -> Iterator[Worker]:
    # The worker reads its storage from the environment when it starts: the bucket's, as on another machine.
    more = {**bucket.env, "MEDIA_ROOT": str(worker_media)}
    with running_worker(django_db_blocker, simulator, max_wait=60, **more) as worker:
        yield worker


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_a_job_with_an_image_keeps_everything_in_the_bucket_plays_from_it_and_leaves_it_when_deleted(
    client, user, worker, simulator, in_bucket, worker_media
):
    client.force_login(user)
    response = client.post("/videos/", {"prompt": "A lighthouse", "image": SimpleUploadedFile("me.png", PNG)})
    assert response.status_code == 302, response.content.decode()[:2000]

    job = worker.wait_for(VideoGeneration.objects.latest("pk").pk, lambda job: job.is_settled, seconds=60)

    assert job.status == Status.SUCCEEDED, job.message or job.last_error
    assert job.video_file and job.poster and job.image
    names = [job.video_file.name, job.poster.name, job.image.name]
    assert in_bucket.object_keys() == sorted(names)
    assert object_bytes(in_bucket, job.video_file.name) == MP4
    assert local_files(settings.MEDIA_ROOT) == local_files(worker_media) == []
    # The worker read the image from the bucket and sent it to Runway.
    [create] = [r.json for r in simulator.requests if r.method == "POST" and r.path == "/v1/image_to_video"]
    assert create["promptImage"] == "data:image/png;base64," + base64.b64encode(PNG).decode()

    played = client.get(f"/videos/{job.pk}/video.mp4", HTTP_RANGE="bytes=0-1023")
    assert (played.status_code, body(played)) == (206, MP4[:1024])
    poster = client.get(f"/videos/{job.pk}/poster.jpg")
    assert (poster.status_code, body(poster)[:2]) == (200, b"\xff\xd8")

    assert client.post(f"/videos/{job.pk}/delete/").status_code == 302
    wait_until_gone(worker, job.pk, seconds=30)  # Runway's task deleted, then the files, then the row
    assert in_bucket.object_keys() == []
    assert in_bucket.secret_key not in worker.log.read_text()


def wait_until_gone(worker: Worker, job_id: int, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while VideoGeneration.objects.filter(pk=job_id).exists():
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still there after {seconds} s; worker log:\n{worker.tail()}")
        time.sleep(0.2)
