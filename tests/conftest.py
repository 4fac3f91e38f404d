import base64
import io
import json
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imageio_ffmpeg  # type: ignore[import-untyped]
import pytest
import redis
from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from runway_simulator import SAMPLE_VIDEO
from tests.stack import BROKERS, Stack, stack_broker
from videos import catalog
from videos.models import Status, VideoGeneration
from videos.services import queue
from videos.tasks import task_for


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end modules first: they take most of the time, so with `-n 2` (make test) the two
    processes start on them and share out the quick tests at the end, finishing together."""
    items.sort(key=lambda item: item.get_closest_marker("stack") is None)


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts without what an earlier one cached (time estimates)."""
    cache.clear()


@pytest.fixture(autouse=True)
def queue_not_paused(monkeypatch):
    """Each test starts as if no send to the broker had failed lately (videos.services.queue)."""
    monkeypatch.setattr(queue, "_pause", queue._Pause())


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="a-long-test-password")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="another-test-password")


@pytest.fixture
def alice(client, user):
    """A test client logged in as `user`."""
    client.force_login(user)
    return client


@pytest.fixture
def media(settings, tmp_path):
    """Stored files (uploads, videos) in a folder of the test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def make_job(user) -> Callable[..., VideoGeneration]:
    """Store a job directly, in any state, for tests that start mid-way."""

    def make(**overrides: Any) -> VideoGeneration:
        fields: dict[str, Any] = {
            "owner": user,
            "prompt": "A serene mountain landscape at sunset",
            "endpoint": catalog.TEXT_TO_VIDEO,
            "model": "gen4.5",
            "ratio": "1280:720",
            "duration": 5,
            "seed": 42,
        }
        fields.update(overrides)
        fields.setdefault("prompt_folded", fields["prompt"].casefold())  # as the service stores it
        # What Runway last said of the task, as the worker would have noted it for a job in that state.
        fields.setdefault("runway_status", _RUNWAY_STATUS_OF.get(fields.get("status", Status.QUEUED), ""))
        return VideoGeneration.objects.create(**fields)

    return make


_RUNWAY_STATUS_OF = {
    Status.PENDING: "PENDING",
    Status.THROTTLED: "THROTTLED",
    Status.RUNNING: "RUNNING",
    Status.SUCCEEDED: "SUCCEEDED",
    Status.FAILED: "FAILED",
}


# The simulator's sample: a real, small MP4, for tests that download or serve a video.
MP4 = SAMPLE_VIDEO.read_bytes()


def picture(kind: str = "PNG", size: tuple[int, int] = (64, 36)) -> bytes:
    """A real image file that Pillow decodes, as a user would upload it."""
    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(out, format=kind)
    return out.getvalue()


PNG = picture("PNG")


def clip(seconds: float = 2.0, *, container: str = "mp4", large: bool = False) -> bytes:
    """A real video file that ffmpeg reads, made by ffmpeg: tiny, or (`large`) over 5 MB of noise,
    too large for a data URI, so that it goes through Runway's uploads."""
    if large:
        source, codec = f"color=c=gray:s=320x240:d={seconds}:r=15,noise=alls=80:allf=t+u", ["-qp", "2"]
    else:
        source, codec = f"testsrc=size=96x64:rate=5:duration={seconds}", []
    encoder = ["-c:v", "libvpx"] if container == "webm" else ["-c:v", "libx264", "-preset", "ultrafast", *codec]
    with tempfile.TemporaryDirectory() as folder:
        out = f"{folder}/clip.{container}"
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", source, *encoder]
        subprocess.run([*command, "-pix_fmt", "yuv420p", out], check=True, timeout=60)  # noqa: S603
        return Path(out).read_bytes()


@pytest.fixture
def stored_video() -> str:
    """A video in the test storage, as the worker would have stored it; its storage name."""
    return default_storage.save("videos/test/stored.mp4", ContentFile(MP4))


@dataclass
class QueuedTask:
    name: str
    args: list[Any]
    eta: str | None
    headers: dict[str, Any] = field(default_factory=dict)  # the message's, Celery's own among them

    def run(self) -> None:
        """Run the message's task here, as a worker would."""
        current_app.tasks[self.name].apply(args=self.args, throw=True)


def run_next_step(job: VideoGeneration) -> VideoGeneration:
    """Run the job's next step here through its task, as a worker would; return the job as it left it."""
    job.refresh_from_db()
    assert job.next_step is not None, f"job {job.pk} ({job.status}) has no next step"
    task_for(job.next_step).apply(args=[job.pk, job.step], throw=True)
    job.refresh_from_db()
    return job


CREDIT_REFRESH = "videos.tasks.refresh_credit_balance"


class Broker:
    """The real Redis behind the test broker URL, read the way the worker would see it."""

    def __init__(self, url: str, queue: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.queue = queue

    def clear(self) -> None:
        self.redis.delete(self.queue)

    def messages(self) -> list[QueuedTask]:
        """Every message waiting, oldest first."""
        found = []
        for raw in reversed(self.redis.lrange(self.queue, 0, -1)):  # oldest first
            message = json.loads(raw)
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            headers = message["headers"]
            found.append(QueuedTask(headers["task"], args, headers.get("eta"), headers))
        return found

    def tasks(self) -> list[QueuedTask]:
        """The messages of jobs' steps, oldest first; not the credit balance's refreshes, which any
        dashboard may ask for (see credit_refreshes)."""
        return [task for task in self.messages() if task.name != CREDIT_REFRESH]

    def credit_refreshes(self) -> list[QueuedTask]:
        return [task for task in self.messages() if task.name == CREDIT_REFRESH]


@pytest.fixture
def broker() -> Iterator[Broker]:
    broker = Broker(settings.CELERY_BROKER_URL, settings.CELERY_TASK_DEFAULT_QUEUE)
    broker.clear()
    yield broker
    broker.clear()


@pytest.fixture(params=BROKERS)
def stack_on_each_broker(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The processes of a test on Redis, then on RabbitMQ (a queue of the test's own)."""
    with stack_broker(request.param) as broker:
        stack = Stack(broker)
        try:
            yield stack
        finally:
            stack.stop()
