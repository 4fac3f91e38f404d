"""Runway's official Python SDK (runwayml, a dev-only dependency) works against the simulator.

If the SDK can drive the simulator, the simulator speaks Runway's API as Runway's own client
expects it: paths, headers, bodies, statuses and errors.
"""

import secrets
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import requests
from runwayml import BadRequestError, NotFoundError, RunwayML
from runwayml.lib import polling

from runway_simulator import SAMPLE_VIDEO, ManualClock, RunwaySimulator

KEY = "key_" + secrets.token_hex(64)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def sim(clock: ManualClock) -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=20.0, max_concurrent=2, api_key=KEY, clock=clock) as simulator:
        yield simulator


@pytest.fixture
def client(sim: RunwaySimulator) -> RunwayML:
    return RunwayML(api_key=KEY, base_url=sim.base_url, max_retries=0)


def test_sdk_makes_a_video_and_its_output_downloads(
    sim: RunwaySimulator, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment variable the SDK documents for pointing it elsewhere.
    monkeypatch.setenv("RUNWAYML_BASE_URL", sim.base_url)
    # wait_for_task_output() sleeps 4.5-7.5 s before each poll, and times out by time.time(): its
    # module's time is the simulator's clock here, so each of its sleeps moves the clock instead.
    monkeypatch.setattr(polling, "time", SimpleNamespace(sleep=clock.advance, time=clock.time))
    client = RunwayML(api_key=KEY)

    created = client.text_to_video.create(
        model="gen4.5", prompt_text="A serene mountain landscape at sunset", ratio="1280:720", duration=5
    )
    task = created.wait_for_task_output(timeout=120)

    assert task.status == "SUCCEEDED"
    assert task.id == created.id
    polls = [r for r in sim.requests if r.method == "GET" and r.path == f"/v1/tasks/{created.id}"]
    assert len(polls) >= 3  # a 20-second task, polled about every 6 s: it saw the task before its end
    [url] = task.output
    assert url.startswith(sim.base_url)
    video = requests.get(url, timeout=5)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert video.content == SAMPLE_VIDEO.read_bytes()


def test_sdk_deletes_a_task_then_retrieving_it_raises_not_found(client: RunwayML) -> None:
    created = client.text_to_video.create(model="gen4.5", prompt_text="A calm lake", ratio="720:1280", duration=2)
    assert client.tasks.retrieve(created.id).id == created.id

    client.tasks.delete(created.id)

    with pytest.raises(NotFoundError):
        client.tasks.retrieve(created.id)


def test_sdk_reads_a_throttled_task() -> None:
    with RunwaySimulator(max_concurrent=1, api_key=KEY, clock=ManualClock()) as sim:
        client = RunwayML(api_key=KEY, base_url=sim.base_url, max_retries=0)
        first = client.text_to_video.create(model="gen4.5", prompt_text="A calm lake", ratio="1280:720", duration=5)
        second = client.text_to_video.create(model="gen4.5", prompt_text="A calm lake", ratio="1280:720", duration=5)

        assert client.tasks.retrieve(first.id).status == "PENDING"
        assert client.tasks.retrieve(second.id).status == "THROTTLED"


def test_sdk_reads_the_organization(client: RunwayML) -> None:
    organization = client.organization.retrieve()

    assert isinstance(organization.credit_balance, int)
    assert organization.tier.models["gen4.5"].max_concurrent_generations == 2
    assert organization.tier.models["gen4.5"].max_daily_generations == 200
    assert organization.usage.models["gen4.5"].daily_generations >= 0


def test_sdk_raises_bad_request_error_on_invalid_input(client: RunwayML) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.text_to_video.create(model="gen4.5", prompt_text="A calm lake", ratio="1280:720", duration=11)

    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict)
    assert ["duration"] in [issue["path"] for issue in body["issues"]]
