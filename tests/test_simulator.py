"""The Runway simulator over real HTTP: headers, validation, task life, outputs, limits, directives."""

import dataclasses
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest
import requests
from django.core.management import CommandError

from runway_simulator import SAMPLE_VIDEO, RunwaySimulator, SimulatorOptions
from runway_simulator.options import SimulatorSettings
from videos import catalog
from videos.management.commands.runway_simulator import Command, simulator_from_options

VERSION = "2024-11-06"
KEY = "key_" + secrets.token_hex(64)
TIMEOUT = 5.0
FINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


@pytest.fixture(scope="module")
def sim() -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=0.6, pending_seconds=0.2) as simulator:
        yield simulator


def call(method: str, url: str, **kwargs: Any) -> requests.Response:
    """A request with a timeout, so a hung simulator fails the test instead of hanging it."""
    return requests.request(method, url, timeout=TIMEOUT, **kwargs)


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-Runway-Version": VERSION}


def text_body(**overrides: Any) -> dict[str, Any]:
    return {"model": "gen4.5", "promptText": "A calm lake at dawn", "ratio": "1280:720", "duration": 5, **overrides}


def post(sim: RunwaySimulator, endpoint: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    return call("POST", f"{sim.base_url}/v1/{endpoint}", json=body, headers=auth() if headers is None else headers)


def create(sim: RunwaySimulator, **overrides: Any) -> str:
    response = post(sim, "text_to_video", text_body(**overrides))
    assert response.status_code == 200, response.text
    return response.json()["id"]


def get_task(sim: RunwaySimulator, task_id: str) -> requests.Response:
    return call("GET", f"{sim.base_url}/v1/tasks/{task_id}", headers=auth())


def poll(
    sim: RunwaySimulator, task_id: str, *, until: Callable[[dict[str, Any]], bool], seconds: float = TIMEOUT
) -> list[dict[str, Any]]:
    """Every answer about the task until `until` holds; fails if that takes longer than `seconds`."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = get_task(sim, task_id)
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if until(seen[-1]):
            return seen
        time.sleep(0.02)
    pytest.fail(f"task {task_id} never got there; last answer {seen[-1] if seen else None}")


def is_final(state: dict[str, Any]) -> bool:
    return state["status"] in FINAL


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
    wrong_method = call("GET", f"{sim.base_url}/v1/text_to_video", headers=auth())
    elsewhere = call("GET", f"{sim.base_url}/favicon.ico")

    for response in (api, wrong_method, elsewhere):
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "path"),
    [
        ("text_to_video", text_body(model="gen4_turbo"), "model"),
        ("text_to_video", text_body(model="gen9"), "model"),
        ("text_to_video", {k: v for k, v in text_body().items() if k != "model"}, "model"),
        ("text_to_video", text_body(promptText=""), "promptText"),
        ("text_to_video", text_body(promptText="a" * 999 + "🎬"), "promptText"),
        ("text_to_video", text_body(promptText=42), "promptText"),
        ("text_to_video", text_body(ratio="1104:832"), "ratio"),
        ("text_to_video", text_body(duration=11), "duration"),
        ("text_to_video", text_body(duration="5"), "duration"),
        ("text_to_video", text_body(duration=True), "duration"),
        ("text_to_video", text_body(seed=-1), "seed"),
        ("text_to_video", text_body(model="veo3.1", duration=4, seed=1), "seed"),
        ("text_to_video", text_body(promptImage="https://example.com/a.png"), "promptImage"),
        ("text_to_video", text_body(promptText="A lake [sim:explode]"), "promptText"),
        ("image_to_video", text_body(model="gen4_turbo"), "promptImage"),
        ("image_to_video", text_body(model="gen4_turbo", promptImage="http://example.com/a.png"), "promptImage"),
        ("image_to_video", text_body(model="gen4_turbo", promptImage="data:image/gif;base64,R0lG"), "promptImage"),
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
        "seed-on-veo",
        "image-on-text",
        "unknown-directive",
        "image-missing",
        "image-not-https",
        "image-gif",
    ],
)
def test_invalid_create_is_400_with_runway_issues(
    sim: RunwaySimulator, endpoint: str, body: dict[str, Any], path: str
) -> None:
    creates = sim.creates

    response = post(sim, endpoint, body)

    assert response.status_code == 400
    answer = response.json()
    assert set(answer) == {"error", "issues", "docUrl"}
    assert all(isinstance(issue["message"], str) and issue["message"] for issue in answer["issues"])
    assert [path] in [issue["path"] for issue in answer["issues"]]
    assert sim.creates == creates


def test_body_that_is_not_a_json_object_is_400(sim: RunwaySimulator) -> None:
    headers = {**auth(), "Content-Type": "application/json"}

    response = call("POST", f"{sim.base_url}/v1/text_to_video", data=b"{not json", headers=headers)

    assert response.status_code == 400
    assert response.json()["issues"][0]["path"] == []


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("text_to_video", text_body(promptText="a" * 998 + "🎬", seed=catalog.SEED_MAX)),
        ("text_to_video", text_body(model="veo3.1_fast", ratio="1080:1920", duration=8)),
        ("image_to_video", text_body(model="gen4_turbo", ratio="960:960", promptImage="https://example.com/a.png")),
        (
            "image_to_video",
            {"model": "gen4_turbo", "ratio": "1280:720", "promptImage": [{"uri": "runway://x", "position": "first"}]},
        ),
    ],
    ids=["1000-utf16-units", "veo", "gen4-turbo-url", "gen4-turbo-list"],
)
def test_valid_create_answers_a_uuid(sim: RunwaySimulator, endpoint: str, body: dict[str, Any]) -> None:
    creates = sim.creates

    response = post(sim, endpoint, body)

    assert response.status_code == 200, response.text
    assert uuid.UUID(response.json()["id"]).version == 4
    assert sim.creates == creates + 1


def test_requests_are_recorded(sim: RunwaySimulator) -> None:
    body = text_body(seed=7)

    post(sim, "text_to_video", body)

    record = sim.requests[-1]
    assert (record.method, record.path, record.json) == ("POST", "/v1/text_to_video", body)
    assert record.headers["X-Runway-Version"] == VERSION


# -- task life -----------------------------------------------------------------------------------


def test_task_goes_pending_running_succeeded(sim: RunwaySimulator) -> None:
    task_id = create(sim)

    seen = poll(sim, task_id, until=is_final)

    statuses = [state["status"] for state in seen]
    assert statuses[0] == "PENDING"
    assert "RUNNING" in statuses
    assert statuses[-1] == "SUCCEEDED"
    progress = [state["progress"] for state in seen if state["status"] == "RUNNING"]
    assert progress == sorted(progress)
    assert all(0 <= p <= 1 for p in progress)
    assert all(state["id"] == task_id for state in seen)
    assert len({state["createdAt"] for state in seen}) == 1
    assert seen[0]["createdAt"].endswith("Z")
    datetime.fromisoformat(seen[0]["createdAt"])
    [url] = seen[-1]["output"]
    assert url.startswith(sim.base_url) and "_jwt=" in url


def test_output_downloads_then_expires() -> None:
    with RunwaySimulator(task_seconds=0.1, pending_seconds=0.0, output_ttl=0.5) as sim:
        task_id = create(sim)
        [url] = poll(sim, task_id, until=is_final)[-1]["output"]

        fresh = call("GET", url)
        head = call("HEAD", url)
        deadline = time.monotonic() + TIMEOUT
        while (late := call("GET", url)).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)

    assert fresh.status_code == 200
    assert fresh.headers["Content-Type"] == "video/mp4"
    assert fresh.content
    assert head.status_code == 200 and not head.content
    assert head.headers["Content-Length"] == str(len(fresh.content))
    assert late.status_code == 403


def test_output_with_bad_token_is_403(sim: RunwaySimulator) -> None:
    task_id = create(sim)
    [url] = poll(sim, task_id, until=is_final)[-1]["output"]
    other_id = str(uuid.uuid4())

    tampered = call("GET", url[:-1] + ("0" if url[-1] != "0" else "1"))
    other_task = call("GET", url.replace(task_id, other_id))
    no_token = call("GET", url.split("?")[0])

    assert call("GET", url).status_code == 200
    assert [r.status_code for r in (tampered, other_task, no_token)] == [403, 403, 403]


def test_delete_answers_204_then_task_is_gone(sim: RunwaySimulator) -> None:
    task_id = create(sim)
    deletes = sim.deletes

    deleted = call("DELETE", f"{sim.base_url}/v1/tasks/{task_id}", headers=auth())
    after = get_task(sim, task_id)
    again = call("DELETE", f"{sim.base_url}/v1/tasks/{task_id}", headers=auth())

    assert deleted.status_code == 204 and deleted.content == b""
    assert after.status_code == 404
    assert again.status_code == 404
    assert sim.deletes == deletes + 1


def test_unknown_task_is_404(sim: RunwaySimulator) -> None:
    assert get_task(sim, str(uuid.uuid4())).status_code == 404


def test_organization_lists_every_catalog_model(sim: RunwaySimulator) -> None:
    response = call("GET", f"{sim.base_url}/v1/organization", headers=auth())

    assert response.status_code == 200
    body = response.json()
    assert isinstance(body["creditBalance"], int)
    assert isinstance(body["tier"]["maxMonthlyCreditSpend"], int)
    for model in catalog.MODELS:
        limits = body["tier"]["models"][model]
        # Runway answers null for "no limit", which is the simulator's default.
        assert limits["maxConcurrentGenerations"] is None
        assert isinstance(limits["maxDailyGenerations"], int)
        assert isinstance(body["usage"]["models"][model]["dailyGenerations"], int)


def test_organization_reports_the_configured_limits() -> None:
    with RunwaySimulator(max_concurrent=3, daily_limit=50) as sim:
        body = call("GET", f"{sim.base_url}/v1/organization", headers=auth()).json()

    for model in catalog.MODELS:
        assert body["tier"]["models"][model] == {"maxConcurrentGenerations": 3, "maxDailyGenerations": 50}


# -- outputs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def output_url(sim: RunwaySimulator) -> str:
    return poll(sim, create(sim), until=is_final)[-1]["output"][0]


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


def test_output_range_past_the_end_is_416(output_url: str) -> None:
    size = len(SAMPLE_VIDEO.read_bytes())

    response = call("GET", output_url, headers={"Range": f"bytes={size}-"})

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


def test_fail_directive_ends_failed_with_code(sim: RunwaySimulator) -> None:
    task_id = create(sim, promptText="A lake [sim:fail=SAFETY.INPUT.TEXT]")

    final = poll(sim, task_id, until=is_final)[-1]

    assert final["status"] == "FAILED"
    assert final["failureCode"] == "SAFETY.INPUT.TEXT"
    assert final["failure"]
    assert "output" not in final


def test_throttle_directive_starts_throttled_then_succeeds(sim: RunwaySimulator) -> None:
    task_id = create(sim, promptText="A lake [sim:throttle=0.3]")

    seen = poll(sim, task_id, until=is_final)

    assert seen[0]["status"] == "THROTTLED"
    assert seen[-1]["status"] == "SUCCEEDED"


def test_cancel_directive_ends_cancelled(sim: RunwaySimulator) -> None:
    task_id = create(sim, promptText="[sim:cancel] A lake")

    assert poll(sim, task_id, until=is_final)[-1]["status"] == "CANCELLED"


def test_status_directive_reports_unknown_status_then_succeeds(sim: RunwaySimulator) -> None:
    task_id = create(sim, promptText="A lake [sim:status=WARMING_UP]")

    statuses = {state["status"] for state in poll(sim, task_id, until=is_final)}

    assert statuses == {"WARMING_UP", "SUCCEEDED"}


def test_never_directive_keeps_running_past_task_seconds() -> None:
    with RunwaySimulator(task_seconds=0.2, pending_seconds=0.05) as sim:
        task_id = create(sim, promptText="A lake [sim:never]")
        # Watch it for three lifetimes: it must never end.
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 3 * sim.options.task_seconds
        while time.monotonic() < deadline:
            seen.append(get_task(sim, task_id).json())
            time.sleep(0.02)

    assert {state["status"] for state in seen} <= {"PENDING", "RUNNING"}
    assert seen[-1]["status"] == "RUNNING"
    assert seen[-1]["progress"] < 1


# -- account-wide options ------------------------------------------------------------------------


def test_error_rate_one_answers_every_api_request_5xx() -> None:
    with RunwaySimulator(error_rate=1.0, random_seed=1) as sim:
        statuses = {post(sim, "text_to_video", text_body()).status_code for _ in range(10)}
        creates = sim.creates

    assert statuses <= {502, 503}
    assert creates == 0


def test_fail_rate_one_fails_every_task_internally() -> None:
    with RunwaySimulator(task_seconds=0.1, fail_rate=1.0) as sim:
        final = poll(sim, create(sim), until=is_final)[-1]

    assert (final["status"], final["failureCode"]) == ("FAILED", "INTERNAL")


def snapshot(sim: RunwaySimulator, task_ids: list[str]) -> list[str]:
    """The tasks' statuses, asked last task first: a later task seen started means earlier ones had ended."""
    return [get_task(sim, task_id).json()["status"] for task_id in reversed(task_ids)][::-1]


def test_tasks_past_the_concurrency_limit_wait_throttled_and_start_in_order() -> None:
    with RunwaySimulator(task_seconds=0.6, pending_seconds=0.25, max_concurrent=1) as sim:
        task_ids = [create(sim) for _ in range(3)]
        other_model = create(sim, model="veo3.1", duration=4)
        other_first = get_task(sim, other_model).json()["status"]
        seen: list[list[str]] = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            seen.append(snapshot(sim, task_ids))
            if set(seen[-1]) <= FINAL:
                break
            time.sleep(0.01)

    assert seen[0] == ["PENDING", "THROTTLED", "THROTTLED"]
    assert other_first == "PENDING"  # the limit is per model
    assert seen[-1] == ["SUCCEEDED"] * 3
    for statuses in seen:
        started = [status != "THROTTLED" for status in statuses]
        assert started == sorted(started, reverse=True), statuses  # in order of creation
        assert sum(status in ("PENDING", "RUNNING") for status in statuses) <= 1, statuses
        for earlier, later in pairwise(statuses):
            if later != "THROTTLED":
                assert earlier in FINAL, statuses
    for position in (1, 2):
        # A released task starts its own life at PENDING instead of jumping ahead.
        after_throttled = [s[position] for s in seen if s[position] != "THROTTLED"]
        assert after_throttled[0] == "PENDING"
        assert "RUNNING" in after_throttled


def test_deleting_a_task_frees_its_slot() -> None:
    with RunwaySimulator(task_seconds=0.2, pending_seconds=0.05, max_concurrent=1) as sim:
        stuck = create(sim, promptText="A lake [sim:never]")
        waiting = create(sim)
        # Watch it for three lifetimes: it must wait as long as the stuck task holds the slot.
        before: set[str] = set()
        deadline = time.monotonic() + 3 * sim.options.task_seconds
        while time.monotonic() < deadline:
            before.add(get_task(sim, waiting).json()["status"])
            time.sleep(0.02)
        call("DELETE", f"{sim.base_url}/v1/tasks/{stuck}", headers=auth())
        seen = poll(sim, waiting, until=is_final)

    assert before == {"THROTTLED"}
    assert seen[0]["status"] == "PENDING"
    assert seen[-1]["status"] == "SUCCEEDED"


def test_deleting_a_throttled_task_lets_the_next_one_take_its_turn() -> None:
    with RunwaySimulator(task_seconds=0.3, pending_seconds=0.05, max_concurrent=1) as sim:
        first, second, third = create(sim), create(sim), create(sim)
        call("DELETE", f"{sim.base_url}/v1/tasks/{second}", headers=auth())
        seen = poll(sim, third, until=is_final)
        first_final = get_task(sim, first).json()["status"]

    assert seen[0]["status"] == "THROTTLED"
    assert seen[-1]["status"] == "SUCCEEDED"
    assert first_final == "SUCCEEDED"


def test_slow_rate_one_answers_every_api_request_late() -> None:
    with RunwaySimulator(slow_rate=1.0, slow_seconds=0.3) as sim:
        started = time.monotonic()
        response = call("GET", f"{sim.base_url}/v1/organization", headers=auth())
        elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.3


def test_slow_create_takes_effect_even_when_the_client_gives_up() -> None:
    with RunwaySimulator(slow_rate=1.0, slow_seconds=2.0) as sim:
        with pytest.raises(requests.ReadTimeout):
            requests.post(f"{sim.base_url}/v1/text_to_video", json=text_body(), headers=auth(), timeout=0.2)
        creates = sim.creates

    assert creates == 1


def test_slow_rate_zero_answers_at_once() -> None:
    with RunwaySimulator(slow_rate=0.0, slow_seconds=5.0) as sim:
        started = time.monotonic()
        call("GET", f"{sim.base_url}/v1/organization", headers=auth())

    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "options",
    [{"max_concurrent": 0}, {"slow_rate": 1.5}, {"error_rate": -0.1}, {"fail_rate": 2}, {"slow_seconds": -1}],
    ids=["max-concurrent", "slow-rate", "error-rate", "fail-rate", "slow-seconds"],
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


def parse_command(*argv: str) -> dict[str, Any]:
    return vars(Command().create_parser("manage.py", "runway_simulator").parse_args(list(argv)))


def test_command_flags_configure_the_simulator() -> None:
    options = parse_command(
        "--port=0",
        "--task-seconds=3",
        "--output-ttl=60",
        "--max-concurrent=2",
        "--daily-limit=50",
        "--error-rate=0.1",
        "--slow-rate=0.2",
        "--slow-seconds=4",
        "--fail-rate=0.3",
    )

    sim = simulator_from_options(options)

    assert sim.options == SimulatorOptions(
        port=0,
        task_seconds=3.0,
        output_ttl=60.0,
        max_concurrent=2,
        daily_limit=50,
        error_rate=0.1,
        slow_rate=0.2,
        slow_seconds=4.0,
        fail_rate=0.3,
        verbose=True,
    )


def test_command_defaults_are_the_options_defaults_on_a_fixed_port() -> None:
    sim = simulator_from_options(parse_command("--verbosity=0"))

    assert sim.options == SimulatorOptions(port=8765)
    assert sim.options.max_concurrent is None
    assert (sim.options.slow_rate, sim.options.error_rate, sim.options.fail_rate) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "argv", [("--slow-rate=2",), ("--max-concurrent=0",), ("--fail-rate=x",), ("--slow-seconds=-1",)]
)
def test_command_refuses_bad_flags(argv: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        parse_command(*argv)


def test_daily_limit_answers_429_with_retry_after() -> None:
    with RunwaySimulator(daily_limit=1) as sim:
        create(sim)
        refused = post(sim, "text_to_video", text_body())
        other_model = post(sim, "text_to_video", text_body(model="veo3.1", duration=4))
        usage = call("GET", f"{sim.base_url}/v1/organization", headers=auth()).json()["usage"]["models"]

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert other_model.status_code == 200
    assert usage["gen4.5"]["dailyGenerations"] == 1
    assert usage["veo3.1"]["dailyGenerations"] == 1
