"""The whole stack: a real Celery worker, Redis, the database and the Runway simulator over HTTP."""

import io
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings
from django.core.management import call_command

from runway_simulator import API_VERSION, RunwaySimulator
from tests.stack import Worker, running_worker
from videos.models import SpendEntry, Status, VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

# Seconds: a 2-second task is done by its first poll (5 s after its create), and the task that never
# ends times out at that poll. The shortest wait the settings allow, so the time-out test is quick.
MAX_WAIT = 5
RUNWAY_HEADERS = {"Authorization": f"Bearer {settings.RUNWAY_API_KEY}", "X-Runway-Version": API_VERSION}


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=2.0, api_key=settings.RUNWAY_API_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, simulator) -> Iterator[Worker]:
    with running_worker(django_db_blocker, simulator, max_wait=MAX_WAIT) as worker:
        yield worker


def test_a_prompt_from_the_form_becomes_a_video(client, user, worker, simulator):
    client.force_login(user)
    creates_before = simulator.creates

    response = client.post("/videos/", {"prompt": "A serene mountain landscape at sunset"})

    assert response.status_code == 302
    job = VideoGeneration.objects.get(owner=user)
    job = worker.wait_for(job.pk, seconds=40)
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
    assert status["output_url"] == f"/videos/{job.pk}/video.mp4"
    # Our own copy, the same bytes as Runway's.
    assert b"".join(client.get(status["output_url"]).streaming_content) == video.content


def test_what_runway_billed_is_what_the_ledger_and_the_page_say(client, user, worker, simulator):
    client.force_login(user)
    balance_before = requests.get(f"{simulator.base_url}/v1/organization", headers=RUNWAY_HEADERS, timeout=5).json()[
        "creditBalance"
    ]

    client.post("/videos/", {"prompt": "A lighthouse in a storm", "model": "gen4.5", "duration": "8"})
    job = worker.wait_for(VideoGeneration.objects.get(owner=user).pk, seconds=40)

    assert job.status == Status.SUCCEEDED, job.message or job.last_error
    billed = requests.get(f"{simulator.base_url}/v1/organization", headers=RUNWAY_HEADERS, timeout=5).json()
    charged = balance_before - billed["creditBalance"]
    assert charged == 96  # 8 s of Gen-4.5 at 12 credits a second
    entries = SpendEntry.objects.filter(generation_number=job.pk)
    assert entries.credits() == charged
    assert sorted(entries.values_list("kind", flat=True)) == ["estimate", "final", "reserved"]
    assert client.get(f"/videos/{job.pk}/status/").json()["cost"] == {"credits": 96, "final": True}


def test_twenty_generations_submitted_at_once_all_succeed(client, user, worker, simulator, settings):
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 20
    client.force_login(user)
    creates_before = simulator.creates
    for i in range(20):
        assert client.post("/videos/", {"prompt": f"Scene number {i}"}).status_code == 302

    jobs = [worker.wait_for(pk, seconds=60) for pk in VideoGeneration.objects.values_list("pk", flat=True)]

    assert len(jobs) == 20
    assert {job.status for job in jobs} == {Status.SUCCEEDED}
    assert len({job.runway_task_id for job in jobs}) == 20
    assert simulator.creates - creates_before == 20


def test_the_command_waits_for_the_worker_to_finish(worker, simulator, admin_user):
    out = io.StringIO()
    call_command("generate_video", "Waves rolling onto a beach", "--wait", stdout=out)
    lines = out.getvalue().strip().splitlines()
    job = VideoGeneration.objects.get(pk=int(lines[0]))
    assert job.status == Status.SUCCEEDED
    assert lines[-1] == f"#{job.pk} succeeded: {job.video_file.path}"


def test_a_failure_at_runway_shows_its_friendly_message(client, user, worker):
    client.force_login(user)
    client.post("/videos/", {"prompt": "Something moderation refuses [sim:fail=SAFETY.INPUT.TEXT]"})
    job = worker.wait_for(VideoGeneration.objects.get().pk, seconds=40)
    assert job.status == Status.FAILED
    assert job.failure_code == "SAFETY.INPUT.TEXT"
    assert "content moderation declined" in client.get(f"/videos/{job.pk}/").content.decode()


def test_a_job_that_never_ends_times_out_and_is_cancelled_at_runway(client, user, worker, simulator):
    client.force_login(user)
    deletes_before = simulator.deletes
    client.post("/videos/", {"prompt": "An endless river [sim:never]"})
    job = worker.wait_for(VideoGeneration.objects.get().pk, seconds=MAX_WAIT + 30)

    assert job.status == Status.TIMED_OUT
    assert job.message == f"Video generation timed out after {MAX_WAIT} seconds at Runway"
    job = worker.wait_for(job.pk, lambda j: not j.cancel_pending, seconds=20)
    assert simulator.deletes - deletes_before == 1
    gone = requests.get(
        f"{simulator.base_url}/v1/tasks/{job.runway_task_id}",
        headers={"Authorization": f"Bearer {settings.RUNWAY_API_KEY}", "X-Runway-Version": API_VERSION},
        timeout=5,
    )
    assert gone.status_code == 404


def test_the_worker_log_never_shows_the_api_key(worker):
    text = worker.log.read_text(errors="replace")
    assert "Runway GET /v1/tasks/" in text  # the log did record the calls...
    assert settings.RUNWAY_API_KEY not in text  # ...without the key
