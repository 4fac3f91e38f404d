"""The Runway simulator over real HTTP: headers, validation, task life, outputs, limits, directives.

Each simulator runs on a ManualClock: a test moves time with advance() instead of sleeping, so
what a task says at each moment of its life is exact.
"""

import dataclasses
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import requests

from runway_simulator import SAMPLE_VIDEO, ManualClock, RunwaySimulator, SimulatorOptions, contract
from runway_simulator.options import SimulatorSettings

VERSION = "2024-11-06"
KEY = "key_" + secrets.token_hex(64)
TIMEOUT = 5.0
DAY = 24 * 3600.0
SEED_MAX = 4_294_967_295  # runway-api.md: a seed is from 0 to 4294967295
CONTRACT_MODELS = sorted({model for models in contract.load()["endpoints"].values() for model in models})

T = TypeVar("T")


@pytest.fixture(scope="module")
def shared_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def sim(shared_clock: ManualClock) -> Iterator[RunwaySimulator]:
    """One simulator for the tests that need no options of their own."""
    with RunwaySimulator(clock=shared_clock) as simulator:
        yield simulator


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def call(method: str, url: str, **kwargs: Any) -> requests.Response:
    """A request with a timeout, so a hung simulator fails the test instead of hanging it."""
    return requests.request(method, url, timeout=TIMEOUT, **kwargs)


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-Runway-Version": VERSION}


def text_body(**overrides: Any) -> dict[str, Any]:
    return {"model": "gen4.5", "promptText": "A calm lake at dawn", "ratio": "1280:720", "duration": 5, **overrides}


def image_body(prompt_image: Any, **overrides: Any) -> dict[str, Any]:
    return {"model": "gen4_turbo", "ratio": "1280:720", "duration": 5, "promptImage": prompt_image, **overrides}


def post(sim: RunwaySimulator, endpoint: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    return call("POST", f"{sim.base_url}/v1/{endpoint}", json=body, headers=auth() if headers is None else headers)


def create(sim: RunwaySimulator, **overrides: Any) -> str:
    response = post(sim, "text_to_video", text_body(**overrides))
    assert response.status_code == 200, response.text
    return response.json()["id"]


def get_task(sim: RunwaySimulator, task_id: str) -> requests.Response:
    return call("GET", f"{sim.base_url}/v1/tasks/{task_id}", headers=auth())


def state(sim: RunwaySimulator, task_id: str) -> dict[str, Any]:
    response = get_task(sim, task_id)
    assert response.status_code == 200, response.text
    return response.json()


def statuses(sim: RunwaySimulator, task_ids: list[str]) -> list[str]:
    return [state(sim, task_id)["status"] for task_id in task_ids]


def delete(sim: RunwaySimulator, task_id: str) -> requests.Response:
    return call("DELETE", f"{sim.base_url}/v1/tasks/{task_id}", headers=auth())


def in_thread(target: Callable[[], T]) -> tuple[threading.Thread, list[T]]:
    """Run `target` in a daemon thread; its result lands in the list."""
    results: list[T] = []
    thread = threading.Thread(target=lambda: results.append(target()), daemon=True)
    thread.start()
    return thread, results


# -- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Runway-Version": VERSION},
        {"Authorization": "Bearer ", "X-Runway-Version": VERSION},
        {"Authorization": "Bearer key_abc", "X-Runway-Version": VERSION},
        {"Authorization": "Bearer " + KEY.upper(), "X-Runway-Version": VERSION},
        {"Authorization": "Basic " + KEY[4:], "X-Runway-Version": VERSION},
    ],
    ids=["missing", "empty", "short", "uppercase", "not-bearer"],
)
def test_missing_or_malformed_key_is_401(sim: RunwaySimulator, headers: dict[str, str]) -> None:
    response = call("GET", f"{sim.base_url}/v1/organization", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]


@pytest.mark.parametrize("version", [None, "2024-09-13", ""])
def test_missing_or_wrong_version_is_400(sim: RunwaySimulator, version: str | None) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    if version is not None:
        headers["X-Runway-Version"] = version

    response = call("GET", f"{sim.base_url}/v1/organization", headers=headers)

    assert response.status_code == 400
    assert "X-Runway-Version" in response.json()["error"]


def test_configured_key_is_the_only_one_accepted() -> None:
    own_key = "key_" + secrets.token_hex(64)
    with RunwaySimulator(api_key=own_key) as sim:
        other = call("GET", f"{sim.base_url}/v1/organization", headers=auth())
        own = call("GET", f"{sim.base_url}/v1/organization", headers=auth(own_key))

    assert other.status_code == 401
    assert own.status_code == 200


