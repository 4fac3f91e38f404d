"""Runway's official Python SDK (runwayml 5.24, strict validation of every answer) against our
own API: the product served by a live server, a real Celery worker, and the Runway simulator over
HTTP behind it. Our server is, to the SDK, Runway: RUNWAYML_BASE_URL=<our site> and a key of ours.
"""

import base64
import hashlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings
from runwayml import AuthenticationError, BadRequestError, NotFoundError, RateLimitError, RunwayML
from runwayml.lib import polling

import api.tasks_service
import api.v1
from api import services
from runway_simulator import RunwaySimulator
from tests.conftest import MP4, PNG
from tests.stack import Worker, running_worker, wait_until_idle
from videos.models import Origin, Status, VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]
TEXT = {"model": "gen4.5", "ratio": "1280:720", "duration": 5}


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=1.0, api_key=settings.RUNWAY_API_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, simulator) -> Iterator[Worker]:
    with running_worker(django_db_blocker, simulator, max_wait=60) as worker:
        yield worker


@pytest.fixture(autouse=True)
def idle_at_the_end(worker):
    """Each test ends once the worker has finished with its jobs (posters, deletions at Runway)."""
    yield
    wait_until_idle(worker)


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    """The SDK's wait_for_task_output polls every 4.5-7.5 s; here every half second."""
    monkeypatch.setattr(polling, "POLL_TIME", 0.5)
    monkeypatch.setattr(polling, "POLL_JITTER", 0.0)


@pytest.fixture
def key(user) -> str:
    return services.api_key_create(user=user, name="sdk").key


def sdk(live_server, key: str, **options) -> RunwayML:
    return RunwayML(api_key=key, base_url=live_server.url, _strict_response_validation=True, **options)


def creates_at_runway(simulator: RunwaySimulator, endpoint: str = "/v1/text_to_video") -> list[dict]:
    return [r.json for r in simulator.requests if r.method == "POST" and r.path == endpoint]


def test_the_sdk_makes_a_video_waits_for_it_and_downloads_our_copy(live_server, key, worker, simulator, client, user):
    before = len(creates_at_runway(simulator))

    task = sdk(live_server, key).text_to_video.create(prompt_text="A lighthouse in a storm", **TEXT)
    done = task.wait_for_task_output(timeout=60)

    job = VideoGeneration.objects.get(public_id=task.id)
    assert done.status == "SUCCEEDED" and done.id == task.id and done.cost.credits == 60
    assert job.owner == user and job.origin == Origin.API and job.status == Status.SUCCEEDED
    assert job.runway_task_id and job.runway_task_id != task.id  # Runway's id stays ours to know
    assert len(creates_at_runway(simulator)) == before + 1
    [link] = done.output
    assert link.startswith(live_server.url + "/v1/outputs/")
    downloaded = requests.get(link, timeout=10)
    assert downloaded.status_code == 200 and downloaded.headers["Content-Type"] == "video/mp4"
    assert hashlib.sha256(downloaded.content).digest() == hashlib.sha256(job.video_file.read()).digest()
    client.force_login(user)
    assert "through the API" in client.get("/videos/").content.decode()  # on the owner's dashboard


def test_an_image_uploaded_with_the_sdk_starts_a_video(live_server, key, worker, simulator):
    runway = sdk(live_server, key)
    uploaded = runway.uploads.create_ephemeral(file=("frame.png", PNG, "image/png"))

    task = runway.image_to_video.create(model="gen4_turbo", prompt_image=uploaded.uri, ratio="1280:720", duration=5)
    done = task.wait_for_task_output(timeout=60)

    assert done.status == "SUCCEEDED"
    job = VideoGeneration.objects.get(public_id=task.id)
    assert job.image.read() == PNG
    [sent] = [c for c in creates_at_runway(simulator, "/v1/image_to_video") if c.get("seed") == job.seed]
    assert sent["promptImage"].startswith("data:image/png;base64,")  # the worker sent our copy to Runway


def test_deleting_a_running_task_cancels_it_and_runway_gets_its_delete(live_server, key, worker, simulator):
    runway = sdk(live_server, key)
    task = runway.text_to_video.create(prompt_text="A long one [sim:never]", **TEXT)
    job = worker.wait_for(
        VideoGeneration.objects.get(public_id=task.id).pk, lambda j: j.status == Status.RUNNING, seconds=30
    )
    assert runway.tasks.retrieve(task.id).status == "RUNNING"

    runway.tasks.delete(task.id)

    with pytest.raises(NotFoundError):
        runway.tasks.retrieve(task.id)
    deadline = time.monotonic() + 30
    while not any(r.method == "DELETE" and r.path == f"/v1/tasks/{job.runway_task_id}" for r in simulator.requests):
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.2)


