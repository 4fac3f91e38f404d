"""Runway's official Python SDK (runwayml 5.24, a dev-only dependency) works against the simulator.

If the SDK can drive the simulator, the simulator speaks Runway's API as Runway's own client
expects it: paths, headers, bodies, statuses and errors. Every client here validates each answer
against the SDK's types (`_strict_response_validation=True`): a field missing or of the wrong type
(a task's `estimatedCost` or `cost`, say) raises APIResponseValidationError instead of passing.
"""

import secrets
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import requests
from runwayml import BadRequestError, NotFoundError, RunwayML
from runwayml.lib import polling
from runwayml.lib.polling import TaskFailedError

from runway_simulator import SAMPLE_VIDEO, ManualClock, RunwaySimulator
from videos import catalog

KEY = "key_" + secrets.token_hex(64)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def sim(clock: ManualClock) -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=20.0, max_concurrent=2, api_key=KEY, clock=clock) as simulator:
        yield simulator


def strict_client(base_url: str | None = None) -> RunwayML:
    """The SDK's client, refusing any answer that does not match its types."""
    return RunwayML(api_key=KEY, base_url=base_url, max_retries=0, _strict_response_validation=True)


@pytest.fixture
def client(sim: RunwaySimulator) -> RunwayML:
    return strict_client(sim.base_url)


@pytest.fixture
def fast_polls(clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """wait_for_task_output() sleeps 4.5-7.5 s before each poll, and times out by time.time(): its
    module's time becomes the simulator's clock, so each of its sleeps moves the clock instead."""
    monkeypatch.setattr(polling, "time", SimpleNamespace(sleep=clock.advance, time=clock.time))


def test_sdk_makes_a_video_and_its_output_downloads(
    sim: RunwaySimulator, fast_polls: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment variable the SDK documents for pointing it elsewhere.
    monkeypatch.setenv("RUNWAYML_BASE_URL", sim.base_url)
    client = strict_client()

    created = client.text_to_video.create(
        model="gen4.5", prompt_text="A serene mountain landscape at sunset", ratio="1280:720", duration=5
    )
    task = created.wait_for_task_output(timeout=120)

    assert created.estimated_cost.credits == 60  # Runway's own example answer
    assert task.status == "SUCCEEDED"
    assert task.id == created.id
    assert task.cost.credits == 60
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


def test_sdk_reads_every_state_of_a_task_with_its_estimate_then_its_cost() -> None:
    clock = ManualClock()
    with RunwaySimulator(task_seconds=10.0, max_concurrent=1, api_key=KEY, clock=clock) as sim:
        client = strict_client(sim.base_url)
        first = client.text_to_video.create(model="gen4.5", prompt_text="A calm lake", ratio="1280:720", duration=5)
        second = client.text_to_video.create(model="gen4.5", prompt_text="A calm lake", ratio="1280:720", duration=5)
        cancelled = client.text_to_video.create(
            model="veo3.1_fast", prompt_text="[sim:cancel] A calm lake", ratio="1080:1920", duration=4, seed=7
        )
        seen = [client.tasks.retrieve(first.id), client.tasks.retrieve(second.id)]
        clock.advance(5.0)
        seen.append(client.tasks.retrieve(first.id))
        clock.advance(5.0)
        seen += [client.tasks.retrieve(first.id), client.tasks.retrieve(cancelled.id)]

    assert [task.status for task in seen] == ["PENDING", "THROTTLED", "RUNNING", "SUCCEEDED", "CANCELLED"]
    assert [task.estimated_cost.credits for task in seen[:3]] == [60, 60, 60]
    # The cancel came while it ran (as from Runway's dashboard): Runway refunds no task it saw RUNNING.
    assert [task.cost.credits for task in seen[3:]] == [60, 60]


def test_sdk_fails_a_failed_task_and_reads_what_it_cost(sim: RunwaySimulator, fast_polls: None) -> None:
    client = strict_client(sim.base_url)
    internal = client.text_to_video.create(
        model="gen4.5", prompt_text="A calm lake [sim:fail]", ratio="1280:720", duration=5
    )
    moderated = client.image_to_video.create(
        model="veo3.1",
        prompt_image=[{"uri": "https://example.com/first.png", "position": "first"}],
        prompt_text="A calm lake [sim:fail=SAFETY.INPUT.TEXT]",
        ratio="1280:720",
        duration=8,
        seed=42,
    )

    failures = []
    for created in (internal, moderated):
        with pytest.raises(TaskFailedError) as caught:
            created.wait_for_task_output(timeout=120)
        failures.append(caught.value.task_details)

    assert [(f.status, f.failure_code, f.cost.credits) for f in failures] == [
        ("FAILED", "INTERNAL", 0),  # Runway-side trouble is refunded
        ("FAILED", "SAFETY.INPUT.TEXT", 320),  # moderation costs as much as a success
    ]
    assert all(f.failure for f in failures)


def test_sdk_reads_the_organization_whose_balance_pays_for_tasks() -> None:
    clock = ManualClock()
    with RunwaySimulator(max_concurrent=2, daily_limit=50, credit_balance=1000, api_key=KEY, clock=clock) as sim:
        client = strict_client(sim.base_url)
        before = client.organization.retrieve()
        client.text_to_video.create(model="veo3.1", prompt_text="A calm lake", ratio="1280:720", duration=6)
        after = client.organization.retrieve()

    assert (before.credit_balance, after.credit_balance) == (1000, 1000 - 240)
    assert after.tier.max_monthly_credit_spend > 0
    for model in catalog.MODELS:
        assert after.tier.models[model].max_concurrent_generations == 2
        assert after.tier.models[model].max_daily_generations == 50
    assert after.usage.models["veo3.1"].daily_generations == 1
    assert after.usage.models["gen4.5"].daily_generations == 0


def test_sdk_reads_the_organizations_usage_per_day_and_model_net_of_refunds() -> None:
    clock = ManualClock()  # from 2026-01-01 00:00 UTC
    with RunwaySimulator(task_seconds=10.0, api_key=KEY, clock=clock) as sim:
        client = strict_client(sim.base_url)
        client.text_to_video.create(model="veo3.1", prompt_text="A calm lake", ratio="1280:720", duration=6)
        refunded = client.text_to_video.create(model="gen4.5", prompt_text="A lake", ratio="1280:720", duration=5)
        client.tasks.delete(refunded.id)  # still PENDING: refunded
        clock.advance(24 * 3600)
        client.text_to_video.create(model="gen4.5", prompt_text="A calm lake", ratio="1280:720", duration=5)
        usage = client.organization.retrieve_usage(start_date="2026-01-01", before_date="2026-01-03")

    assert set(usage.models) == {"veo3.1", "gen4.5"}
    spent = {(str(day.date), used.model): used.amount for day in usage.results for used in day.used_credits}
    assert spent == {("2026-01-01", "veo3.1"): 240, ("2026-01-01", "gen4.5"): 0, ("2026-01-02", "gen4.5"): 60}


def test_sdk_raises_bad_request_error_on_invalid_input(client: RunwayML) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.text_to_video.create(model="gen4.5", prompt_text="A calm lake", ratio="1280:720", duration=11)

    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict)
    assert ["duration"] in [issue["path"] for issue in body["issues"]]