def test_unknown_paths_are_404_json(sim: RunwaySimulator) -> None:
    api = call("GET", f"{sim.base_url}/v1/generate", headers=auth())
    elsewhere = call("GET", f"{sim.base_url}/favicon.ico")

    for response in (api, elsewhere):
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/text_to_video", "POST"),
        ("PUT", "/v1/image_to_video", "POST"),
        ("POST", "/v1/tasks/acf9ba3d-a513-42c9-a646-96e8bc97c691", "GET, DELETE"),
        ("PATCH", "/v1/tasks/acf9ba3d-a513-42c9-a646-96e8bc97c691", "GET, DELETE"),
        ("DELETE", "/v1/organization", "GET"),
    ],
)
def test_a_wrong_method_on_a_known_path_is_405_with_allow(
    sim: RunwaySimulator, method: str, path: str, allowed: str
) -> None:
    creates, deletes = sim.creates, sim.deletes

    response = call(method, sim.base_url + path, headers=auth(), json={})

    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.headers["Content-Type"] == "application/json"
    assert method in response.json()["error"]
    assert (sim.creates, sim.deletes) == (creates, deletes)


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "path"),
    [
        ("text_to_video", text_body(model="gen4_turbo"), ["model"]),
        ("text_to_video", text_body(model="gen9"), ["model"]),
        ("text_to_video", {k: v for k, v in text_body().items() if k != "model"}, ["model"]),
        ("text_to_video", text_body(promptText=""), ["promptText"]),
        ("text_to_video", text_body(promptText="a" * 999 + "🎬"), ["promptText"]),
        ("text_to_video", text_body(promptText=42), ["promptText"]),
        ("text_to_video", text_body(ratio="1104:832"), ["ratio"]),
        ("text_to_video", text_body(duration=11), ["duration"]),
        ("text_to_video", text_body(duration="5"), ["duration"]),
        ("text_to_video", text_body(duration=True), ["duration"]),
        ("text_to_video", text_body(seed=-1), ["seed"]),
        ("text_to_video", text_body(model="veo3.1", duration=4, seed=SEED_MAX + 1), ["seed"]),
        ("text_to_video", text_body(promptImage="https://example.com/a.png"), []),
        ("text_to_video", text_body(promptText="A lake [sim:explode]"), ["promptText"]),
        ("text_to_video", text_body(promptText="A lake [sim:never=1]"), ["promptText"]),
        ("text_to_video", text_body(promptText="A lake [sim:status]"), ["promptText"]),
        ("text_to_video", text_body(promptText="A lake [sim:throttle=soon]"), ["promptText"]),
        ("image_to_video", text_body(model="gen4_turbo"), ["promptImage"]),
        ("image_to_video", image_body("https://example.com/a.png", duration=11), ["duration"]),
        ("image_to_video", text_body(model="gen4_turbo", promptImage="http://example.com/a.png"), ["promptImage"]),
        ("image_to_video", text_body(model="gen4_turbo", promptImage="data:image/gif;base64,R0lG"), ["promptImage"]),
        ("image_to_video", image_body("https://192.168.1.10/a.png"), ["promptImage"]),
        ("image_to_video", image_body("https://[::1]/a.png"), ["promptImage"]),
        ("image_to_video", image_body("https://localhost/a.png"), ["promptImage"]),
        ("image_to_video", image_body("https://cdn.localhost/a.png"), ["promptImage"]),
        ("image_to_video", image_body("https://intranet/a.png"), ["promptImage"]),
        ("image_to_video", image_body("https:///a.png"), ["promptImage"]),
        ("image_to_video", image_body("https://example.com/" + "a" * 2029), ["promptImage"]),
        ("image_to_video", image_body("data:image/png;base64,not base64!"), ["promptImage"]),
        ("image_to_video", image_body("data:image/png;base64,"), ["promptImage"]),
        ("image_to_video", image_body("data:image/png;base64," + "A" * (5 * 1024 * 1024)), ["promptImage"]),
        (
            "image_to_video",
            image_body([{"uri": "https://example.com/a.png", "position": "last"}]),
            ["promptImage", 0, "position"],
        ),
        ("text_to_video", text_body(model="veo3.1", duration=4, audio="yes"), ["audio"]),
        ("text_to_video", text_body(model="veo3.1", duration=4, negativePrompt=5), ["negativePrompt"]),
        (
            "text_to_video",
            text_body(contentModeration={"publicFigureThreshold": "none"}),
            ["contentModeration", "publicFigureThreshold"],
        ),
        ("text_to_video", text_body(contentModeration={"other": "low"}), ["contentModeration"]),
        ("text_to_video", text_body(contentModeration="low"), ["contentModeration"]),
    ],
    ids=[
        "image-model-on-text",
        "unknown-model",
        "no-model",
        "empty-prompt",
        "1001-utf16-units",
        "prompt-not-string",
        "ratio",
        "duration-range",
        "duration-string",
        "duration-bool",
        "seed-range",
        "seed-range-on-veo",
        "image-on-text",
        "unknown-directive",
        "directive-with-a-value-it-does-not-take",
        "directive-without-the-value-it-needs",
        "throttle-not-seconds",
        "image-missing",
        "gen4-turbo-duration-range",
        "image-not-https",
        "image-gif",
        "image-url-ipv4",
        "image-url-ipv6",
        "image-url-localhost",
        "image-url-under-localhost",
        "image-url-no-domain",
        "image-url-no-host",
        "image-url-2049-characters",
        "data-uri-not-base64",
        "data-uri-empty",
        "data-uri-over-5-mib",
        "gen4-last-frame",
        "audio-not-boolean",
        "negative-prompt-not-string",
        "moderation-threshold",
        "moderation-unknown-setting",
        "moderation-not-object",
    ],
)
def test_invalid_create_is_400_with_runway_issues(
    sim: RunwaySimulator, endpoint: str, body: dict[str, Any], path: list[str | int]
) -> None:
    creates = sim.creates

    response = post(sim, endpoint, body)

    assert response.status_code == 400
    answer = response.json()
    assert set(answer) == {"error", "issues", "docUrl"}
    assert all(isinstance(issue["message"], str) and issue["message"] for issue in answer["issues"])
    assert path in [issue["path"] for issue in answer["issues"]]
    assert sim.creates == creates


