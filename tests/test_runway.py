"""The Runway client, tested at the HTTP boundary with `responses`."""

import email.utils
import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator

import pytest
import requests
import responses
from django.conf import settings
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from runway_simulator import API_VERSION, RunwaySimulator
from videos import catalog, runway

BASE = "https://runway.test"
TASK_ID = "acf9ba3d-a513-42c9-a646-96e8bc97c691"
TASK_URL = f"{BASE}/v1/tasks/{TASK_ID}"
TEXT_URL = f"{BASE}/v1/text_to_video"
IMAGE_URL = f"{BASE}/v1/image_to_video"
DATA_URI = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def client() -> runway.RunwayClient:
    return runway.get_client()


def build(*, model, prompt_text, prompt_image=None, **settings):
    """build_payload with the job's settings given one by one (None: not given), as the job keeps them."""
    params = {name: value for name, value in settings.items() if value is not None}
    return runway.build_payload(model=model, prompt_text=prompt_text, prompt_image=prompt_image, params=params)


def text_payload(**overrides):
    fields = {
        "model": "gen4.5",
        "prompt_text": "A serene mountain landscape at sunset",
        "ratio": "1280:720",
        "duration": 5,
        "seed": 42,
    }
    fields.update(overrides)
    return build(**fields)


def refused_connection(url: str) -> requests.ConnectionError:
    """What requests raises when nothing listens on the port: the request never left."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.ConnectionError(MaxRetryError(None, url, reason))


def sent_body(call) -> dict:
    return json.loads(call.request.body)


def assert_runway_headers(request) -> None:
    assert request.headers["Authorization"] == f"Bearer {settings.RUNWAY_API_KEY}"
    assert request.headers["X-Runway-Version"] == "2024-11-06"


# --- build_payload ---------------------------------------------------------------------------


def test_build_payload_uses_runways_camel_case_names():
    payload = build(
        model="gen4_turbo",
        prompt_text="The camera slowly pushes in",
        ratio="960:960",
        duration=10,
        seed=0,
        prompt_image=DATA_URI,
    )

    assert payload == {
        "model": "gen4_turbo",
        "promptText": "The camera slowly pushes in",
        "promptImage": DATA_URI,
        "ratio": "960:960",
        "duration": 10,
        "seed": 0,
    }


def test_build_payload_sends_a_models_own_settings_as_they_are_kept():
    params = {"ratio": "1280:720", "duration": 8, "audio": False, "negativePrompt": "gulls", "resolution": "720p"}
    payload = runway.build_payload(model="veo3.1", prompt_text="Waves", params=params)

    assert payload == {"model": "veo3.1", "promptText": "Waves", **params}


def test_build_payload_omits_seed_and_duration_when_none():
    payload = build(model="veo3.1", prompt_text="Waves", ratio="1280:720", duration=None, seed=None)

    assert payload == {"model": "veo3.1", "promptText": "Waves", "ratio": "1280:720"}


def test_build_payload_omits_empty_prompt_text_for_image_only_requests():
    payload = build(
        model="gen4_turbo",
        prompt_text="",
        ratio="1280:720",
        duration=5,
        seed=7,
        prompt_image="https://img.example/a.png",
    )

    assert "promptText" not in payload
    assert payload["promptImage"] == "https://img.example/a.png"


# --- creating a video ------------------------------------------------------------------------


def test_text_to_video_posts_to_the_text_endpoint_with_auth_version_and_json(mocked, client):
    mocked.post(TEXT_URL, json={"id": TASK_ID})

    task_id = client.create_video(endpoint="text_to_video", payload=text_payload()).id

    assert task_id == TASK_ID
    assert len(mocked.calls) == 1
    request = mocked.calls[0].request
    assert request.method == "POST"
    assert request.url == TEXT_URL
    assert_runway_headers(request)
    assert request.headers["Content-Type"] == "application/json"
    assert sent_body(mocked.calls[0]) == {
        "model": "gen4.5",
        "promptText": "A serene mountain landscape at sunset",
        "ratio": "1280:720",
        "duration": 5,
        "seed": 42,
    }


def test_text_to_video_sends_no_seed_or_duration_when_none(mocked, client):
    mocked.post(TEXT_URL, json={"id": TASK_ID})

    client.create_video(endpoint="text_to_video", payload=text_payload(model="veo3.1", duration=None, seed=None))

    body = sent_body(mocked.calls[0])
    assert body == {"model": "veo3.1", "promptText": "A serene mountain landscape at sunset", "ratio": "1280:720"}
    assert "seed" not in body
    assert "duration" not in body


@pytest.mark.parametrize("prompt_image", [DATA_URI, "https://images.example.com/first-frame.png"])
def test_image_to_video_posts_prompt_image_to_the_image_endpoint(mocked, client, prompt_image):
    mocked.post(IMAGE_URL, json={"id": TASK_ID})
    payload = build(
        model="gen4_turbo",
        prompt_text="The camera slowly pushes in",
        ratio="1104:832",
        duration=5,
        seed=4294967295,
        prompt_image=prompt_image,
    )

    task_id = client.create_video(endpoint="image_to_video", payload=payload).id

    assert task_id == TASK_ID
    request = mocked.calls[0].request
    assert request.method == "POST"
    assert request.url == IMAGE_URL
    assert_runway_headers(request)
    assert request.headers["Content-Type"] == "application/json"
    assert sent_body(mocked.calls[0]) == {
        "model": "gen4_turbo",
        "promptText": "The camera slowly pushes in",
        "promptImage": prompt_image,
        "ratio": "1104:832",
        "duration": 5,
        "seed": 4294967295,
    }


def test_create_returns_the_id_and_ignores_extra_fields(mocked, client):
    mocked.post(TEXT_URL, json={"id": TASK_ID, "estimatedCost": 125, "somethingNew": {"a": 1}})

    assert client.create_video(endpoint="text_to_video", payload=text_payload()).id == TASK_ID


def test_create_is_sent_once_only_even_when_runway_is_unavailable(mocked, client):
    mocked.post(TEXT_URL, status=503)

    with pytest.raises(runway.RunwayError):
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert len(mocked.calls) == 1


# --- following a task ------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["PENDING", "THROTTLED", "CANCELLED"])
def test_get_task_parses_states_without_extra_fields(mocked, client, status):
    mocked.get(TASK_URL, json={"id": TASK_ID, "createdAt": "2026-08-26T06:30:33.796Z", "status": status})

    state = client.get_task(TASK_ID)

    assert state == runway.TaskState(id=TASK_ID, status=status)
    assert state.progress is None
    assert state.output == []
    assert state.failure == ""
    assert state.failure_code == ""


def test_get_task_requests_the_task_url_with_auth_and_version(mocked, client):
    mocked.get(TASK_URL, json={"id": TASK_ID, "status": "PENDING"})

    client.get_task(TASK_ID)

    request = mocked.calls[0].request
    assert request.method == "GET"
    assert request.url == TASK_URL
    assert_runway_headers(request)
    assert request.body is None


def test_get_task_reads_progress_as_a_float_while_running(mocked, client):
    mocked.get(
        TASK_URL, json={"id": TASK_ID, "createdAt": "2026-08-26T06:30:33.796Z", "status": "RUNNING", "progress": 0.42}
    )

    state = client.get_task(TASK_ID)

    assert state.status == catalog.RUNNING
    assert state.progress == pytest.approx(0.42)
    assert isinstance(state.progress, float)


def test_get_task_reads_an_integer_progress_as_a_float(mocked, client):
    mocked.get(TASK_URL, json={"id": TASK_ID, "status": "RUNNING", "progress": 1})

    state = client.get_task(TASK_ID)

    assert state.progress == 1.0
    assert isinstance(state.progress, float)


def test_get_task_returns_output_urls_on_success(mocked, client):
    output = ["https://dnznrvs05pmza.cloudfront.net/video.mp4?_jwt=abc"]
    mocked.get(
        TASK_URL, json={"id": TASK_ID, "createdAt": "2026-08-26T06:30:33.796Z", "status": "SUCCEEDED", "output": output}
    )

    state = client.get_task(TASK_ID)

    assert state.status == catalog.SUCCEEDED
    assert state.output == output


def test_get_task_returns_failure_and_failure_code(mocked, client):
    mocked.get(
        TASK_URL,
        json={
            "id": TASK_ID,
            "createdAt": "2026-08-26T06:30:33.796Z",
            "status": "FAILED",
            "failure": "Input text was flagged",
            "failureCode": "SAFETY.INPUT.TEXT",
        },
    )

    state = client.get_task(TASK_ID)

    assert state.status == catalog.FAILED
    assert state.failure == "Input text was flagged"
    assert state.failure_code == "SAFETY.INPUT.TEXT"


def test_get_task_passes_an_unknown_status_through_untouched(mocked, client):
    mocked.get(TASK_URL, json={"id": TASK_ID, "status": "ASSET_PREPROCESSING", "progress": 0.1})

    state = client.get_task(TASK_ID)

    assert state.status == "ASSET_PREPROCESSING"
    assert state.progress == pytest.approx(0.1)


# --- what a task costs ------------------------------------------------------------------------


def test_create_returns_runways_estimate(mocked, client):
    mocked.post(TEXT_URL, json={"id": TASK_ID, "estimatedCost": {"credits": 60}})
    created = client.create_video(endpoint="text_to_video", payload=text_payload())
    assert created == runway.CreatedTask(id=TASK_ID, estimated_credits=60)


@pytest.mark.parametrize(
    "cost", [None, 60, "60", {}, {"credits": "60"}, {"credits": -1}, {"credits": True}, {"credits": -0.5}, [60]]
)
def test_a_missing_or_malformed_estimate_on_create_is_none_and_logged(mocked, client, caplog, cost):
    body = {"id": TASK_ID} if cost is None else {"id": TASK_ID, "estimatedCost": cost}
    mocked.post(TEXT_URL, json=body)
    with caplog.at_level(logging.WARNING, logger="videos.runway"):
        created = client.create_video(endpoint="text_to_video", payload=text_payload())
    assert created == runway.CreatedTask(id=TASK_ID, estimated_credits=None)
    assert f"Runway task {TASK_ID}: estimatedCost.credits missing or malformed" in caplog.text


def test_a_fractional_estimate_is_rounded_up_as_runwayml_524_allows_one(mocked, client):
    mocked.post(TEXT_URL, json={"id": TASK_ID, "estimatedCost": {"credits": 60.2}})
    assert client.create_video(endpoint="text_to_video", payload=text_payload()).estimated_credits == 61


def test_a_fractional_cost_is_malformed_a_cost_is_whole_credits(mocked, client, caplog):
    mocked.get(TASK_URL, json={"id": TASK_ID, "status": "SUCCEEDED", "output": [], "cost": {"credits": 12.5}})
    with caplog.at_level(logging.WARNING, logger="videos.runway"):
        assert client.get_task(TASK_ID).cost_credits is None
    assert "cost.credits missing or malformed" in caplog.text


def test_a_whole_float_of_credits_is_read_as_credits(mocked, client):
    mocked.post(TEXT_URL, json={"id": TASK_ID, "estimatedCost": {"credits": 60.0}})
    assert client.create_video(endpoint="text_to_video", payload=text_payload()).estimated_credits == 60


@pytest.mark.parametrize("status", ["PENDING", "THROTTLED", "RUNNING"])
def test_an_unfinished_task_carries_its_estimate_and_no_cost(mocked, client, status):
    mocked.get(TASK_URL, json={"id": TASK_ID, "status": status, "estimatedCost": {"credits": 60}})
    state = client.get_task(TASK_ID)
    assert (state.estimated_credits, state.cost_credits) == (60, None)


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED", "CANCELLED"])
def test_a_finished_task_carries_what_runway_charged(mocked, client, status):
    mocked.get(TASK_URL, json={"id": TASK_ID, "status": status, "output": ["https://x/a.mp4"], "cost": {"credits": 0}})
    state = client.get_task(TASK_ID)
    assert (state.estimated_credits, state.cost_credits) == (None, 0)


def test_a_finished_task_without_a_usable_cost_is_none_and_logged(mocked, client, caplog):
    mocked.get(TASK_URL, json={"id": TASK_ID, "status": "SUCCEEDED", "output": ["https://x/a.mp4"], "cost": "a lot"})
    with caplog.at_level(logging.WARNING, logger="videos.runway"):
        state = client.get_task(TASK_ID)
    assert state.cost_credits is None
    assert "cost.credits missing or malformed ('a lot')" in caplog.text


def test_get_task_ignores_output_entries_that_are_not_urls(mocked, client):
    mocked.get(TASK_URL, json={"id": TASK_ID, "status": "SUCCEEDED", "output": ["https://x.test/a.mp4", None, 3]})

    assert client.get_task(TASK_ID).output == ["https://x.test/a.mp4"]


# --- deleting a task -------------------------------------------------------------------------


def test_delete_task_sends_delete_and_accepts_204(mocked, client):
    mocked.delete(TASK_URL, status=204)

    assert client.delete_task(TASK_ID) is None

    request = mocked.calls[0].request
    assert request.method == "DELETE"
    assert request.url == TASK_URL
    assert_runway_headers(request)


def test_delete_task_treats_404_as_already_done(mocked, client):
    mocked.delete(TASK_URL, status=404, json={"error": "Task not found"})

    assert client.delete_task(TASK_ID) is None


def test_delete_task_raises_temporary_error_on_500(mocked, client):
    mocked.delete(TASK_URL, status=500)

    with pytest.raises(runway.RunwayError) as caught:
        client.delete_task(TASK_ID)

    assert caught.value.permanent is False
    assert caught.value.status == 500


def test_delete_task_raises_permanent_error_on_401(mocked, client):
    mocked.delete(TASK_URL, status=401, json={"error": "Invalid API key"})

    with pytest.raises(runway.RunwayError) as caught:
        client.delete_task(TASK_ID)

    assert caught.value.permanent is True
    assert caught.value.status == 401


# --- organization ----------------------------------------------------------------------------


def test_get_organization_returns_runways_answer(mocked, client):
    body = {
        "creditBalance": 1000,
        "tier": {"maxMonthlyCreditSpend": 10000, "models": {"gen4.5": {"maxConcurrentGenerations": 2}}},
        "usage": {"models": {"gen4.5": {"dailyGenerations": 3}}},
    }
    mocked.get(f"{BASE}/v1/organization", json=body)

    assert client.get_organization() == body

    request = mocked.calls[0].request
    assert request.method == "GET"
    assert request.url == f"{BASE}/v1/organization"
    assert_runway_headers(request)


def test_get_organization_rejects_an_answer_that_is_not_an_object(mocked, client):
    mocked.get(f"{BASE}/v1/organization", json=[1, 2])

    with pytest.raises(runway.RunwayError) as caught:
        client.get_organization()

    assert caught.value.permanent is False


# --- timeouts --------------------------------------------------------------------------------


def test_every_call_passes_the_connect_and_read_timeout(mocked, client):
    mocked.post(TEXT_URL, json={"id": TASK_ID})
    mocked.post(IMAGE_URL, json={"id": TASK_ID})
    mocked.get(TASK_URL, json={"id": TASK_ID, "status": "RUNNING"})
    mocked.delete(TASK_URL, status=204)
    mocked.get(f"{BASE}/v1/organization", json={"creditBalance": 1})

    client.create_video(endpoint="text_to_video", payload=text_payload())
    client.create_video(
        endpoint="image_to_video",
        payload=build(model="gen4_turbo", prompt_text="", ratio="1280:720", duration=5, seed=1, prompt_image=DATA_URI),
    )
    client.get_task(TASK_ID)
    client.delete_task(TASK_ID)
    client.get_organization()

    assert len(mocked.calls) == 5
    for call in mocked.calls:
        assert call.request.req_kwargs["timeout"] == runway.DEFAULT_TIMEOUT
    connect, read = runway.DEFAULT_TIMEOUT
    assert 0 < connect <= read


# --- HTTP errors -----------------------------------------------------------------------------


def test_400_is_permanent_and_carries_runways_words(mocked, client):
    mocked.post(
        TEXT_URL,
        status=400,
        json={
            "error": "Validation of body failed",
            "issues": [{"path": ["promptText"], "message": "String must contain at most 1000 character(s)"}],
            "docUrl": "https://docs.dev.runwayml.com/errors/",
        },
    )

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    error = caught.value
    assert error.permanent is True
    assert error.status == 400
    assert error.may_have_created is False
    assert "Validation of body failed" in str(error)
    assert "promptText" in str(error)
    assert "String must contain at most 1000 character(s)" in str(error)


def test_400_with_a_huge_body_gives_a_bounded_message(mocked, client):
    mocked.post(TEXT_URL, status=400, json={"error": "x" * 10_000})

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert len(str(caught.value)) <= runway.MESSAGE_MAX


def test_401_is_permanent_and_says_the_key_was_rejected(mocked, client):
    mocked.get(TASK_URL, status=401, json={"error": "Invalid API key"})

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.permanent is True
    assert caught.value.status == 401
    assert str(caught.value) == "Runway rejected the API key"


def test_404_on_get_is_permanent(mocked, client):
    mocked.get(TASK_URL, status=404, json={"error": "Task not found"})

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.permanent is True
    assert caught.value.status == 404


def test_429_with_retry_after_seconds_is_temporary(mocked, client):
    mocked.post(
        TEXT_URL, status=429, json={"error": "You have exceeded your daily task limit"}, headers={"Retry-After": "30"}
    )

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    error = caught.value
    assert error.permanent is False
    assert error.status == 429
    assert error.retry_after == 30.0
    assert error.may_have_created is False
    assert "daily task limit" in str(error)


def test_429_with_retry_after_http_date_is_temporary(mocked, client):
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    mocked.get(TASK_URL, status=429, headers={"Retry-After": when})

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    error = caught.value
    assert error.permanent is False
    assert error.status == 429
    # The date has one-second resolution and the test takes a moment.
    assert 110 <= error.retry_after <= 121


def test_429_with_a_retry_after_date_in_the_past_waits_zero(mocked, client):
    mocked.get(TASK_URL, status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.retry_after == 0.0


def test_429_without_retry_after_has_none(mocked, client):
    mocked.get(TASK_URL, status=429)

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.permanent is False
    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_temporary(mocked, client, status):
    mocked.get(TASK_URL, status=status)

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.permanent is False
    assert caught.value.status == status
    assert str(status) in str(caught.value)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_server_error_html_page_stays_out_of_the_message(mocked, client, status):
    mocked.post(TEXT_URL, status=status, body=HTML_PAGE, content_type="text/html")

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    message = str(caught.value)
    assert caught.value.permanent is False
    assert "<" not in message
    assert "html" not in message.lower()
    assert "nginx" not in message


@pytest.mark.parametrize(
    ("status", "may_have_created"), [(429, False), (503, False), (500, True), (502, True), (504, True)]
)
def test_only_429_and_503_on_a_create_say_for_sure_that_no_task_was_made(mocked, client, status, may_have_created):
    mocked.post(TEXT_URL, status=status)

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert caught.value.permanent is False
    assert caught.value.may_have_created is may_have_created


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_on_a_get_created_nothing(mocked, client, status):
    mocked.get(TASK_URL, status=status)

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.may_have_created is False


@pytest.mark.parametrize("value", ["inf", "nan", "99999999"])
def test_an_unreasonable_retry_after_is_capped(mocked, client, value):
    mocked.get(TASK_URL, status=429, headers={"Retry-After": value})

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.retry_after is None or 0 <= caught.value.retry_after <= runway.RETRY_AFTER_MAX


def test_other_4xx_with_html_is_permanent_without_the_html(mocked, client):
    mocked.get(TASK_URL, status=403, body="<html><body>Forbidden by WAF</body></html>", content_type="text/html")

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.permanent is True
    assert caught.value.status == 403
    assert "<" not in str(caught.value)
    assert "WAF" not in str(caught.value)


def test_503_honours_retry_after(mocked, client):
    mocked.get(TASK_URL, status=503, headers={"Retry-After": "7"})

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.retry_after == 7.0


# --- network failures ------------------------------------------------------------------------


def test_connection_refused_on_post_is_temporary_and_created_nothing(mocked, client):
    mocked.post(TEXT_URL, body=refused_connection(TEXT_URL))

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    error = caught.value
    assert error.permanent is False
    assert error.may_have_created is False
    assert error.status is None


def test_name_resolution_failure_on_post_created_nothing(mocked, client):
    reason = NameResolutionError("runway.test", None, OSError("Name or service not known"))
    mocked.post(TEXT_URL, body=requests.ConnectionError(MaxRetryError(None, TEXT_URL, reason)))

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert caught.value.permanent is False
    assert caught.value.may_have_created is False


def test_connection_refused_on_get_is_temporary(mocked, client):
    mocked.get(TASK_URL, body=refused_connection(TASK_URL))

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.permanent is False
    assert caught.value.may_have_created is False


def test_connect_timeout_on_post_created_nothing(mocked, client):
    mocked.post(TEXT_URL, body=requests.ConnectTimeout("connect timed out"))

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert caught.value.permanent is False
    assert caught.value.may_have_created is False
    assert "timed out" in str(caught.value)


def test_read_timeout_on_post_may_have_created_a_task(mocked, client):
    mocked.post(TEXT_URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert caught.value.permanent is False
    assert caught.value.may_have_created is True
    assert len(mocked.calls) == 1


def test_connection_dropped_after_sending_a_post_may_have_created_a_task(mocked, client):
    dropped = requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))
    mocked.post(TEXT_URL, body=dropped)

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert caught.value.permanent is False
    assert caught.value.may_have_created is True


def test_read_timeout_on_get_is_temporary_and_created_nothing(mocked, client):
    mocked.get(TASK_URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.permanent is False
    assert caught.value.may_have_created is False


# --- malformed answers -----------------------------------------------------------------------


def test_create_with_a_non_json_200_may_have_created_a_task(mocked, client):
    mocked.post(TEXT_URL, status=200, body="OK then", content_type="text/plain")

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert caught.value.permanent is False
    assert caught.value.may_have_created is True


def test_create_with_an_html_200_may_have_created_a_task_and_hides_the_html(mocked, client):
    mocked.post(TEXT_URL, status=200, body="<html><body>Captive portal</body></html>", content_type="text/html")

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert caught.value.permanent is False
    assert caught.value.may_have_created is True
    assert "<" not in str(caught.value)
    assert "Captive" not in str(caught.value)


def test_create_with_an_empty_200_may_have_created_a_task(mocked, client):
    mocked.post(TEXT_URL, status=200, body="")

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert caught.value.permanent is False
    assert caught.value.may_have_created is True


@pytest.mark.parametrize("body", [{"estimatedCost": 50}, {"id": ""}, {"id": None}, {"id": 12345}])
def test_create_without_a_task_id_may_have_created_a_task(mocked, client, body):
    mocked.post(TEXT_URL, json=body)

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert caught.value.permanent is False
    assert caught.value.may_have_created is True


def test_create_with_a_json_list_may_have_created_a_task(mocked, client):
    mocked.post(TEXT_URL, json=[{"id": TASK_ID}])

    with pytest.raises(runway.RunwayError) as caught:
        client.create_video(endpoint="text_to_video", payload=text_payload())

    assert caught.value.permanent is False
    assert caught.value.may_have_created is True


def test_get_task_without_status_is_a_temporary_error(mocked, client):
    mocked.get(TASK_URL, json={"id": TASK_ID, "progress": 0.5})

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.permanent is False
    assert caught.value.may_have_created is False


@pytest.mark.parametrize(
    "body",
    [
        [{"id": TASK_ID, "status": "RUNNING"}],
        "RUNNING",
        None,
        {"id": TASK_ID, "status": None},
        {"id": TASK_ID, "status": ""},
        {"id": TASK_ID, "status": 3},
    ],
)
def test_get_task_with_an_unusable_json_answer_is_a_temporary_error(mocked, client, body):
    mocked.get(TASK_URL, body=json.dumps(body), content_type="application/json")

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.permanent is False


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("not json at all", "text/plain"), ("<html><body>Oops</body></html>", "text/html"), ("", "application/json")],
)
def test_get_task_with_a_non_json_200_is_a_temporary_error(mocked, client, body, content_type):
    mocked.get(TASK_URL, status=200, body=body, content_type=content_type)

    with pytest.raises(runway.RunwayError) as caught:
        client.get_task(TASK_ID)

    assert caught.value.permanent is False
    assert caught.value.may_have_created is False
    assert "<" not in str(caught.value)


# --- secrets ---------------------------------------------------------------------------------


def test_missing_api_key_is_a_permanent_error(settings):
    settings.RUNWAY_API_KEY = ""

    with pytest.raises(runway.RunwayError) as caught:
        runway.get_client()

    assert caught.value.permanent is True
    assert str(caught.value) == "Runway API key is not configured"


def test_each_thread_reuses_one_client_until_the_settings_change(settings):
    first = runway.get_client()
    assert runway.get_client() is first  # its connections stay open from one step to the next
    settings.RUNWAY_API_BASE_URL = "https://elsewhere.test"
    moved = runway.get_client()
    assert moved is not first and moved.base_url == "https://elsewhere.test"
    settings.RUNWAY_API_KEY = "key_" + "0" * 128
    assert runway.get_client() is not moved

    other_thread = []
    thread = threading.Thread(target=lambda: other_thread.append(runway.get_client()))
    thread.start()
    thread.join()
    assert other_thread[0] is not runway.get_client()


def test_a_create_goes_out_on_a_new_connection_and_polls_reuse_theirs(settings):
    with RunwaySimulator(task_seconds=60) as sim:
        client = runway.RunwayClient(api_key=settings.RUNWAY_API_KEY, base_url=sim.base_url, version=API_VERSION)
        pools = client.session.get_adapter(sim.base_url).poolmanager
        task_id = client.create_video(endpoint="text_to_video", payload=text_payload()).id
        [key] = pools.pools.keys()
        first = pools.pools[key]
        client.get_task(task_id)
        client.get_task(task_id)
        assert first.num_connections == 1  # the two polls went on the create's connection

        client.create_video(endpoint="text_to_video", payload=text_payload())
        second = pools.pools[key]
        assert second is not first and second.num_connections == 1  # a new connection, not the polls'


RUNWAY = "https://api.dev.runwayml.com"


def test_proxy_settings_come_from_the_environment_once_and_netrc_is_never_read(monkeypatch, tmp_path):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.dev.runwayml.com login someone password not-our-key\n")
    monkeypatch.setenv("NETRC", str(netrc))
    client = runway.RunwayClient(api_key="key_" + "1" * 128, base_url=RUNWAY, version=API_VERSION)
    assert client.session.proxies["https"] == "http://proxy.test:3128"
    prepared = client.session.prepare_request(requests.Request("GET", RUNWAY + "/v1/organization"))
    assert prepared.headers["Authorization"] == "Bearer key_" + "1" * 128


def test_the_key_is_not_in_the_clients_repr(client):
    assert settings.RUNWAY_API_KEY not in repr(client)
    assert settings.RUNWAY_API_KEY not in str(client)
    assert settings.RUNWAY_API_KEY[4:20] not in repr(client)


def test_the_key_is_sent_only_in_the_authorization_header(mocked, client):
    mocked.post(TEXT_URL, json={"id": TASK_ID})

    client.create_video(endpoint="text_to_video", payload=text_payload())

    request = mocked.calls[0].request
    assert settings.RUNWAY_API_KEY not in request.url
    assert settings.RUNWAY_API_KEY not in request.body.decode()


def test_the_key_never_reaches_errors_or_logs(mocked, client, caplog):
    key = settings.RUNWAY_API_KEY
    mocked.get(TASK_URL, status=401, json={"error": "Invalid API key"})
    mocked.post(TEXT_URL, status=400, json={"error": "Validation of body failed", "issues": []})
    mocked.post(IMAGE_URL, body=requests.ReadTimeout(f"read timed out for Bearer {key}"))
    mocked.delete(TASK_URL, body=refused_connection(TASK_URL))
    mocked.get(f"{BASE}/v1/organization", status=503, body=HTML_PAGE)
    calls = [
        lambda: client.get_task(TASK_ID),
        lambda: client.create_video(endpoint="text_to_video", payload=text_payload()),
        lambda: client.create_video(endpoint="image_to_video", payload=text_payload(prompt_image=DATA_URI)),
        lambda: client.delete_task(TASK_ID),
        lambda: client.get_organization(),
    ]
    errors = []

    with caplog.at_level(logging.DEBUG):
        for call in calls:
            with pytest.raises(runway.RunwayError) as caught:
                call()
            errors.append(caught.value)

    assert caplog.records, "the client logs its calls"
    for error in errors:
        assert key not in str(error)
        assert key not in repr(error)
        assert key not in "".join(traceback.format_exception(error))
    log_text = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert key not in log_text
    assert key[4:36] not in log_text


def test_a_download_that_outlasts_its_total_time_is_a_temporary_error(tmp_path):
    # The worker's threads cannot be stopped by Celery's time limits, so the download bounds itself.
    with RunwaySimulator() as sim, (tmp_path / "video.mp4").open("wb") as destination:
        url = sim.output_url("0b5c5f4e-0000-4000-8000-000000000000")
        with pytest.raises(runway.RunwayError) as caught:
            runway.download_output(url, destination, max_bytes=10**9, total_seconds=0.0)

    assert not caught.value.permanent
    assert "took longer than 0 s" in str(caught.value)


def test_downloads_keep_their_connection_carry_no_key_and_take_the_proxy_for_their_host(monkeypatch, tmp_path):
    """A thread's downloads share one session: the next video comes over the same connection, no
    Authorization header goes to the output host, and the environment's proxy settings apply per
    host (read once each: NO_PROXY still exempts a host)."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setattr(runway, "_per_thread", threading.local())  # this test's own sessions
    with RunwaySimulator() as sim:
        task = "0b5c5f4e-0000-4000-8000-000000000000"
        for name in ("first.mp4", "second.mp4"):
            with (tmp_path / name).open("wb") as destination:
                assert runway.download_output(sim.output_url(task), destination, max_bytes=10**9) > 0
        downloads = [request for request in sim.requests if request.path.startswith("/_sim/outputs/")]
    session = runway._per_thread.downloads
    assert "Authorization" not in session.headers
    assert [request.headers.get("Authorization") for request in downloads] == [None, None]
    pools = session.get_adapter("http://").poolmanager.pools
    [pool] = [pools[key] for key in pools.keys()]  # noqa: SIM118 (urllib3's container cannot be iterated)
    assert pool.num_connections == 1  # the second video came over the first one's connection
    assert runway._download_session("https://cdn.test/a.mp4").proxies["https"] == "http://proxy.test:3128"
    assert runway._download_session("http://127.0.0.1:1/a.mp4").proxies == {}
