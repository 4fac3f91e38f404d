"""Runway's API served by us (/v1/..., api/v1.py): keys, Runway's shapes, one job per request
however often it is sent, tasks that are ours, uploads, errors that are never a 500.

Through Django's test client, without a worker: tests/test_api_sdk.py drives the same endpoints
with Runway's official SDK, a real worker and the simulator."""

import base64
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import OperationalError
from django.utils import timezone

from api import links, services
from api.models import ApiCreate, ApiUpload
from tests.conftest import MP4, PNG, clip
from videos.models import Origin, SpendEntry, Status, UserBudget, VideoGeneration

pytestmark = pytest.mark.django_db
VERSION = "2024-11-06"
TEXT = {"model": "gen4.5", "promptText": "A lighthouse in a storm", "ratio": "1280:720", "duration": 5}


@pytest.fixture
def key(user, settings):
    settings.RUNWAY_API_KEY = "configured"  # the product has a Runway key: jobs are queued, not failed
    return services.api_key_create(user=user, name="script").key


def headers(key: str, **more: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_X_RUNWAY_VERSION": VERSION, **more}


def post(client, key, path, body, **more):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(path, data, content_type="application/json", **headers(key, **more))


def data_uri(content: bytes, kind: str) -> str:
    return f"data:{kind};base64,{base64.b64encode(content).decode()}"


# -- keys and headers -------------------------------------------------------------------------


def test_a_create_makes_one_job_of_the_owner_marked_as_made_through_the_api(client, key, user):
    response = post(client, key, "/v1/text_to_video", TEXT)

    assert response.status_code == 200, response.content
    job = VideoGeneration.objects.get()
    assert response.json() == {"id": str(job.public_id), "estimatedCost": {"credits": 60}}
    assert job.owner == user and job.origin == Origin.API and job.status == Status.QUEUED
    assert (job.model, job.prompt, job.ratio, job.duration) == ("gen4.5", TEXT["promptText"], "1280:720", 5)
    assert str(job.public_id) != job.runway_task_id
    assert ApiCreate.objects.get().generation == job
    assert SpendEntry.objects.get(generation=job).credits == 60  # reserved in the ledger, as the form's


@pytest.mark.parametrize(
    "authorization, status, message",
    [
        ("", 401, "Missing API key"),
        ("Basic abc", 401, "Missing API key"),
        ("Bearer rwv_00000000_" + "x" * 43, 401, "Invalid API key."),
        ("Bearer key_" + "0" * 128, 401, "Invalid API key."),  # a Runway key is not one of ours
    ],
)
def test_a_missing_or_wrong_key_gets_runways_401_and_makes_nothing(client, key, authorization, status, message):
    response = client.post(
        "/v1/text_to_video",
        json.dumps(TEXT),
        content_type="application/json",
        HTTP_AUTHORIZATION=authorization,
        HTTP_X_RUNWAY_VERSION=VERSION,
    )
    assert response.status_code == status
    assert message in response.json()["error"]
    assert not VideoGeneration.objects.exists()


def test_a_revoked_key_or_an_inactive_users_key_gets_401(client, key, user):
    services.api_key_authenticate(key).revoke()
    assert post(client, key, "/v1/text_to_video", TEXT).status_code == 401
    other = services.api_key_create(user=user).key
    user.is_active = False
    user.save()
    assert client.get("/v1/organization", **headers(other)).status_code == 401


@pytest.mark.parametrize("version", ["", "2024-09-13", "2024-11-06 "])
def test_a_wrong_runway_version_header_is_refused_as_runway_does(client, key, version):
    response = post(client, key, "/v1/text_to_video", TEXT, HTTP_X_RUNWAY_VERSION=version)
    assert response.status_code == 400
    assert "X-Runway-Version" in response.json()["error"]
    assert not VideoGeneration.objects.exists()


def test_a_key_past_its_rate_limit_gets_429_with_retry_after(client, key, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    answers = [client.get("/v1/organization", **headers(key)) for _ in range(4)]

    assert [a.status_code for a in answers] in ([200, 200, 200, 429], [200, 200, 200, 200])  # a new minute resets it
    if answers[-1].status_code == 429:
        assert 1 <= int(answers[-1]["Retry-After"]) <= 60
        assert "3 a minute" in answers[-1].json()["error"]


def test_the_rate_limit_counts_each_key_on_its_own(client, key, user, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    other = services.api_key_create(user=user).key
    assert client.get("/v1/organization", **headers(key)).status_code == 200
    assert client.get("/v1/organization", **headers(other)).status_code == 200


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, body, where, words",
    [
        ("/v1/text_to_video", b"{not json", [], "Invalid JSON"),
        ("/v1/text_to_video", [1, 2], [], "Expected object, received array"),
        ("/v1/text_to_video", {**TEXT, "model": "gen5"}, ["model"], "'gen4.5'"),
        ("/v1/text_to_video", {**TEXT, "model": 7}, ["model"], "Invalid discriminator"),
        ("/v1/text_to_video", {k: v for k, v in TEXT.items() if k != "ratio"}, ["ratio"], "Required"),
        ("/v1/text_to_video", {**TEXT, "ratio": "1:1"}, ["ratio"], "1280:720"),
        ("/v1/text_to_video", {**TEXT, "promptText": 12}, ["promptText"], "Expected string, received number"),
        ("/v1/text_to_video", {**TEXT, "promptText": "x" * 1001}, ["promptText"], "1000"),
        ("/v1/text_to_video", {**TEXT, "duration": "5"}, ["duration"], ""),
        ("/v1/text_to_video", {**TEXT, "contentModeration": {}}, ["contentModeration"], "Unrecognized key"),
        ("/v1/text_to_video", {**TEXT, "promptImage": "https://example.com/a.png"}, ["promptImage"], "Unrecognized"),
        ("/v1/image_to_video", {"model": "gen4_turbo", "ratio": "1280:720"}, ["promptImage"], "Required"),
        (
            "/v1/image_to_video",
            {"model": "gen4_turbo", "ratio": "1280:720", "promptImage": "ftp://x"},
            ["promptImage"],
            "",
        ),
        (
            "/v1/image_to_video",
            {"model": "gen4_turbo", "ratio": "1280:720", "promptImage": "data:image/png;base64,%%%"},
            ["promptImage"],
            "base64",
        ),
        (
            "/v1/image_to_video",
            {"model": "gen4_turbo", "ratio": "1280:720", "promptImage": data_uri(b"not a picture", "image/png")},
            ["promptImage"],
            "JPEG, PNG or WebP",
        ),
        (
            "/v1/image_to_video",
            {
                "model": "gen4_turbo",
                "ratio": "1280:720",
                "promptImage": [{"uri": "https://example.com/a.png", "position": "middle"}],
            },
            ["promptImage", 0, "position"],
            "'first' | 'last'",
        ),
        ("/v1/video_to_video", {"model": "aleph2", "promptText": "Snow"}, ["videoUri"], "Required"),
        (
            "/v1/video_to_video",
            {"model": "aleph2", "promptText": "Snow", "videoUri": "https://example.com/clip.mp4"},
            ["videoUri"],
            "upload it with POST /v1/uploads",
        ),
        ("/v1/character_performance", {"model": "act_two", "character": "x"}, ["character"], "type"),
    ],
)
def test_bad_input_gets_a_400_with_issues_at_runways_paths_and_makes_nothing(
    client, key, media, path, body, where, words
):
    response = post(client, key, path, body)

    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["error"] == "Validation of body failed"
    assert any(issue["path"] == where and words in issue["message"] for issue in answer["issues"]), answer
    assert not VideoGeneration.objects.exists() and not SpendEntry.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"0",
        b'"x"',
        b"{}",
        b'{"model": null}',
        b'{"model": "gen4.5", "promptText": null}',
        b'{"model": "gen4.5", "duration": 1e400}',
        b'{"model": "gen4.5", "seed": -1, "ratio": [], "duration": {}}',
        b'{"model": "veo3.1", "audio": "yes", "negativePrompt": 3}',
        "\udc80".encode("utf-8", "surrogatepass"),
        b'{"model": "gen4_turbo", "promptImage": [null, 1, {"position": "first"}]}',
    ],
)
@pytest.mark.parametrize(
    "path", ["/v1/text_to_video", "/v1/image_to_video", "/v1/video_upscale", "/v1/character_performance"]
)
def test_no_body_is_a_server_error(client, key, media, path, body):
    response = post(client, key, path, body)
    assert response.status_code == 400, response.content
    assert not VideoGeneration.objects.exists()