def test_body_that_is_not_a_json_object_is_400(sim: RunwaySimulator) -> None:
    headers = {**auth(), "Content-Type": "application/json"}

    response = call("POST", f"{sim.base_url}/v1/text_to_video", data=b"{not json", headers=headers)

    assert response.status_code == 400
    assert response.json()["issues"][0]["path"] == []


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("text_to_video", text_body(promptText="a" * 998 + "🎬", seed=SEED_MAX)),
        ("text_to_video", text_body(model="veo3.1_fast", ratio="1080:1920", duration=8)),
        ("image_to_video", text_body(model="gen4_turbo", ratio="960:960", promptImage="https://example.com/a.png")),
        (
            "image_to_video",
            {
                "model": "gen4_turbo",
                "ratio": "1280:720",
                "promptImage": [{"uri": "data:image/png;base64,iVBORw0KGgo=", "position": "first"}],
            },
        ),
        (
            "image_to_video",
            {
                "model": "veo3.1",
                "ratio": "1080:1920",
                "duration": 6,
                "seed": 9,
                "audio": False,
                "negativePrompt": "rain",
                "promptText": "A calm lake",
                "promptImage": [
                    {"uri": "https://example.com/a.png", "position": "first"},
                    {"uri": "https://images.example.com/b.webp", "position": "last"},
                ],
            },
        ),
        ("text_to_video", text_body(contentModeration={"publicFigureThreshold": "low"})),
        ("image_to_video", image_body("https://example.com/" + "a" * 2028)),
        ("image_to_video", image_body("data:image/png;base64,iVBORw0KGgo=")),
    ],
    ids=[
        "1000-utf16-units",
        "veo",
        "gen4-turbo-url",
        "gen4-turbo-list",
        "veo-every-field",
        "gen4.5-moderation",
        "url-of-2048-characters",
        "data-uri",
    ],
)
def test_valid_create_answers_a_uuid(sim: RunwaySimulator, endpoint: str, body: dict[str, Any]) -> None:
    creates = sim.creates

    response = post(sim, endpoint, body)

    assert response.status_code == 200, response.text
    assert uuid.UUID(response.json()["id"]).version == 4
    assert sim.creates == creates + 1


@pytest.mark.parametrize(
    ("body", "unknown"),
    [
        (text_body(sedd=42), "'sedd'"),
        (text_body(audio=False), "'audio'"),  # a Veo field, not Gen-4.5's
        (text_body(model="veo3.1", duration=4, contentModeration={}), "'contentModeration'"),
        (text_body(model="veo3.1", duration=4, outputFormat="prores"), "'outputFormat'"),  # Gen-4.5's and Aleph's
        (text_body(prompt="A lake", extra=1), "'prompt', 'extra'"),
    ],
    ids=["misspelt-seed", "audio-on-gen4.5", "moderation-on-veo", "output-format", "two"],
)
def test_a_field_the_model_does_not_take_is_400_and_creates_nothing(
    sim: RunwaySimulator, body: dict[str, Any], unknown: str
) -> None:
    creates = sim.creates

    response = post(sim, "text_to_video", body)

    assert response.status_code == 400
    assert response.json()["issues"] == [{"path": [], "message": f"Unrecognized key(s) in object: {unknown}"}]
    assert sim.creates == creates


def test_requests_are_recorded(sim: RunwaySimulator) -> None:
    body = text_body(seed=7)

    post(sim, "text_to_video", body)

    record = sim.requests[-1]
    assert (record.method, record.path, record.json) == ("POST", "/v1/text_to_video", body)
    assert record.headers["X-Runway-Version"] == VERSION


# -- task life -----------------------------------------------------------------------------------


def test_task_goes_pending_running_succeeded() -> None:
    clock = ManualClock(start=datetime(2026, 8, 26, 6, 30, 33, tzinfo=UTC).timestamp())
    with RunwaySimulator(task_seconds=10.0, pending_seconds=2.0, clock=clock) as sim:
        clock.advance(0.25)
        task_id = create(sim)
        seen = [state(sim, task_id)]
        # Whole binary fractions of a second, so that each age is exact.
        for seconds in (1.75, 0.25, 4.0, 3.96875, 0.03125, 100.0):
            clock.advance(seconds)
            seen.append(state(sim, task_id))
        base_url = sim.base_url

    assert [(s["status"], s.get("progress")) for s in seen] == [
        ("PENDING", None),
        ("PENDING", None),
        ("RUNNING", 0.0),
        ("RUNNING", 0.5),
        ("RUNNING", 0.99),  # never 1 before it ends
        ("SUCCEEDED", None),
        ("SUCCEEDED", None),
    ]
    assert {s["id"] for s in seen} == {task_id}
    assert {s["createdAt"] for s in seen} == {"2026-08-26T06:30:33.250Z"}  # the clock's time at creation
    assert all("output" not in s for s in seen[:-2])
    [url] = seen[-1]["output"]
    assert url.startswith(base_url + "/_sim/outputs/") and "_jwt=" in url


def test_output_downloads_until_its_url_expires_and_a_new_get_mints_a_fresh_one(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=1.0, pending_seconds=0.0, output_ttl=60.0, clock=clock) as sim:
        task_id = create(sim)
        clock.advance(1.0)
        [url] = state(sim, task_id)["output"]
        fresh = call("GET", url)
        head = call("HEAD", url)
        clock.advance(59.0)
        last_moment = call("GET", url)
        clock.advance(1.0)
        late = call("GET", url)
        [new_url] = state(sim, task_id)["output"]
        renewed = call("GET", new_url)

    assert fresh.status_code == 200
    assert fresh.headers["Content-Type"] == "video/mp4"
    assert fresh.content
    assert head.status_code == 200 and not head.content
    assert head.headers["Content-Length"] == str(len(fresh.content))
    assert last_moment.status_code == 200
    assert late.status_code == 403
    assert late.json()["error"] == "This URL has expired."
    assert new_url != url
    assert renewed.status_code == 200


def test_delete_answers_204_then_task_is_gone(sim: RunwaySimulator) -> None:
    task_id = create(sim)
    deletes = sim.deletes

    deleted = delete(sim, task_id)
    after = get_task(sim, task_id)
    again = delete(sim, task_id)

    assert deleted.status_code == 204 and deleted.content == b""
    assert after.status_code == 404
    assert again.status_code == 404
    assert sim.deletes == deletes + 1


def test_unknown_task_is_404(sim: RunwaySimulator) -> None:
    assert get_task(sim, str(uuid.uuid4())).status_code == 404


