"""The dashboard form's refusals, its one-time token, the limits, and who may see or touch a job."""

import html
import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.conftest import PNG
from videos import catalog
from videos.models import Status, VideoGeneration
from videos.services import ledger

pytestmark = pytest.mark.django_db
DASHBOARD = "/videos/"


def field_errors(content: bytes, field: str) -> str:
    """The text of the error list the page shows next to a field (element id `<field>-errors`)."""
    match = re.search(rf'<ul class="errorlist" id="{field}-errors"[^>]*>(.*?)</ul>', content.decode(), re.S)
    assert match, f"no error list for {field!r} on the page"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))


def png_upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("frame.png", PNG, content_type="image/png")


# Each bad request: (form data, the field the message belongs to, words of the message).
BAD_INPUTS = {
    "empty_prompt": (lambda: {"prompt": ""}, "prompt", "cannot be empty"),
    "whitespace_prompt": (lambda: {"prompt": "  \n\t "}, "prompt", "cannot be empty"),
    "prompt_of_1001_utf16_units": (lambda: {"prompt": "a" * 999 + "🎬"}, "prompt", "too long: 1001 characters"),
    "image_model_for_text": (lambda: {"prompt": "Waves", "model": "gen4_turbo"}, "model", "needs an image"),
    "ratio_the_model_lacks": (
        lambda: {"prompt": "Waves", "model": "gen4.5", "ratio": "1104:832"},
        "ratio",
        "does not offer the ratio '1104:832'",
    ),
    "duration_the_model_lacks": (
        lambda: {"prompt": "Waves", "model": "veo3.1", "duration": "5"},
        "duration",
        "makes videos of 4, 6, 8 seconds",
    ),
    "seed_above_range": (lambda: {"prompt": "Waves", "seed": "4294967296"}, "seed", "less than or equal to"),
    "negative_seed": (lambda: {"prompt": "Waves", "seed": "-1"}, "seed", "greater than or equal to 0"),
    "non_image_upload": (
        lambda: {"prompt": "Waves", "image": SimpleUploadedFile("notes.png", b"just some text\n" * 10)},
        "image",
        "not a JPEG, PNG or WebP image",
    ),
    "oversized_image": (
        lambda: {
            "prompt": "Waves",
            "image": SimpleUploadedFile("big.png", PNG + b"\x00" * catalog.IMAGE_MAX_BYTES, "image/png"),
        },
        "image",
        "images of up to 20 MB can be used",
    ),
    "plain_http_image_url": (
        lambda: {"prompt": "Waves", "image_url": "http://images.test/frame.png"},
        "image_url",
        "must start with https://",
    ),
    "file_and_url": (
        lambda: {"prompt": "Waves", "image": png_upload(), "image_url": "https://images.test/frame.png"},
        "image_url",
        "not both",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_refused_next_to_its_field_and_nothing_happens(
    alice, broker, media, django_capture_on_commit_callbacks, case
):
    make_data, field, words = BAD_INPUTS[case]
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(DASHBOARD, make_data())

    assert response.status_code == 400
    assert words in field_errors(response.content, field)
    assert VideoGeneration.objects.count() == 0
    assert broker.tasks() == []
    assert not media.exists() or not any(media.rglob("*.*"))


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_answers_json_errors_for_its_field(alice, broker, media, django_capture_on_commit_callbacks, case):
    make_data, field, words = BAD_INPUTS[case]
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(DASHBOARD, make_data(), HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    errors = response.json()["errors"]
    assert words in " ".join(e["message"] for e in errors[field])
    assert VideoGeneration.objects.count() == 0
    assert broker.tasks() == []


# --- The one-time form token ---------------------------------------------------------------


def page_token(content: bytes) -> str:
    match = re.search(r'<input type="hidden" name="token" value="([0-9a-f-]{36})"[^>]*>', content.decode())
    assert match, "no hidden token input on the page"
    return match.group(1)


def test_dashboard_has_a_fresh_hidden_token_per_load(alice):
    first = page_token(alice.get(DASHBOARD).content)
    second = page_token(alice.get(DASHBOARD).content)
    assert first != second


def test_posting_the_same_form_twice_makes_one_job(alice, broker, django_capture_on_commit_callbacks):
    data = {"prompt": "Waves at night", "token": page_token(alice.get(DASHBOARD).content)}

    with django_capture_on_commit_callbacks(execute=True):
        first = alice.post(DASHBOARD, data)
        second = alice.post(DASHBOARD, data)

    assert (first.status_code, second.status_code) == (302, 302)
    job = VideoGeneration.objects.get()
    assert str(job.request_token) == data["token"]
    assert [t.args for t in broker.tasks()] == [[job.pk, 0]]


def test_posting_the_same_token_twice_as_json_answers_the_same_job(alice, broker, django_capture_on_commit_callbacks):
    data = {"prompt": "Waves at night", "token": page_token(alice.get(DASHBOARD).content)}

    with django_capture_on_commit_callbacks(execute=True):
        first = alice.post(DASHBOARD, data, HTTP_ACCEPT="application/json")
        second = alice.post(DASHBOARD, data, HTTP_ACCEPT="application/json")

    assert first.json()["id"] == second.json()["id"] == VideoGeneration.objects.get().pk
    assert first.json()["token"] != data["token"]  # a new token for the page's next request
    assert len(broker.tasks()) == 1


def test_different_tokens_make_different_jobs(alice, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            alice.post(DASHBOARD, {"prompt": "Waves", "token": page_token(alice.get(DASHBOARD).content)})
    assert VideoGeneration.objects.count() == 2
    assert len(broker.tasks()) == 2


# --- Limits through the view ---------------------------------------------------------------


def test_fourth_active_job_is_refused_on_the_page(alice, make_job, broker, django_capture_on_commit_callbacks):
    for _ in range(3):
        make_job(status=Status.RUNNING)

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(DASHBOARD, {"prompt": "Waves"})

    assert response.status_code == 400
    assert "You already have 3 videos in progress" in field_errors(response.content, "__all__")
    assert VideoGeneration.objects.count() == 3
    assert broker.tasks() == []


def test_fourth_active_job_is_refused_in_json(alice, make_job, broker):
    for _ in range(3):
        make_job(status=Status.QUEUED)
    response = alice.post(DASHBOARD, {"prompt": "Waves"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "in progress" in response.json()["errors"]["__all__"][0]["message"]
    assert VideoGeneration.objects.count() == 3


def test_daily_limit_is_refused_on_the_page(alice, make_job, settings):
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 2
    ledger.spend_reserve(generation=make_job(status=Status.FAILED))
    ledger.spend_reserve(generation=make_job(status=Status.SUCCEEDED))
    response = alice.post(DASHBOARD, {"prompt": "Waves"})
    assert response.status_code == 400
    assert "You can make another after" in field_errors(response.content, "__all__")


# --- Access ---------------------------------------------------------------------------------

JOB_GETS = ["{pk}/", "{pk}/status/"]
JOB_POSTS = ["{pk}/cancel/", "{pk}/retry/"]


@pytest.mark.parametrize("status", [Status.RUNNING, Status.FAILED])
def test_another_users_job_answers_404_everywhere_and_is_unchanged(
    alice, make_job, other_user, broker, django_capture_on_commit_callbacks, status
):
    job = make_job(owner=other_user, status=status, prompt="Bob's secret idea")
    snapshot = VideoGeneration.objects.filter(pk=job.pk).values().get()

    with django_capture_on_commit_callbacks(execute=True):
        answers = [alice.get(DASHBOARD + url.format(pk=job.pk)) for url in JOB_GETS]
        answers += [alice.post(DASHBOARD + url.format(pk=job.pk)) for url in JOB_POSTS]

    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert all(b"Bob's secret idea" not in a.content for a in answers)
    assert VideoGeneration.objects.filter(pk=job.pk).values().get() == snapshot
    assert VideoGeneration.objects.count() == 1
    assert broker.tasks() == []


def test_anonymous_users_are_sent_to_login_for_every_url(client, make_job):
    job = make_job(status=Status.FAILED)
    login = reverse("login")
    gets = ["/", DASHBOARD] + [DASHBOARD + url.format(pk=job.pk) for url in JOB_GETS]
    posts = [DASHBOARD] + [DASHBOARD + url.format(pk=job.pk) for url in JOB_POSTS]

    answers = [(url, client.get(url)) for url in gets] + [(url, client.post(url, {"prompt": "x"})) for url in posts]

    for url, response in answers:
        assert response.status_code == 302, url
        assert response["Location"].startswith(login + "?next="), url
    assert VideoGeneration.objects.count() == 1


@pytest.fixture
def csrf_client(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_cancel_needs_the_csrf_token(csrf_client, make_job):
    job = make_job(status=Status.RUNNING)
    assert csrf_client.post(f"{DASHBOARD}{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.status == Status.RUNNING


def test_retry_needs_the_csrf_token(csrf_client, make_job, broker):
    job = make_job(status=Status.FAILED)
    assert csrf_client.post(f"{DASHBOARD}{job.pk}/retry/").status_code == 403
    assert VideoGeneration.objects.count() == 1
    assert broker.tasks() == []


def test_cancel_and_retry_accept_the_pages_csrf_token(
    csrf_client, make_job, broker, django_capture_on_commit_callbacks
):
    job = make_job(status=Status.QUEUED)
    page = csrf_client.get(f"{DASHBOARD}{job.pk}/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    csrf_client.post(f"{DASHBOARD}{job.pk}/cancel/", {"csrfmiddlewaretoken": token})
    job.refresh_from_db()
    assert job.status == Status.CANCELLED
    with django_capture_on_commit_callbacks(execute=True):
        response = csrf_client.post(f"{DASHBOARD}{job.pk}/retry/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert VideoGeneration.objects.count() == 2


# --- Escaping -------------------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def assert_escaped(content: bytes) -> None:
    text = content.decode()
    assert "<script>alert" not in text
    assert "<img src=x" not in text
    assert "&lt;script&gt;alert(" in text


def test_prompt_with_html_is_escaped_on_the_dashboard_and_detail_page(alice, make_job):
    job = make_job(prompt=HOSTILE)
    assert_escaped(alice.get(DASHBOARD).content)
    assert_escaped(alice.get(f"{DASHBOARD}{job.pk}/").content)


def test_prompt_with_html_is_escaped_in_the_json_card(alice, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(DASHBOARD, {"prompt": HOSTILE}, HTTP_ACCEPT="application/json")
    assert response.status_code == 201
    assert_escaped(response.json()["html"].encode())


def test_prompt_with_html_is_escaped_in_the_admin(client, admin_user, make_job):
    client.force_login(admin_user)
    job = make_job(prompt=HOSTILE)
    assert_escaped(client.get("/admin/videos/videogeneration/").content)
    assert_escaped(client.get(f"/admin/videos/videogeneration/{job.pk}/change/").content)


# --- What the owner can do ------------------------------------------------------------------


def test_owner_cancels_their_job_and_the_page_says_so(alice, make_job):
    job = make_job(status=Status.PENDING)
    response = alice.post(f"{DASHBOARD}{job.pk}/cancel/", follow=True)

    job.refresh_from_db()
    assert job.status == Status.CANCELLED
    assert response.redirect_chain == [(f"{DASHBOARD}{job.pk}/", 302)]
    content = response.content.decode()
    assert "The video was cancelled." in content
    assert '<span class="status-label">Cancelled</span>' in content


def test_owner_retries_their_job_and_lands_on_the_new_one(
    alice, make_job, media, broker, django_capture_on_commit_callbacks
):
    source = make_job(
        status=Status.TIMED_OUT,
        endpoint="image_to_video",
        model="gen4_turbo",
        ratio="832:1104",
        duration=3,
        seed=7,
        image=ContentFile(PNG, name="frame.png"),
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(f"{DASHBOARD}{source.pk}/retry/", follow=True)

    new = VideoGeneration.objects.exclude(pk=source.pk).get()
    assert response.redirect_chain == [(f"{DASHBOARD}{new.pk}/", 302)]
    assert "Trying again with the same settings." in response.content.decode()
    assert (new.model, new.ratio, new.duration, new.seed, new.status) == ("gen4_turbo", "832:1104", 3, 7, Status.QUEUED)
    with new.image.open("rb") as f:
        assert f.read() == PNG
    assert [t.args for t in broker.tasks()] == [[new.pk, 0]]


def test_retry_of_a_succeeded_job_is_refused_with_a_message(alice, make_job, broker):
    job = make_job(status=Status.SUCCEEDED)
    response = alice.post(f"{DASHBOARD}{job.pk}/retry/", follow=True)
    assert response.redirect_chain == [(f"{DASHBOARD}{job.pk}/", 302)]
    assert "Only a video that failed" in response.content.decode()
    assert VideoGeneration.objects.count() == 1


def test_retry_past_the_limit_is_refused_with_the_limit_message(alice, make_job, broker):
    job = make_job(status=Status.FAILED)
    for _ in range(3):
        make_job(status=Status.RUNNING)
    response = alice.post(f"{DASHBOARD}{job.pk}/retry/", follow=True)
    assert response.redirect_chain == [(f"{DASHBOARD}{job.pk}/", 302)]
    assert "You already have 3 videos in progress" in html.unescape(response.content.decode())
    assert VideoGeneration.objects.count() == 4


def card_actions(content: bytes, pk: int) -> str:
    match = re.search(rf'id="generation-{pk}".*?<div class="actions">(.*?)</div>', content.decode(), re.S)
    assert match, f"no card for job {pk}"
    return match.group(1)


@pytest.mark.parametrize(
    ("status", "cancel", "retry"),
    [
        (Status.QUEUED, True, False),
        (Status.SUBMITTING, True, False),
        (Status.PENDING, True, False),
        (Status.THROTTLED, True, False),
        (Status.RUNNING, True, False),
        (Status.FAILED, False, True),
        (Status.CANCELLED, False, True),
        (Status.TIMED_OUT, False, True),
        (Status.SUCCEEDED, False, False),
    ],
)
def test_dashboard_card_offers_cancel_or_try_again(alice, make_job, status, cancel, retry):
    job = make_job(status=status)
    actions = card_actions(alice.get(DASHBOARD).content, job.pk)
    assert (f'action="/videos/{job.pk}/cancel/"' in actions and ">Cancel<" in actions) == cancel
    assert (f'action="/videos/{job.pk}/retry/"' in actions and ">Try again<" in actions) == retry