def test_a_limit_reached_is_a_429_with_its_message_and_when_to_retry(client, key, user, settings):
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 1
    assert post(client, key, "/v1/text_to_video", TEXT).status_code == 200

    response = post(client, key, "/v1/text_to_video", {**TEXT, "promptText": "Another"})

    assert response.status_code == 429
    assert "1 video in progress" in response.json()["error"]
    assert response["Retry-After"] == str(settings.RUNWAY_POLL_INTERVAL)
    assert VideoGeneration.objects.count() == 1


def test_a_budget_that_does_not_fit_is_a_429_until_the_month_resets(client, key, user):
    UserBudget.objects.create(user=user, monthly_credits=50)

    response = post(client, key, "/v1/text_to_video", TEXT)  # 60 credits

    assert response.status_code == 429
    assert "monthly budget" in response.json()["error"]
    assert 0 < int(response["Retry-After"]) <= 31 * 86400
    assert not VideoGeneration.objects.exists()


def test_an_unreachable_database_is_a_503_in_runways_shape(client, key, monkeypatch):
    def gone(key):
        raise OperationalError("connection to server at 10.0.0.5 failed")

    monkeypatch.setattr("api.v1.api_key_authenticate", gone)
    client.raise_request_exception = False

    response = post(client, key, "/v1/text_to_video", TEXT)

    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert "database" in response.json()["error"] and "10.0.0.5" not in response.content.decode()