def test_organization_lists_every_model_of_the_contract(sim: RunwaySimulator) -> None:
    response = call("GET", f"{sim.base_url}/v1/organization", headers=auth())

    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["creditBalance"], int)
    assert isinstance(body["tier"]["maxMonthlyCreditSpend"], int)
    assert set(body["tier"]["models"]) == set(body["usage"]["models"]) == set(CONTRACT_MODELS)
    for model in CONTRACT_MODELS:
        limits = body["tier"]["models"][model]
        # Runway answers null for "no limit", which is the simulator's default.
        assert limits["maxConcurrentGenerations"] is None
        assert isinstance(limits["maxDailyGenerations"], int)
        assert isinstance(body["usage"]["models"][model]["dailyGenerations"], int)


def test_organization_reports_the_configured_limits() -> None:
    with RunwaySimulator(max_concurrent=3, daily_limit=50) as sim:
        body = call("GET", f"{sim.base_url}/v1/organization", headers=auth()).json()

    for model in CONTRACT_MODELS:
        assert body["tier"]["models"][model] == {"maxConcurrentGenerations": 3, "maxDailyGenerations": 50}


def test_organization_usage_counts_each_models_creates_of_the_last_24_hours(clock: ManualClock) -> None:
    with RunwaySimulator(max_concurrent=1, daily_limit=3, clock=clock) as sim:
        create(sim)
        clock.advance(DAY / 2)
        create(sim)
        create(sim, model="veo3.1", duration=4)
        deleted = create(sim)
        delete(sim, deleted)  # deleting a task does not give back its place in the day's count
        first = call("GET", f"{sim.base_url}/v1/organization", headers=auth()).json()
        refused = post(sim, "text_to_video", text_body())
        clock.advance(DAY / 2)
        second = call("GET", f"{sim.base_url}/v1/organization", headers=auth()).json()

    counts = [{m: o["usage"]["models"][m]["dailyGenerations"] for m in ("gen4.5", "veo3.1")} for o in (first, second)]
    assert counts == [{"gen4.5": 3, "veo3.1": 1}, {"gen4.5": 2, "veo3.1": 1}]
    assert refused.status_code == 429  # at maxDailyGenerations for gen4.5
    assert first["tier"]["models"]["gen4.5"] == {"maxConcurrentGenerations": 1, "maxDailyGenerations": 3}


def test_ends_at_is_on_the_simulators_clock(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=10.0, max_concurrent=1, clock=clock) as sim:
        clock.advance(5.0)
        first, second, stuck = (
            create(sim),
            create(sim),
            create(sim, model="veo3.1", duration=4, promptText="[sim:never]"),
        )
        before = [sim.ends_at(task_id) for task_id in (first, second, stuck)]
        clock.advance(10.0)
        after = [sim.ends_at(task_id) for task_id in (first, second, stuck)]

    assert before == [15.0, None, None]  # the second waits for a slot; the third never ends
    assert after == [15.0, 25.0, None]
    assert sim.ends_at(str(uuid.uuid4())) is None


# -- outputs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def output_url(sim: RunwaySimulator, shared_clock: ManualClock) -> str:
    task_id = create(sim)
    shared_clock.advance(sim.options.task_seconds)
    return state(sim, task_id)["output"][0]


def test_output_is_the_sample_mp4(output_url: str) -> None:
    response = call("GET", output_url)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Length"] == str(len(response.content))
    assert response.content == SAMPLE_VIDEO.read_bytes()
    # An ISO media file opens with its "ftyp" box: 4 bytes of size, then the type.
    assert response.content[4:8] == b"ftyp"
    assert int.from_bytes(response.content[:4], "big") >= 16
    assert 10_000 < len(response.content) < 200_000


def test_output_with_bad_token_is_403(output_url: str) -> None:
    task_id = output_url.split("/")[-1].split(".mp4")[0]

    tampered = call("GET", output_url[:-1] + ("0" if output_url[-1] != "0" else "1"))
    other_task = call("GET", output_url.replace(task_id, str(uuid.uuid4())))
    no_token = call("GET", output_url.split("?")[0])

    assert call("GET", output_url).status_code == 200
    assert [r.status_code for r in (tampered, other_task, no_token)] == [403, 403, 403]
    assert {r.json()["error"] for r in (tampered, other_task, no_token)} == {"Invalid signature."}


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", -50, None), ("bytes=10-99999999", 10, None)],
    ids=["closed", "open-ended", "suffix", "past-the-end"],
)
def test_output_answers_a_range_with_206(output_url: str, header: str, first: int, last: int | None) -> None:
    video = SAMPLE_VIDEO.read_bytes()
    expected = video[first : None if last is None else last + 1]
    start = first % len(video)

    response = call("GET", output_url, headers={"Range": header})

    assert response.status_code == 206
    assert response.content == expected
    assert response.headers["Content-Length"] == str(len(expected))
    assert response.headers["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{len(video)}"
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes=-0"], ids=["past-the-end", "empty-suffix"])
def test_output_range_past_the_end_is_416(output_url: str, header: str) -> None:
    size = len(SAMPLE_VIDEO.read_bytes())

    response = call("GET", output_url, headers={"Range": header.format(size=size)})

    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize("header", ["bytes=0-9,20-29", "bytes=9-0", "items=0-9", "bytes=-"])
def test_output_ignores_a_range_it_does_not_serve(output_url: str, header: str) -> None:
    response = call("GET", output_url, headers={"Range": header})

    assert response.status_code == 200
    assert response.content == SAMPLE_VIDEO.read_bytes()


def test_output_head_with_range_has_headers_only(output_url: str) -> None:
    response = call("HEAD", output_url, headers={"Range": "bytes=0-9"})

    assert response.status_code == 206
    assert response.headers["Content-Length"] == "10"
    assert response.headers["Content-Range"].startswith("bytes 0-9/")
    assert not response.content


# -- directives ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directive", "code"), [("[sim:fail=SAFETY.INPUT.TEXT]", "SAFETY.INPUT.TEXT"), ("[sim:fail]", "INTERNAL")]
)
def test_fail_directive_ends_failed_with_code(clock: ManualClock, directive: str, code: str) -> None:
    with RunwaySimulator(task_seconds=10.0, clock=clock) as sim:
        task_id = create(sim, promptText=f"A lake {directive}")
        clock.advance(9.5)
        before = state(sim, task_id)
        clock.advance(0.5)
        final = state(sim, task_id)

    assert before["status"] == "RUNNING"
    assert final["status"] == "FAILED"
    assert final["failureCode"] == code
    assert final["failure"]
    assert "output" not in final


