"""Runway's official Python SDK (runwayml 5.24, a dev-only dependency) works against the simulator.

If the SDK can drive the simulator, the simulator speaks Runway's API as Runway's own client
expects it: paths, headers, bodies, statuses and errors. Every client here validates each answer
against the SDK's types (`_strict_response_validation=True`): a field missing or of the wrong type
(a task's `estimatedCost` or `cost`, say) raises APIResponseValidationError instead of passing.
"""

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from runwayml import BadRequestError, NotFoundError, RunwayML
from runwayml.lib import polling
from runwayml.lib.polling import TaskFailedError

from runway_simulator import SAMPLE_VIDEO, ManualClock, RunwaySimulator, contract, validation

KEY = "key_" + secrets.token_hex(64)
# What each model of each endpoint takes, as the simulator judges it (the contract and its supplement).
ENDPOINTS: dict[str, dict[str, Any]] = validation.model_schemas(contract.load())
MODELS = sorted({model for models in ENDPOINTS.values() for model in models})
IMAGE = "https://example.com/frame.png"
VIDEO = "https://example.com/clip.mp4"
PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # Runway takes files of 512 bytes and more


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def sim(clock: ManualClock) -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=20.0, max_concurrent=2, api_key=KEY, clock=clock) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def unlimited(clock: ManualClock) -> Iterator[RunwaySimulator]:
    """A simulator with no concurrency limit, so that every task it is given starts PENDING."""
    with RunwaySimulator(task_seconds=20.0, api_key=KEY, clock=clock) as simulator:
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
    assert set(after.tier.models) == set(after.usage.models) == set(MODELS)
    for model in MODELS:
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


# -- every endpoint, every model -------------------------------------------------------------------


def test_sdk_creates_and_retrieves_a_task_on_each_video_endpoint(sim: RunwaySimulator, client: RunwayML) -> None:
    posts_before = sum(1 for r in sim.requests if r.method == "POST")
    created = [
        client.text_to_video.create(model="veo3.1_fast", prompt_text="A calm lake", ratio="1920:1080", audio=False),
        client.image_to_video.create(
            model="gen4_turbo", prompt_image=[{"uri": IMAGE, "position": "first"}], ratio="960:960", duration=5
        ),
        client.video_to_video.create(
            model="aleph2",
            video_uri=VIDEO,
            prompt_text="Make it snow",
            keyframes=[{"uri": IMAGE, "at": 0.5}],
            output_format="prores",
        ),
        client.video_upscale.create(model="magnific_video_upscaler_creative", video_uri=VIDEO, resolution="4k"),
        client.character_performance.create(
            model="act_two",
            character={"type": "image", "uri": IMAGE},
            reference={"type": "video", "uri": VIDEO},
            expression_intensity=3,
        ),
    ]
    tasks = [client.tasks.retrieve(task.id) for task in created]

    assert [task.id for task in tasks] == [task.id for task in created]
    assert {task.status for task in tasks} == {"PENDING"}
    assert [task.estimated_cost.credits for task in tasks] == [task.estimated_cost.credits for task in created]
    posts = [r for r in sim.requests if r.method == "POST"][posts_before:]
    assert [r.path for r in posts] == [
        "/v1/text_to_video",
        "/v1/image_to_video",
        "/v1/video_to_video",
        "/v1/video_upscale",
        "/v1/character_performance",
    ]
    # The SDK's keywords became Runway's wire names.
    assert posts[2].json["keyframes"] == [{"uri": IMAGE, "at": 0.5}]
    assert posts[2].json["outputFormat"] == "prores"
    assert posts[4].json["expressionIntensity"] == 3


@pytest.mark.parametrize(
    ("endpoint", "model"), [(endpoint, model) for endpoint, models in ENDPOINTS.items() for model in models]
)
def test_sdk_creates_every_model_of_every_endpoint_with_its_minimal_body(
    unlimited: RunwaySimulator, endpoint: str, model: str
) -> None:
    body = minimal(ENDPOINTS[endpoint][model])
    client = strict_client(unlimited.base_url)
    resource = getattr(client, endpoint)

    created = resource.create(**{snake_case(name): value for name, value in body.items()})
    task = client.tasks.retrieve(created.id)

    # The SDK sent exactly the wire body the contract's required fields make, and read both answers.
    [sent] = [r.json for r in unlimited.requests if r.method == "POST" and r.path == f"/v1/{endpoint}"][-1:]
    assert sent == body
    assert created.estimated_cost.credits > 0
    assert (task.id, task.status) == (created.id, "PENDING")
    assert task.estimated_cost.credits == created.estimated_cost.credits


def minimal(schema: dict[str, Any]) -> Any:
    """A sensible value of `schema` with only what it requires: the first of an enum or a union,
    the least number it allows, a URL of the right kind of file for a media URI."""
    if "anyOf" in schema:
        return minimal(schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema["type"]
    if kind == "object":
        return {name: minimal(schema["properties"][name]) for name in schema.get("required", [])}
    if kind == "array":
        return [minimal(schema["items"])]
    if "media" in schema:
        return {"image": IMAGE, "video": VIDEO, "audio": "https://example.com/voice.mp3"}[schema["media"]]
    if kind == "string":
        return "A calm lake at dawn"
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    return False if kind == "boolean" else {}


def snake_case(name: str) -> str:
    """An SDK keyword from a wire name: promptImage -> prompt_image."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda match: "_" + match.group(1).lower(), name)


# -- uploads ---------------------------------------------------------------------------------------


def test_sdk_uploads_a_file_and_its_runway_uri_makes_a_video(sim: RunwaySimulator, client: RunwayML) -> None:
    uploaded = client.uploads.create_ephemeral(file=("frame.png", PICTURE, "image/png"), file_metadata='{"take": 1}')

    created = client.image_to_video.create(
        model="gen4_turbo", prompt_image=uploaded.uri, prompt_text="A calm lake", ratio="1280:720", duration=5
    )

    assert uploaded.uri.startswith("runway://")
    assert client.tasks.retrieve(created.id).status == "PENDING"
    [stored] = [upload for upload in sim.uploads if upload.runway_uri == uploaded.uri]
    assert (stored.filename, stored.size, stored.content_type) == ("frame.png", len(PICTURE), "image/png")


def test_sdk_uploads_a_file_from_a_path(sim: RunwaySimulator, client: RunwayML, tmp_path: Path) -> None:
    clip = tmp_path / "take.mp4"
    clip.write_bytes(SAMPLE_VIDEO.read_bytes())

    uploaded = client.uploads.create_ephemeral(file=clip)
    created = client.video_to_video.create(model="aleph2", video_uri=uploaded.uri, prompt_text="Make it snow")

    assert client.tasks.retrieve(created.id).id == created.id
    [stored] = [upload for upload in sim.uploads if upload.runway_uri == uploaded.uri]
    assert (stored.filename, stored.size) == ("take.mp4", len(SAMPLE_VIDEO.read_bytes()))


def test_sdk_refuses_a_runway_uri_the_simulator_never_handed_out(client: RunwayML) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.image_to_video.create(
            model="gen4_turbo", prompt_image="runway://uploads/acf9ba3d-a513-42c9-a646-96e8bc97c691", ratio="1280:720"
        )

    body = caught.value.body
    assert isinstance(body, dict)
    assert [issue["path"] for issue in body["issues"]] == [["promptImage"]]
