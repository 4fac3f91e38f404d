"""The whole stack: a real Celery worker, Redis, the database and the Runway simulator over HTTP."""

import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from videos.models import Status, VideoGeneration
from videos.simulator import RunwaySimulator

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(settings.BASE_DIR)
MAX_WAIT = 12  # seconds: long enough for a 2-second task, short enough to see a time-out


def database_url() -> str:
    """The URL of the test database, for the worker process."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=2.0, api_key=settings.RUNWAY_API_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def worker_log() -> Path:
    (BASE_DIR / "var").mkdir(exist_ok=True)
    return BASE_DIR / "var" / f"stack-worker-{uuid.uuid4().hex[:8]}.log"


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, simulator, worker_log) -> Iterator[subprocess.Popen]:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    with django_db_blocker.unblock():
        db_url = database_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "runway_project.settings",
        "DEBUG": "False",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "RUNWAY_API_KEY": settings.RUNWAY_API_KEY,
        "RUNWAY_API_BASE_URL": simulator.base_url,
        "RUNWAY_POLL_INTERVAL": "5",
        "RUNWAY_MAX_WAIT": str(MAX_WAIT),
        "LOG_LEVEL": "DEBUG",
    }
    command = [sys.executable, "-m", "celery", "-A", "runway_project", "worker", "--loglevel=INFO"]
    command += ["--concurrency=2", "--without-gossip", "--without-mingle", "-n", f"stack-{uuid.uuid4().hex[:8]}@%h"]
    with worker_log.open("wb") as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def wait_for(job_id: int, done: Callable[[VideoGeneration], bool], *, seconds: float, log: Path) -> VideoGeneration:
    deadline = time.monotonic() + seconds
    while True:
        job = VideoGeneration.objects.get(pk=job_id)
        if done(job):
            return job
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no worker log)"
            pytest.fail(f"job {job_id} still {job.status} after {seconds} s; worker log:\n{tail}")
        time.sleep(0.2)


def is_final(job: VideoGeneration) -> bool:
    return job.is_final


def test_a_prompt_from_the_form_becomes_a_video(client, user, worker, simulator, worker_log):
    client.force_login(user)
    creates_before = simulator.creates

    response = client.post("/videos/", {"prompt": "A serene mountain landscape at sunset"})

    assert response.status_code == 302
    job = VideoGeneration.objects.get(owner=user)
    job = wait_for(job.pk, is_final, seconds=40, log=worker_log)
    assert job.status == Status.SUCCEEDED, job.message or job.last_error
    assert job.progress == 100
    assert job.poll_count >= 1
    assert job.output_url.startswith(simulator.base_url + "/_sim/outputs/")
    assert simulator.creates - creates_before == 1
    video = requests.get(job.output_url, timeout=5)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    status = client.get(f"/videos/{job.pk}/status/").json()
    assert status["status"] == "succeeded"
    assert status["output_url"] == job.output_url


def test_the_command_waits_for_the_worker_to_finish(worker, simulator):
    out = io.StringIO()
    call_command("generate_video", "Waves rolling onto a beach", "--wait", stdout=out)
    lines = out.getvalue().strip().splitlines()
    job = VideoGeneration.objects.get(pk=int(lines[0]))
    assert job.status == Status.SUCCEEDED
    assert lines[-1] == f"#{job.pk} succeeded: {job.output_url}"


def test_a_failure_at_runway_shows_its_friendly_message(client, user, worker, worker_log):
    client.force_login(user)
    client.post("/videos/", {"prompt": "Something moderation refuses [sim:fail=SAFETY.INPUT.TEXT]"})
    job = wait_for(VideoGeneration.objects.get().pk, is_final, seconds=40, log=worker_log)
    assert job.status == Status.FAILED
    assert job.failure_code == "SAFETY.INPUT.TEXT"
    assert "content moderation declined" in client.get(f"/videos/{job.pk}/").content.decode()


def test_a_job_that_never_ends_times_out_and_is_cancelled_at_runway(client, user, worker, simulator, worker_log):
    client.force_login(user)
    deletes_before = simulator.deletes
    client.post("/videos/", {"prompt": "An endless river [sim:never]"})
    job = wait_for(VideoGeneration.objects.get().pk, is_final, seconds=MAX_WAIT + 30, log=worker_log)

    assert job.status == Status.TIMED_OUT
    assert job.message == f"Video generation timed out after {MAX_WAIT} seconds"
    job = wait_for(job.pk, lambda j: not j.cancel_pending, seconds=20, log=worker_log)
    assert simulator.deletes - deletes_before == 1
    gone = requests.get(
        f"{simulator.base_url}/v1/tasks/{job.runway_task_id}",
        headers={"Authorization": f"Bearer {settings.RUNWAY_API_KEY}", "X-Runway-Version": "2024-11-06"},
        timeout=5,
    )
    assert gone.status_code == 404


def test_the_worker_log_never_shows_the_api_key(worker, worker_log):
    text = worker_log.read_text(errors="replace")
    assert "Runway GET /v1/tasks/" in text  # the log did record the calls...
    assert settings.RUNWAY_API_KEY not in text  # ...without the key