@pytest.mark.parametrize(("directive", "throttled_for"), [("[sim:throttle=30]", 30.0), ("[sim:throttle]", 10.0)])
def test_throttle_directive_starts_throttled_then_lives_its_life(
    clock: ManualClock, directive: str, throttled_for: float
) -> None:
    with RunwaySimulator(task_seconds=10.0, pending_seconds=2.0, clock=clock) as sim:
        task_id = create(sim, promptText=f"A lake {directive}")
        seen = [state(sim, task_id)["status"]]
        for seconds in (throttled_for - 0.5, 0.5, 2.0, 8.0):
            clock.advance(seconds)
            seen.append(state(sim, task_id)["status"])

    assert seen == ["THROTTLED", "THROTTLED", "PENDING", "RUNNING", "SUCCEEDED"]


def test_cancel_directive_ends_cancelled(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=10.0, clock=clock) as sim:
        task_id = create(sim, promptText="[sim:cancel] A lake")
        clock.advance(10.0)
        final = state(sim, task_id)

    assert (final["status"], set(final)) == ("CANCELLED", {"id", "createdAt", "status", "cost"})
    # Cancelled as if from Runway's dashboard while it ran: Runway refunds no task it saw RUNNING.
    assert final["cost"] == {"credits": 60}


def test_status_directive_reports_unknown_status_then_succeeds(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=10.0, pending_seconds=2.0, clock=clock) as sim:
        task_id = create(sim, promptText="A lake [sim:status=WARMING_UP]")
        seen = [state(sim, task_id)]
        for seconds in (2.0, 5.0, 3.0):
            clock.advance(seconds)
            seen.append(state(sim, task_id))

    assert [s["status"] for s in seen] == ["WARMING_UP", "WARMING_UP", "WARMING_UP", "SUCCEEDED"]
    assert all("progress" not in s for s in seen)


def test_never_directive_keeps_running_past_task_seconds(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=10.0, pending_seconds=2.0, clock=clock) as sim:
        task_id = create(sim, promptText="A lake [sim:never]")
        seen = [state(sim, task_id)]
        for _ in range(5):
            clock.advance(DAY)
            seen.append(state(sim, task_id))

    assert seen[0]["status"] == "PENDING"
    assert {s["status"] for s in seen[1:]} == {"RUNNING"}
    assert all(s["progress"] < 1 for s in seen[1:])


# -- credits -------------------------------------------------------------------------------------


def balance(sim: RunwaySimulator) -> int:
    response = call("GET", f"{sim.base_url}/v1/organization", headers=auth())
    assert response.status_code == 200, response.text
    credits: int = response.json()["creditBalance"]
    return credits


@pytest.mark.parametrize(
    ("endpoint", "body", "credits"),
    [
        ("text_to_video", text_body(), 60),  # Runway's own example: gen4.5, 5 s
        ("text_to_video", text_body(model="veo3.1", duration=8), 320),
        ("text_to_video", text_body(model="veo3.1_fast", duration=None), 120),  # Veo's default: 8 s
        ("image_to_video", {"model": "gen4_turbo", "ratio": "960:960", "promptImage": "https://example.com/a.png"}, 50),
        ("image_to_video", text_body(model="gen4_turbo", duration=3, promptImage="https://example.com/a.png"), 15),
        ("text_to_video", text_body(outputFormat="prores"), 85),  # 12 + 5 a second for ProRes
        ("text_to_video", text_body(outputFormat="hdr10"), 160),  # 12 + 20 a second for a 10-bit format
        ("text_to_video", text_body(model="veo3.1", duration=8, audio=False), 160),  # 20 a second without audio
        ("video_to_video", {"model": "aleph2", "videoUri": "https://example.com/clip.mp4"}, 100),  # a 5 s clip
        (
            "video_upscale",
            {"model": "enhance_frame_rate", "videoUri": "https://example.com/clip.mp4", "targetFramerate": "60"},
            50,
        ),
    ],
    ids=[
        "gen4.5",
        "veo3.1",
        "veo3.1-fast-default-duration",
        "gen4-turbo-default-duration",
        "gen4-turbo",
        "gen4.5-prores",
        "gen4.5-10-bit",
        "veo3.1-without-audio",
        "aleph2-clip",
        "frame-rate-clip",
    ],
)
def test_create_and_an_unfinished_task_answer_the_estimate_at_the_simulators_price(
    clock: ManualClock, endpoint: str, body: dict[str, Any], credits: int
) -> None:
    body = {name: value for name, value in body.items() if value is not None}
    with RunwaySimulator(task_seconds=10.0, clock=clock) as sim:
        created = post(sim, endpoint, body)
        task = state(sim, created.json()["id"])

    assert created.status_code == 200, created.text
    assert created.json()["estimatedCost"] == {"credits": credits}
    assert task["status"] == "PENDING"
    assert task["estimatedCost"] == {"credits": credits}
    assert "cost" not in task