def test_unknown_paths_and_methods_answer_in_runways_shape(client, key):
    assert client.get("/v1/image_to_text", **headers(key)).json()["error"] == "Not found."
    refused = client.get("/v1/text_to_video", **headers(key))
    assert refused.status_code == 405 and refused["Allow"] == "POST"


# -- one job per request ----------------------------------------------------------------------


def test_an_idempotency_key_answers_the_first_task_when_the_create_is_repeated(client, key):
    first = post(client, key, "/v1/text_to_video", TEXT, HTTP_IDEMPOTENCY_KEY="batch-7-shot-3")
    again = post(client, key, "/v1/text_to_video", TEXT, HTTP_IDEMPOTENCY_KEY="batch-7-shot-3")
    other = post(client, key, "/v1/text_to_video", TEXT, HTTP_IDEMPOTENCY_KEY="batch-7-shot-4")

    assert first.status_code == again.status_code == other.status_code == 200
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert VideoGeneration.objects.count() == 2


def test_an_idempotency_key_reused_for_another_body_is_refused(client, key):
    post(client, key, "/v1/text_to_video", TEXT, HTTP_IDEMPOTENCY_KEY="k1")
    response = post(client, key, "/v1/text_to_video", {**TEXT, "promptText": "Else"}, HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 400 and "different request" in response.json()["error"]
    assert VideoGeneration.objects.count() == 1


def test_an_idempotency_key_holds_for_a_day_and_for_its_own_key_only(client, key, user):
    first = post(client, key, "/v1/text_to_video", TEXT, HTTP_IDEMPOTENCY_KEY="k1").json()["id"]
    other_key = services.api_key_create(user=user).key
    assert post(client, other_key, "/v1/text_to_video", TEXT, HTTP_IDEMPOTENCY_KEY="k1").json()["id"] != first

    ApiCreate.objects.update(created_at=timezone.now() - timedelta(days=1, minutes=1))
    VideoGeneration.objects.update(status=Status.SUCCEEDED)  # not counted against the active limit
    assert post(client, key, "/v1/text_to_video", TEXT, HTTP_IDEMPOTENCY_KEY="k1").json()["id"] != first


def test_the_sdks_own_retry_of_a_create_answers_the_task_the_first_attempt_made(client, key):
    first = post(client, key, "/v1/text_to_video", TEXT, HTTP_X_STAINLESS_RETRY_COUNT="0")
    # Its answer was lost (a timeout): the SDK sends the same body again, counting the retry.
    retry = post(client, key, "/v1/text_to_video", TEXT, HTTP_X_STAINLESS_RETRY_COUNT="1")
    second_retry = post(client, key, "/v1/text_to_video", TEXT, HTTP_X_STAINLESS_RETRY_COUNT="2")

    assert first.json()["id"] == retry.json()["id"] == second_retry.json()["id"]
    assert VideoGeneration.objects.count() == 1


def test_a_first_attempt_always_makes_a_job_and_a_retry_of_another_body_too(client, key):
    a = post(client, key, "/v1/text_to_video", TEXT, HTTP_X_STAINLESS_RETRY_COUNT="0").json()["id"]
    b = post(client, key, "/v1/text_to_video", TEXT, HTTP_X_STAINLESS_RETRY_COUNT="0").json()["id"]
    c = post(client, key, "/v1/text_to_video", {**TEXT, "seed": 7}, HTTP_X_STAINLESS_RETRY_COUNT="1").json()["id"]

    assert len({a, b, c}) == 3


def test_a_retry_after_a_refusal_makes_the_job_the_refused_attempt_did_not(client, key, user, settings):
    budget = UserBudget.objects.create(user=user, monthly_credits=50)
    assert post(client, key, "/v1/text_to_video", TEXT, HTTP_X_STAINLESS_RETRY_COUNT="0").status_code == 429
    budget.monthly_credits = 100
    budget.save()

    retry = post(client, key, "/v1/text_to_video", TEXT, HTTP_X_STAINLESS_RETRY_COUNT="1")

    assert retry.status_code == 200 and VideoGeneration.objects.count() == 1


def test_a_retry_long_after_is_a_new_job(client, key):
    first = post(client, key, "/v1/text_to_video", TEXT).json()["id"]
    ApiCreate.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    assert post(client, key, "/v1/text_to_video", TEXT, HTTP_X_STAINLESS_RETRY_COUNT="1").json()["id"] != first


# -- tasks ------------------------------------------------------------------------------------


def task_of(client, key, job):
    response = client.get(f"/v1/tasks/{job.public_id}", **headers(key))
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(
    "status, runway, extra",
    [
        (Status.QUEUED, "PENDING", {}),
        (Status.SUBMITTING, "PENDING", {}),
        (Status.PENDING, "PENDING", {}),
        (Status.THROTTLED, "THROTTLED", {}),
        (Status.RUNNING, "RUNNING", {"progress": 0.42}),
        (Status.FAILED, "FAILED", {"failure": "Runway refused the prompt.", "failureCode": "SAFETY.INPUT.TEXT"}),
        (Status.TIMED_OUT, "FAILED", {"failure": "It took too long.", "failureCode": "TIMED_OUT"}),
        (Status.CANCELLED, "CANCELLED", {}),
    ],
)
def test_a_tasks_state_maps_onto_runways(client, key, make_job, status, runway, extra):
    fields = {"status": status, "progress": 42}
    if status == Status.FAILED:
        fields.update(message="Runway refused the prompt.", failure_code="SAFETY.INPUT.TEXT")
    if status == Status.TIMED_OUT:
        fields.update(message="It took too long.")
    job = make_job(**fields)

    answer = task_of(client, key, job)

    assert answer["id"] == str(job.public_id) and answer["status"] == runway
    assert answer["createdAt"].endswith("Z") and "." in answer["createdAt"]
    for name, value in extra.items():
        assert answer[name] == value
    assert ("cost" in answer) == job.is_final and ("estimatedCost" in answer) != job.is_final


def test_a_done_tasks_output_links_to_our_copy_signed_expiring_and_fresh_on_each_get(
    client, key, make_job, media, monkeypatch
):
    job = make_job(status=Status.SUCCEEDED, progress=100)
    job.video_file.save("done.mp4", ContentFile(MP4))

    first = task_of(client, key, job)["output"]
    assert len(first) == 1 and first[0].startswith("http://testserver/v1/outputs/")
    later = time.time() + 5
    monkeypatch.setattr("api.links.time.time", lambda: later)
    assert task_of(client, key, job)["output"] != first  # minted afresh, expiring later
    monkeypatch.undo()

    path = first[0].removeprefix("http://testserver")
    whole = client.get(path)  # no key needed, as Runway's links
    assert whole.status_code == 200 and b"".join(whole.streaming_content) == MP4
    part = client.get(path, HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206 and len(b"".join(part.streaming_content)) == 100


def test_a_tampered_or_expired_output_link_is_refused(client, key, make_job, media, settings):
    job = make_job(status=Status.SUCCEEDED)
    job.video_file.save("done.mp4", ContentFile(MP4))
    path = links.output_path(job.public_id)

    assert client.get(path.replace("signature=", "signature=0")).status_code == 403
    other = make_job(status=Status.SUCCEEDED)
    assert client.get(path.replace(str(job.public_id), str(other.public_id))).status_code == 403
    old = links.output_path(job.public_id, now=time.time() - settings.API_OUTPUT_LINK_SECONDS - 5)
    assert client.get(old).status_code == 403


def test_another_users_task_is_a_404_as_if_it_did_not_exist(client, key, make_job, other_user):
    theirs = make_job(owner=other_user, status=Status.RUNNING)
    for method in (client.get, client.delete):
        response = method(f"/v1/tasks/{theirs.public_id}", **headers(key))
        assert response.status_code == 404 and response.json()["error"] == "Task not found."
    assert client.get(f"/v1/tasks/{theirs.pk}", **headers(key)).status_code == 404  # nor by our row id
    assert VideoGeneration.objects.get(pk=theirs.pk).status == Status.RUNNING


def test_delete_cancels_a_running_task_then_deletes_it_through_the_worker(client, key, make_job):
    job = make_job(status=Status.RUNNING, runway_task_id=str(uuid.uuid4()))

    response = client.delete(f"/v1/tasks/{job.public_id}", **headers(key))

    assert response.status_code == 204 and response.content == b""
    job.refresh_from_db()
    assert job.status == Status.CANCELLED and job.cancel_pending and job.delete_pending
    assert client.get(f"/v1/tasks/{job.public_id}", **headers(key)).status_code == 404
    assert client.delete(f"/v1/tasks/{job.public_id}", **headers(key)).status_code == 404


def test_delete_of_a_job_runway_never_had_removes_it_at_once(client, key, make_job):
    job = make_job(status=Status.QUEUED)
    assert client.delete(f"/v1/tasks/{job.public_id}", **headers(key)).status_code == 204
    assert not VideoGeneration.objects.filter(pk=job.pk).exists()


def test_the_organization_is_the_callers_own_budget_spend_and_usage(client, key, user, other_user, make_job, settings):
    UserBudget.objects.create(user=user, monthly_credits=1000)
    post(client, key, "/v1/text_to_video", TEXT)  # 60 credits reserved
    other_key = services.api_key_create(user=other_user).key
    post(client, other_key, "/v1/text_to_video", {**TEXT, "duration": 10})

    answer = client.get("/v1/organization", **headers(key)).json()

    assert answer["creditBalance"] == 940 and answer["tier"]["maxMonthlyCreditSpend"] == 1000
    assert answer["tier"]["models"]["gen4.5"] == {
        "maxConcurrentGenerations": settings.RUNWAY_MAX_ACTIVE_PER_USER,
        "maxDailyGenerations": settings.RUNWAY_DAILY_LIMIT_PER_USER,
    }
    assert answer["usage"]["models"]["gen4.5"] == {"dailyGenerations": 1}
    assert answer["usage"]["models"]["veo3.1"] == {"dailyGenerations": 0}


# -- uploads ----------------------------------------------------------------------------------


def upload(client, key, content: bytes, filename: str = "shot.png") -> str:
    started = post(client, key, "/v1/uploads", {"filename": filename, "type": "ephemeral"})
    assert started.status_code == 200, started.content
    place = started.json()
    sent = client.post(
        place["uploadUrl"].removeprefix("http://testserver"),
        {**place["fields"], "file": ContentFile(content, name=filename)},
    )
    assert sent.status_code == 204, sent.content
    return place["runwayUri"]


def test_an_upload_is_used_by_its_runway_uri_and_the_job_keeps_its_own_copy(client, key, media):
    uri = upload(client, key, PNG)
    assert uri.startswith("runway://uploads/")

    response = post(client, key, "/v1/image_to_video", {"model": "gen4_turbo", "promptImage": uri, "ratio": "1280:720"})

    assert response.status_code == 200, response.content
    job = VideoGeneration.objects.get()
    assert job.image.read() == PNG and job.endpoint == "image_to_video"
    ApiUpload.objects.all().delete()  # the upload may expire: the job's copy stays
    assert job.image.storage.exists(job.image.name)


def test_a_clip_by_upload_or_data_uri_makes_a_video_to_video_job(client, key, media):
    data = clip(2.0)
    by_upload = post(
        client,
        key,
        "/v1/video_to_video",
        {"model": "aleph2", "promptText": "Snow", "videoUri": upload(client, key, data, "c.mp4")},
    )
    inline = post(
        client,
        key,
        "/v1/video_upscale",
        {"model": "magnific_video_upscaler_creative", "videoUri": data_uri(data, "video/mp4")},
    )

    assert by_upload.status_code == 200 and inline.status_code == 200, (by_upload.content, inline.content)
    edit, upscale = VideoGeneration.objects.order_by("pk")
    assert edit.endpoint == "video_to_video" and edit.clip.read() == data and edit.clip_seconds
    assert upscale.endpoint == "video_upscale" and upscale.clip.read() == data


def test_act_two_takes_a_character_image_and_a_performance(client, key, media):
    body = {
        "model": "act_two",
        "character": {"type": "image", "uri": data_uri(PNG, "image/png")},
        "reference": {"type": "video", "uri": upload(client, key, clip(2.0), "p.mp4")},
        "ratio": "1280:720",
        "expressionIntensity": 3,
    }
    response = post(client, key, "/v1/character_performance", body)

    assert response.status_code == 200, response.content
    job = VideoGeneration.objects.get()
    assert job.endpoint == "character_performance" and job.image and job.performance
    assert job.params["expressionIntensity"] == 3


def test_first_and_last_frames_as_a_list(client, key, media):
    body = {
        "model": "veo3.1",
        "ratio": "1280:720",
        "promptImage": [
            {"uri": "https://example.com/first.png", "position": "first"},
            {"uri": data_uri(PNG, "image/png"), "position": "last"},
        ],
    }
    response = post(client, key, "/v1/image_to_video", body)

    assert response.status_code == 200, response.content
    job = VideoGeneration.objects.get()
    assert job.image_url == "https://example.com/first.png" and job.last_image


def test_an_upload_of_another_user_unarrived_or_expired_cannot_be_used(client, key, media, other_user):
    theirs = upload(client, services.api_key_create(user=other_user).key, PNG)
    body = {"model": "gen4_turbo", "ratio": "1280:720"}
    assert post(client, key, "/v1/image_to_video", {**body, "promptImage": theirs}).status_code == 400

    started = post(client, key, "/v1/uploads", {"filename": "a.png", "type": "ephemeral"}).json()
    assert post(client, key, "/v1/image_to_video", {**body, "promptImage": started["runwayUri"]}).status_code == 400

    mine = upload(client, key, PNG)
    ApiUpload.objects.update(created_at=timezone.now() - timedelta(hours=25))
    response = post(client, key, "/v1/image_to_video", {**body, "promptImage": mine})
    assert response.status_code == 400 and "expired" in response.json()["issues"][0]["message"]
    assert not VideoGeneration.objects.exists()


def test_the_upload_url_needs_its_token_and_takes_one_file_once(client, key, media):
    place = post(client, key, "/v1/uploads", {"filename": "a.png", "type": "ephemeral"}).json()
    url = place["uploadUrl"].removeprefix("http://testserver")

    assert client.post(url, {"token": "forged", "file": ContentFile(PNG, name="a.png")}).status_code == 403
    other = post(client, key, "/v1/uploads", {"filename": "b.png", "type": "ephemeral"}).json()
    assert client.post(url, {**other["fields"], "file": ContentFile(PNG, name="a.png")}).status_code == 403
    assert client.post(url, {**place["fields"], "file": ContentFile(PNG, name="a.png")}).status_code == 204
    assert client.post(url, {**place["fields"], "file": ContentFile(PNG, name="a.png")}).status_code == 409


def test_an_upload_needs_a_name_and_the_ephemeral_type(client, key):
    response = post(client, key, "/v1/uploads", {"filename": "", "type": "permanent"})
    assert response.status_code == 400
    assert [issue["path"] for issue in response.json()["issues"]] == [["filename"], ["type"]]


def test_uploads_past_a_day_are_deleted_with_their_files(client, key, media):
    upload(client, key, PNG)
    stored = ApiUpload.objects.get()
    name = stored.file.name
    from api.tasks_service import api_uploads_expire

    assert api_uploads_expire() == 0
    assert api_uploads_expire(now=timezone.now() + timedelta(hours=25)) == 1
    assert not ApiUpload.objects.exists() and not stored.file.storage.exists(name)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/text_to_video", '{"model": "gen4.5", "promptText": "a\\u0000b", "ratio": "1280:720", "duration": 5}'),
        (
            "/v1/text_to_video",
            '{"model": "gen4.5", "promptText": "half \\ud904 a pair", "ratio": "1280:720", "duration": 5}',
        ),
        ("/v1/text_to_video", '{"model": "gen4.5", "promptText": "x", "\\u0000": 1}'),
        ("/v1/uploads", '{"filename": "a\\u0000.png", "type": "ephemeral"}'),
    ],
)
def test_text_no_database_can_keep_is_refused_with_an_issue(client, key, path, body):
    """Found by schemathesis on PostgreSQL: a NUL or half a surrogate pair made a 500."""
    response = post(client, key, path, body)
    assert response.status_code == 400
    assert "NUL characters or unpaired surrogates" in response.json()["issues"][0]["message"]
    assert not VideoGeneration.objects.exists() and not ApiUpload.objects.exists()
