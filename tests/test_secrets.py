"""The Runway key (random per run, see tests/settings.py) never leaks: logs, pages, reprs, exceptions."""

import json
import logging
import sys
import traceback

import pytest
import requests
import responses
from django.conf import settings
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from tests.conftest import MP4, run_next_step
from videos.catalog import VideoRequest
from videos.models import Status, VideoGeneration
from videos.runway import RunwayError, get_client
from videos.services import actions, creation, steps

BASE = "https://runway.test"
TASK_ID = "acf9ba3d-a513-42c9-a646-96e8bc97c691"
OTHER_TASK_ID = "0b9f8a8e-1f7c-4d6e-9a55-3c2f2b1d7e01"
TASK_URL = f"{BASE}/v1/tasks/{TASK_ID}"

pytestmark = pytest.mark.django_db


def assert_no_key(text: str) -> None:
    key = settings.RUNWAY_API_KEY
    assert key.startswith("key_") and len(key) > 40  # the check below means something
    for fragment in (key, key[4:36], key[-32:]):
        assert fragment not in text


def run_step(job: VideoGeneration) -> VideoGeneration:
    return run_next_step(job)


def task_answer(task_id: str, status: str, **extra) -> str:
    return json.dumps({"id": task_id, "createdAt": "2026-08-26T06:30:33.796Z", "status": status, **extra})


def leaking(exc_type: type[requests.RequestException]) -> requests.RequestException:
    """What a careless library might raise: the request's Authorization header in the message."""
    return exc_type(f"failed sending headers {{'Authorization': 'Bearer {settings.RUNWAY_API_KEY}'}}")


def everything_said(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))])


# --- Logs -----------------------------------------------------------------------------------


@responses.activate
def test_key_never_appears_in_any_log_record_of_a_whole_flow(user, broker, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="videos")
    responses.post(f"{BASE}/v1/text_to_video", body=task_answer(TASK_ID, "PENDING"))

    with django_capture_on_commit_callbacks(execute=True):
        job = creation.generation_create(
            owner=user, request=VideoRequest(prompt="A serene mountain landscape at sunset")
        )
    job = run_step(job)
    responses.get(TASK_URL, body=task_answer(TASK_ID, "RUNNING", progress=0.5))
    job = run_step(job)
    responses.replace(responses.GET, TASK_URL, status=500, body="<html>oops</html>")
    job = run_step(job)
    responses.replace(
        responses.GET, TASK_URL, body=task_answer(TASK_ID, "SUCCEEDED", output=["https://cdn.test/v.mp4"])
    )
    responses.get("https://cdn.test/v.mp4", body=MP4)
    job = run_step(job)  # the poll that hears it is done, then storing our copy (and its poster)
    assert job.status == Status.SUCCEEDED

    # Another job: submitted, then cancelled by its owner; the worker deletes it at Runway.
    responses.replace(responses.POST, f"{BASE}/v1/text_to_video", body=task_answer(OTHER_TASK_ID, "PENDING"))
    responses.get(f"{BASE}/v1/tasks/{OTHER_TASK_ID}", body=task_answer(OTHER_TASK_ID, "PENDING"))
    responses.delete(f"{BASE}/v1/tasks/{OTHER_TASK_ID}", status=204)
    with django_capture_on_commit_callbacks(execute=True):
        other = creation.generation_create(owner=user, request=VideoRequest(prompt="Waves at night"))
    other = run_step(other)
    other = run_step(actions.generation_cancel(generation_id=other.pk))
    assert (other.status, other.cancel_pending) == (Status.CANCELLED, False)

    # And one whose create breaks with the key in the library's message.
    responses.replace(responses.POST, f"{BASE}/v1/text_to_video", body=leaking(requests.ConnectionError))
    with django_capture_on_commit_callbacks(execute=True):
        third = creation.generation_create(owner=user, request=VideoRequest(prompt="Rain"))
    third = run_step(third)
    assert third.failure_code == steps.UNCONFIRMED_CODE

    methods = [c.request.method for c in responses.calls]
    assert methods == ["POST", "GET", "GET", "GET", "GET", "POST", "GET", "DELETE", "POST"]
    api_calls = [c for c in responses.calls if c.request.url.startswith(BASE)]
    assert all(c.request.headers["Authorization"] == f"Bearer {settings.RUNWAY_API_KEY}" for c in api_calls)
    # The video's download goes to another host, which never gets the key.
    [download] = [c for c in responses.calls if not c.request.url.startswith(BASE)]
    assert "Authorization" not in download.request.headers
    assert len(caplog.records) > 5  # the flow was logged at all
    for record in caplog.records:
        assert_no_key(record.getMessage())
        assert_no_key(repr(record.args))
        assert_no_key(record.exc_text or "")
    assert_no_key(caplog.text)
    assert_no_key(repr(list(VideoGeneration.objects.values())))


# --- Pages ----------------------------------------------------------------------------------


@pytest.fixture
def jobs(make_job):
    return [
        make_job(status=Status.SUCCEEDED, runway_task_id=TASK_ID, output_url="https://cdn.test/v.mp4", progress=100),
        make_job(status=Status.FAILED, message="Runway rejected the API key", last_error="Runway rejected the API key"),
        make_job(status=Status.RUNNING, runway_task_id=OTHER_TASK_ID, progress=30),
    ]