def test_a_task_carries_its_estimate_until_it_ends_then_its_cost(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=10.0, pending_seconds=2.0, max_concurrent=1, clock=clock) as sim:
        first, second = create(sim, duration=6), create(sim)
        seen = [state(sim, second)]
        for seconds in (10.0, 2.0, 8.0):
            clock.advance(seconds)
            seen.append(state(sim, second))
        first_final = state(sim, first)

    assert [s["status"] for s in seen] == ["THROTTLED", "PENDING", "RUNNING", "SUCCEEDED"]
    assert [s.get("estimatedCost") for s in seen] == [{"credits": 60}] * 3 + [None]
    assert [s.get("cost") for s in seen] == [None] * 3 + [{"credits": 60}]
    assert first_final["cost"] == {"credits": 72}


@pytest.mark.parametrize(
    ("directive", "cost"),
    [
        ("", 60),
        ("[sim:fail=SAFETY.INPUT.TEXT]", 60),  # moderated generations cost as much as successful ones
        ("[sim:fail=SAFETY.OUTPUT.VIDEO]", 60),
        ("[sim:fail]", 0),  # Runway-side trouble is refunded
        ("[sim:fail=INTERNAL.BAD_OUTPUT.CODE01]", 0),
        ("[sim:fail=ASSET.INVALID]", 0),
        ("[sim:cancel]", 60),  # cancelled while RUNNING: not refunded
    ],
    ids=["succeeded", "safety-input", "safety-output", "internal", "bad-output", "asset", "cancelled"],
)
def test_the_balance_pays_the_estimate_at_creation_and_gets_back_what_is_not_billed(
    clock: ManualClock, directive: str, cost: int
) -> None:
    with RunwaySimulator(task_seconds=10.0, credit_balance=1000, clock=clock) as sim:
        opening = balance(sim)
        task_id = create(sim, promptText=f"A lake {directive}")
        paid = balance(sim)
        clock.advance(9.5)
        running = state(sim, task_id)
        clock.advance(0.5)
        final = state(sim, task_id)
        closing = balance(sim)

    assert (opening, paid) == (1000, 940)
    assert running["estimatedCost"] == {"credits": 60}
    assert final["cost"] == {"credits": cost}
    assert "estimatedCost" not in final
    assert closing == 1000 - cost


def test_fail_rate_failures_are_refunded(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=10.0, fail_rate=1.0, credit_balance=100, clock=clock) as sim:
        task_id = create(sim)
        clock.advance(10.0)

        assert state(sim, task_id)["cost"] == {"credits": 0}
        assert balance(sim) == 100


def test_deleting_a_waiting_task_refunds_it_a_running_one_keeps_its_charge_and_a_finished_one_its_cost(
    clock: ManualClock,
) -> None:
    # Runway's rule (runwayml 5.24, tasks.delete): refunds follow the task's status at the delete.
    with RunwaySimulator(task_seconds=10.0, max_concurrent=1, credit_balance=1000, clock=clock) as sim:
        running, throttled, done = create(sim), create(sim), create(sim, model="veo3.1", duration=4)
        never = create(sim, model="veo3.1_fast", duration=4, promptText="[sim:never] A lake")
        queued = create(sim)  # behind `throttled` for gen4.5's one slot
        assert balance(sim) == 1000 - 60 - 60 - 160 - 60 - 60
        clock.advance(10.0)  # `running` and `done` (another model) have ended; `throttled` has just started
        seen = {name: state(sim, task)["status"] for name, task in (("throttled", throttled), ("queued", queued))}
        for task_id in (running, throttled, done, never, queued):
            assert delete(sim, task_id).status_code == 204
        after = balance(sim)
        clock.advance(DAY)
        much_later = balance(sim)

    assert seen == {"throttled": "PENDING", "queued": "THROTTLED"}
    # Kept: the two that ended (60 + 160) and the one deleted while RUNNING (never, 60); refunded:
    # the PENDING and THROTTLED ones.
    assert after == much_later == 1000 - 60 - 160 - 60


def usage(sim: RunwaySimulator, **body: str) -> requests.Response:
    return call("POST", f"{sim.base_url}/v1/organization/usage", json=body, headers=auth())


def test_usage_adds_up_each_days_charges_and_refunds_per_model(clock: ManualClock) -> None:
    # The clock starts at 2026-01-01 00:00 UTC.
    with RunwaySimulator(task_seconds=10.0, clock=clock) as sim:
        create(sim)  # gen4.5, 5 s: 60, kept
        create(sim, promptText="A lake [sim:fail]")  # refunded when it fails, 10 s later
        create(sim, model="veo3.1", duration=4)  # 160
        late = create(sim)
        clock.advance(DAY)  # the next day
        delete(sim, late)  # ended the day before: a delete refunds nothing
        waiting = create(sim, promptText="A lake [sim:throttle=100]")
        delete(sim, waiting)  # refunded on the day it was deleted
        answer = usage(sim, startDate="2025-12-31", beforeDate="2026-01-03")

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "models": ["gen4.5", "veo3.1"],
        "results": [
            {
                "date": "2026-01-01",
                "usedCredits": [{"model": "gen4.5", "amount": 120}, {"model": "veo3.1", "amount": 160}],
            },
            {"date": "2026-01-02", "usedCredits": [{"model": "gen4.5", "amount": 0}]},
        ],
    }


@pytest.mark.parametrize(
    ("body", "issue"),
    [
        ({"startDate": "26 Aug 2026"}, ["startDate"]),
        ({"startDate": "2026-02-30"}, ["startDate"]),
        ({"startDate": "2026-08-26", "beforeDate": "2026-08-26"}, ["beforeDate"]),
        ({"startDate": "2026-01-01", "beforeDate": "2026-06-01"}, ["beforeDate"]),
        ({"start": "2026-08-26"}, []),
    ],
    ids=["not-iso", "no-such-day", "empty-range", "over-90-days", "unknown-key"],
)
def test_usage_refuses_a_range_runway_would_not_take(
    clock: ManualClock, body: dict[str, str], issue: list[str]
) -> None:
    with RunwaySimulator(clock=clock) as sim:
        answer = usage(sim, **body)

    assert answer.status_code == 400
    assert [i["path"] for i in answer.json()["issues"]] == [issue]