def test_the_organization_and_every_refusal_in_the_sdks_own_errors(
    live_server, key, worker, user, other_user, settings
):
    runway = sdk(live_server, key, max_retries=0)

    organization = runway.organization.retrieve()
    assert organization.credit_balance == organization.tier.max_monthly_credit_spend  # nothing spent yet
    assert organization.usage.models["gen4.5"].daily_generations == 0

    with pytest.raises(BadRequestError) as bad:
        runway.text_to_video.create(prompt_text="x", model="gen4.5", ratio="1:1", duration=5)  # type: ignore[arg-type]
    assert bad.value.body["issues"][0]["path"] == ["ratio"]
    with pytest.raises(AuthenticationError):
        sdk(live_server, "rwv_00000000_" + "x" * 43).organization.retrieve()
    theirs = services.api_key_create(user=other_user).key
    their_task = sdk(live_server, theirs).text_to_video.create(prompt_text="Theirs [sim:never]", **TEXT)
    with pytest.raises(NotFoundError):
        runway.tasks.retrieve(their_task.id)
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 0  # the live server reads the test's settings
    with pytest.raises(RateLimitError) as limited:
        runway.text_to_video.create(prompt_text="One too many", **TEXT)
    assert "in progress" in limited.value.body["error"]
    assert limited.value.response.headers["Retry-After"]
    sdk(live_server, theirs).tasks.delete(their_task.id)


@pytest.mark.parametrize("where", ["after the commit", "inside the transaction"])
def test_the_sdks_retry_of_a_create_whose_answer_was_lost_makes_no_second_job(
    live_server, key, worker, simulator, monkeypatch, where
):
    """The first attempt's answer comes after the SDK's timeout: the SDK sends the create again
    (x-stainless-retry-count: 1), and gets the task the first attempt made."""
    stalled = threading.Event()
    if where == "after the commit":
        made = api.v1.api_task_create

        def slow_answer(**kwargs):
            job = made(**kwargs)
            if not stalled.is_set():
                stalled.set()
                time.sleep(3)  # the SDK gave up after 1 s
            return job

        monkeypatch.setattr(api.v1, "api_task_create", slow_answer)
    else:
        make = api.tasks_service._made

        def slow_transaction(*args):
            job = make(*args)
            if not stalled.is_set():
                stalled.set()
                time.sleep(3)  # the key's row is locked until this commits
            return job

        monkeypatch.setattr(api.tasks_service, "_made", slow_transaction)
    before = len(creates_at_runway(simulator))

    task = sdk(live_server, key, timeout=1.0, max_retries=2).text_to_video.create(prompt_text=f"Once {where}", **TEXT)

    assert stalled.is_set()
    jobs = VideoGeneration.objects.filter(prompt=f"Once {where}")
    assert [str(job.public_id) for job in jobs] == [task.id]
    worker.wait_for(jobs[0].pk, seconds=30)
    assert len(creates_at_runway(simulator)) == before + 1


def test_runways_node_sdk_works_unchanged_with_our_url_and_key(live_server, key, worker, simulator):
    """The Node SDK configured as Runway's documentation says (RUNWAYML_BASE_URL, RUNWAYML_API_SECRET)."""
    env = {
        **os.environ,
        "RUNWAYML_BASE_URL": live_server.url,
        "RUNWAYML_API_SECRET": key,
        "TEST_PNG_BASE64": base64.b64encode(PNG).decode(),
    }
    script = Path(settings.BASE_DIR) / "tests" / "node" / "api_client.mjs"
    ran = subprocess.run(["node", str(script)], env=env, capture_output=True, text=True, timeout=120, check=False)

    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout.strip().splitlines()[-1])
    assert answer["status"] == "SUCCEEDED" and answer["downloaded"] == 200 and answer["size"] == len(MP4)
    assert answer["uri"].startswith("runway://") and answer["cost"]["credits"] == 25
    assert answer["refused"]["status"] == 400 and answer["refused"]["issues"][0]["path"] == ["ratio"]
    assert answer["afterDelete"] == 404
    [sent] = [c for c in creates_at_runway(simulator, "/v1/image_to_video") if c.get("promptText") == "From Node"]
    assert base64.b64decode(sent["promptImage"].split(",", 1)[1]) == PNG  # the uploaded frame, sent on by the worker
    deadline = time.monotonic() + 30
    while VideoGeneration.objects.filter(public_id=answer["id"]).exists():  # deleted through the worker
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.2)