def test_key_never_appears_in_the_users_pages(client, user, jobs):
    client.force_login(user)
    pages = [client.get("/videos/"), client.get("/videos/?page=1")]
    for job in jobs:
        pages += [client.get(f"/videos/{job.pk}/"), client.get(f"/videos/{job.pk}/status/")]
    pages.append(client.get("/videos/status/", {"ids": ",".join(str(job.pk) for job in jobs)}))
    pages.append(client.post("/videos/", {"prompt": ""}, HTTP_ACCEPT="application/json"))

    assert [p.status_code for p in pages] == [200] * (len(pages) - 1) + [400]
    for page in pages:
        assert_no_key(page.content.decode())


def test_key_never_appears_in_the_admin(client, admin_user, jobs):
    client.force_login(admin_user)
    pages = [client.get("/admin/"), client.get("/admin/videos/videogeneration/")]
    pages += [client.get(f"/admin/videos/videogeneration/{job.pk}/change/") for job in jobs]

    assert all(p.status_code == 200 for p in pages)
    for page in pages:
        assert_no_key(page.content.decode())


def test_key_never_appears_on_the_login_page(client):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert_no_key(page.content.decode())


def test_key_is_masked_on_djangos_error_report():
    request = RequestFactory().get("/videos/")
    try:
        raise ValueError("something broke")
    except ValueError:
        report = ExceptionReporter(request, *sys.exc_info())
        text = report.get_traceback_html() + report.get_traceback_text()
    assert "RUNWAY_API_KEY" in text  # the settings are listed, the value is not
    assert_no_key(text)


def error_report_of(call) -> str:
    """Django's debug error page (frames with their local variables) for what `call` raises."""
    try:
        call()
    except RunwayError:
        report = ExceptionReporter(RequestFactory().get("/videos/"), *sys.exc_info())
        return report.get_traceback_html() + report.get_traceback_text()
    raise AssertionError("no RunwayError")


@pytest.mark.parametrize("answer", ["401", "connection error with the key inside"])
@responses.activate
def test_key_is_not_on_djangos_error_report_of_a_runway_error(answer):
    if answer == "401":
        responses.get(TASK_URL, status=401, json={"error": "Unauthorized"})
    else:
        responses.get(TASK_URL, body=leaking(requests.ConnectionError))
    assert_no_key(error_report_of(lambda: get_client().get_task(TASK_ID)))


# --- Reprs and exceptions -------------------------------------------------------------------


def test_key_is_not_in_the_clients_repr_or_str():
    client = get_client()
    assert_no_key(repr(client))
    assert_no_key(str(client))


def test_key_is_not_in_a_jobs_repr_or_str(make_job):
    job = make_job(status=Status.RUNNING, runway_task_id=TASK_ID)
    assert_no_key(repr(job))
    assert_no_key(str(job))


@responses.activate
def test_key_is_not_in_a_401_error():
    responses.post(f"{BASE}/v1/text_to_video", status=401, json={"error": "Unauthorized"})
    with pytest.raises(RunwayError) as excinfo:
        get_client().create_video(endpoint="text_to_video", payload={"model": "gen4.5"})
    assert excinfo.value.status == 401
    assert_no_key(everything_said(excinfo.value))


@responses.activate
def test_key_is_not_in_a_500_error():
    responses.get(TASK_URL, status=500, body="<html>Internal Server Error</html>")
    with pytest.raises(RunwayError) as excinfo:
        get_client().get_task(TASK_ID)
    assert excinfo.value.status == 500
    assert_no_key(everything_said(excinfo.value))


@responses.activate
def test_key_is_not_in_a_500_error_that_echoes_the_request():
    # A proxy that echoes the request headers in its error page.
    responses.get(TASK_URL, status=500, json={"error": f"Authorization: Bearer {settings.RUNWAY_API_KEY}"})
    with pytest.raises(RunwayError) as excinfo:
        get_client().get_task(TASK_ID)
    assert_no_key(everything_said(excinfo.value))


@pytest.mark.parametrize(
    ("exc_type", "call"),
    [
        (requests.ReadTimeout, "create"),
        (requests.ConnectTimeout, "get"),
        (requests.ConnectionError, "create"),
        (requests.ConnectionError, "get"),
        (requests.ConnectionError, "delete"),
        (requests.RequestException, "get"),
    ],
)
@responses.activate
def test_key_is_not_in_the_error_when_requests_raises_with_the_key_inside(exc_type, call):
    responses.post(f"{BASE}/v1/text_to_video", body=leaking(exc_type))
    responses.get(TASK_URL, body=leaking(exc_type))
    responses.delete(TASK_URL, body=leaking(exc_type))
    client = get_client()
    actions = {
        "create": lambda: client.create_video(endpoint="text_to_video", payload={"model": "gen4.5"}),
        "get": lambda: client.get_task(TASK_ID),
        "delete": lambda: client.delete_task(TASK_ID),
    }

    with pytest.raises(RunwayError) as excinfo:
        actions[call]()

    assert "Could not reach Runway" in excinfo.value.message
    assert_no_key(everything_said(excinfo.value))
    assert_no_key(excinfo.value.message)


@responses.activate
def test_key_is_not_stored_on_the_job_when_requests_raises_with_the_key_inside(make_job, broker):
    responses.get(TASK_URL, body=leaking(requests.ConnectionError))
    job = run_step(make_job(status=Status.RUNNING, runway_task_id=TASK_ID, step=1))
    assert "Could not reach Runway" in job.last_error
    assert_no_key(repr(VideoGeneration.objects.filter(pk=job.pk).values().get()))