def test_usage_without_dates_covers_the_thirty_days_before_today(clock: ManualClock) -> None:
    # The SDK's defaults: from 30 days before today, for 30 days: today itself is not in it.
    with RunwaySimulator(clock=clock) as sim:
        create(sim)
        clock.advance(2 * DAY)
        create(sim)
        answer = usage(sim)

    assert answer.json()["results"] == [{"date": "2026-01-01", "usedCredits": [{"model": "gen4.5", "amount": 60}]}]


def test_the_balance_may_go_below_zero(clock: ManualClock) -> None:
    # Runway would refuse the create; the simulator bills on, so that long benchmarks never run dry.
    with RunwaySimulator(credit_balance=100, clock=clock) as sim:
        create(sim)
        create(sim)

        assert balance(sim) == -20


# -- account-wide options ------------------------------------------------------------------------


def test_error_rate_one_answers_every_api_request_5xx() -> None:
    with RunwaySimulator(error_rate=1.0, random_seed=1) as sim:
        codes = {post(sim, "text_to_video", text_body()).status_code for _ in range(10)}
        creates = sim.creates

    assert codes <= {502, 503}
    assert creates == 0


def test_fail_rate_one_fails_every_task_internally(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=10.0, fail_rate=1.0, clock=clock) as sim:
        task_id = create(sim)
        clock.advance(10.0)
        final = state(sim, task_id)

    assert (final["status"], final["failureCode"]) == ("FAILED", "INTERNAL")


def test_tasks_past_the_concurrency_limit_wait_throttled_and_start_in_order(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=10.0, pending_seconds=4.0, max_concurrent=1, clock=clock) as sim:
        task_ids = [create(sim) for _ in range(3)]
        other_model = create(sim, model="veo3.1", duration=4)
        other_first = state(sim, other_model)["status"]
        seen = [statuses(sim, task_ids)]
        for _ in range(6):
            clock.advance(5.0)
            seen.append(statuses(sim, task_ids))

    assert other_first == "PENDING"  # the limit is per model
    # One at a time, in order of creation; a released task starts its own life at PENDING.
    assert seen == [
        ["PENDING", "THROTTLED", "THROTTLED"],
        ["RUNNING", "THROTTLED", "THROTTLED"],
        ["SUCCEEDED", "PENDING", "THROTTLED"],
        ["SUCCEEDED", "RUNNING", "THROTTLED"],
        ["SUCCEEDED", "SUCCEEDED", "PENDING"],
        ["SUCCEEDED", "SUCCEEDED", "RUNNING"],
        ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"],
    ]


def test_deleting_a_task_frees_its_slot(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=10.0, pending_seconds=2.0, max_concurrent=1, clock=clock) as sim:
        stuck = create(sim, promptText="A lake [sim:never]")
        waiting = create(sim)
        # As long as the stuck task holds the slot, the other waits.
        before = set()
        for _ in range(3):
            clock.advance(10.0)
            before.add(state(sim, waiting)["status"])
        delete(sim, stuck)
        seen = [state(sim, waiting)["status"]]
        clock.advance(10.0)
        seen.append(state(sim, waiting)["status"])

    assert before == {"THROTTLED"}
    assert seen == ["PENDING", "SUCCEEDED"]


def test_deleting_a_throttled_task_lets_the_next_one_take_its_turn(clock: ManualClock) -> None:
    with RunwaySimulator(task_seconds=10.0, pending_seconds=2.0, max_concurrent=1, clock=clock) as sim:
        first, second, third = create(sim), create(sim), create(sim)
        delete(sim, second)
        seen = [statuses(sim, [first, third])]
        for _ in range(2):
            clock.advance(10.0)
            seen.append(statuses(sim, [first, third]))

    assert seen == [["PENDING", "THROTTLED"], ["SUCCEEDED", "PENDING"], ["SUCCEEDED", "SUCCEEDED"]]


def test_slow_rate_one_answers_every_api_request_late(clock: ManualClock) -> None:
    with RunwaySimulator(slow_rate=1.0, slow_seconds=30.0, clock=clock) as sim:
        thread, answers = in_thread(lambda: call("GET", f"{sim.base_url}/v1/organization", headers=auth()))
        clock.wait_for_waiters(1)
        clock.advance(29.0)
        thread.join(0.1)
        early = list(answers)
        clock.advance(1.0)
        thread.join(TIMEOUT)

    assert early == []
    assert [answer.status_code for answer in answers] == [200]


def test_slow_create_takes_effect_even_when_the_client_gives_up(clock: ManualClock) -> None:
    with RunwaySimulator(slow_rate=1.0, slow_seconds=30.0, clock=clock) as sim:
        with pytest.raises(requests.ReadTimeout):
            requests.post(f"{sim.base_url}/v1/text_to_video", json=text_body(), headers=auth(), timeout=0.2)
        creates = sim.creates

    assert creates == 1


def test_slow_rate_zero_answers_at_once(clock: ManualClock) -> None:
    # The clock never moves: an answer that waited on it would time the request out.
    with RunwaySimulator(slow_rate=0.0, slow_seconds=30.0, clock=clock) as sim:
        response = call("GET", f"{sim.base_url}/v1/organization", headers=auth())

    assert response.status_code == 200
    assert clock.waiting == 0


def test_stop_answers_every_slow_request_at_once(clock: ManualClock) -> None:
    sim = RunwaySimulator(slow_rate=1.0, slow_seconds=30.0, clock=clock).start()
    url = f"{sim.base_url}/v1/organization"
    requests_in_flight = [in_thread(lambda: call("GET", url, headers=auth())) for _ in range(2)]
    clock.wait_for_waiters(2)

    sim.stop()
    for thread, _ in requests_in_flight:
        thread.join(TIMEOUT)

    assert [[answer.status_code for answer in answers] for _, answers in requests_in_flight] == [[200], [200]]
    assert clock.monotonic() == 0.0


# -- the distance of the internet --------------------------------------------------------------


def test_latency_delays_every_api_answer_but_not_its_effect(clock: ManualClock) -> None:
    with RunwaySimulator(latency=0.25, clock=clock) as sim:
        thread, answers = in_thread(lambda: post(sim, "text_to_video", text_body()))
        clock.wait_for_waiters(1)
        created_before_answer = sim.creates
        clock.advance(0.24)
        thread.join(0.1)
        early = list(answers)
        clock.advance(0.01)
        thread.join(TIMEOUT)

    assert created_before_answer == 1
    assert early == []
    assert [answer.status_code for answer in answers] == [200]


def test_latency_zero_answers_at_once(clock: ManualClock) -> None:
    with RunwaySimulator(latency=0.0, clock=clock) as sim:
        response = call("GET", f"{sim.base_url}/v1/organization", headers=auth())

    assert response.status_code == 200
    assert clock.waiting == 0


def test_hundreds_of_connections_wait_on_slow_answers_side_by_side(clock: ManualClock) -> None:
    # Each connection has a thread of its own, and the backlog holds what arrives at once: all 300
    # requests are in the simulator, waiting out their latency together, before the clock moves.
    with RunwaySimulator(latency=0.25, clock=clock) as sim:
        url = f"{sim.base_url}/v1/organization"
        in_flight = [in_thread(lambda: call("GET", url, headers=auth())) for _ in range(300)]
        clock.wait_for_waiters(300, timeout=30.0)
        clock.advance(0.25)
        for thread, _ in in_flight:
            thread.join(TIMEOUT)

    assert [answers[0].status_code for _, answers in in_flight if answers] == [200] * 300


def test_download_waits_for_its_first_byte_then_arrives_at_the_rate_set(clock: ManualClock) -> None:
    rate = len(SAMPLE_VIDEO.read_bytes()) / 4  # the whole file in 4 s
    with RunwaySimulator(download_latency=2.0, download_rate=rate, clock=clock) as sim:
        url = sim.output_url(create(sim))
        thread, answers = in_thread(lambda: call("GET", url))
        clock.wait_for_waiters(1)
        clock.advance(2.0)  # the first byte's wait ends; the first chunk waits its share of 4 s
        clock.wait_for_waiters(1)
        thread.join(0.1)
        unfinished = not answers
        while thread.is_alive() and clock.monotonic() < 7.0:
            clock.advance(0.5)
            thread.join(0.05)
        took = clock.monotonic()

    assert unfinished
    assert answers[0].content == SAMPLE_VIDEO.read_bytes()
    assert 6.0 <= took <= 6.5  # 2 s to the first byte, then 4 s of transfer


def test_api_latency_does_not_delay_downloads(clock: ManualClock) -> None:
    with RunwaySimulator(latency=30.0, clock=clock) as sim:
        url = sim.output_url("0b5c5f4e-0000-4000-8000-000000000000")
        response = call("GET", url)

    assert response.status_code == 200


def test_daily_limit_answers_429_with_retry_after_until_a_day_has_passed(clock: ManualClock) -> None:
    with RunwaySimulator(daily_limit=1, clock=clock) as sim:
        create(sim)
        refused = post(sim, "text_to_video", text_body())
        other_model = post(sim, "text_to_video", text_body(model="veo3.1", duration=4))
        usage = call("GET", f"{sim.base_url}/v1/organization", headers=auth()).json()["usage"]["models"]
        clock.advance(DAY - 1)
        still_refused = post(sim, "text_to_video", text_body())
        clock.advance(1)
        accepted = post(sim, "text_to_video", text_body())

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(int(DAY) + 1)
    assert other_model.status_code == 200
    assert usage["gen4.5"]["dailyGenerations"] == 1
    assert usage["veo3.1"]["dailyGenerations"] == 1
    assert still_refused.status_code == 429
    assert still_refused.headers["Retry-After"] == "2"
    assert accepted.status_code == 200


# -- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"max_concurrent": 0},
        {"slow_rate": 1.5},
        {"error_rate": -0.1},
        {"fail_rate": 2},
        {"slow_seconds": -1},
        {"task_seconds": 1.0, "pending_seconds": 2.0},
        {"task_seconds": -1.0},
        {"latency": -0.1},
        {"download_latency": -1.0},
        {"download_rate": 0.0},
        {"credit_balance": -1},
    ],
    ids=[
        "max-concurrent",
        "slow-rate",
        "error-rate",
        "fail-rate",
        "slow-seconds",
        "pending-seconds",
        "task-seconds",
        "latency",
        "download-latency",
        "download-rate",
        "credit-balance",
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RunwaySimulator(**options)
    with pytest.raises(ValueError):
        RunwaySimulator(SimulatorOptions(), **options)


def test_keyword_settings_change_the_options_given() -> None:
    base = SimulatorOptions(task_seconds=4.0, max_concurrent=2)

    sim = RunwaySimulator(base, max_concurrent=3)

    assert sim.options == SimulatorOptions(task_seconds=4.0, max_concurrent=3)
    assert sim.options.pending_time == 0.4  # a tenth of task_seconds unless given


def test_every_option_is_a_keyword_setting() -> None:
    # RunwaySimulator(**settings) is typed by SimulatorSettings; it must name every option.
    assert set(SimulatorSettings.__annotations__) == {option.name for option in dataclasses.fields(SimulatorOptions)}
