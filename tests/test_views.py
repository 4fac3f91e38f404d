import base64
import json
import re
from datetime import timedelta

import pytest
import responses
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.conftest import MP4, PNG
from videos.models import CreditBalance, Status, VideoGeneration
from videos.services import ledger

pytestmark = pytest.mark.django_db
DASHBOARD = "/videos/"


@pytest.mark.parametrize("url", ["/", DASHBOARD, "/videos/1/", "/videos/1/status/"])
def test_pages_require_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_home_leads_to_the_generate_videos_tab(alice):
    response = alice.get("/", follow=True)
    assert response.redirect_chain[-1][0] == DASHBOARD
    assert b"Generate Videos" in response.content
    assert b"Generate \xc2\xb7 60 credits" in response.content  # gen4.5, 5 s, at 12 credits a second


def test_the_form_shows_what_the_default_video_costs_before_clicking(alice):
    page = alice.get(DASHBOARD).content.decode()
    assert "Estimated cost: 60 credits (US$0.60)." in page
    assert "Generate for free" not in page  # a real key bills the operator


def test_generate_is_free_only_when_the_simulator_answers(alice, settings):
    settings.RUNWAY_SIMULATED = True
    page = alice.get(DASHBOARD).content.decode()
    assert ">Generate for free</button>" in page
    assert "60 credits (US$0.60) at Runway's prices; the simulator bills nothing." in page


def test_the_balance_shows_in_credits_and_dollars_with_its_age(alice):
    CreditBalance.objects.create(credits=12345, fetched_at=timezone.now() - timedelta(minutes=3))
    page = alice.get(DASHBOARD).content.decode()
    assert "<strong>12,345</strong> (US$123.45)" in page
    assert "checked 3\xa0minutes ago" in page


def test_login_page_renders(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in" in response.content


def test_create_stores_the_job_and_enqueues_it_after_commit(alice, user, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice.post(DASHBOARD, {"prompt": "  A serene mountain landscape at sunset  "})
        assert broker.tasks() == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()

    assert response.status_code == 302
    job = VideoGeneration.objects.get()
    assert job.owner == user
    assert job.prompt == "A serene mountain landscape at sunset"
    assert (job.endpoint, job.model, job.ratio, job.duration) == ("text_to_video", "gen4.5", "1280:720", 5)
    assert job.seed is not None
    assert job.status == Status.QUEUED
    [queued] = broker.tasks()
    assert queued.name == "videos.tasks.submit"
    assert queued.args == [job.pk, 0]


def test_create_answers_json_for_the_page_script(alice, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(DASHBOARD, {"prompt": "Waves"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 201
    job = VideoGeneration.objects.get()
    assert response.json()["id"] == job.pk
    assert f'id="generation-{job.pk}"' in response.json()["html"]


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("", "cannot be empty"),
        ("   \n ", "cannot be empty"),
        ("a" * 999 + "🎬", "too long"),
    ],
)
def test_bad_prompt_is_refused_with_a_message_and_nothing_stored(alice, broker, prompt, words):
    response = alice.post(DASHBOARD, {"prompt": prompt})
    assert response.status_code == 400
    assert words in response.content.decode()
    assert VideoGeneration.objects.count() == 0
    assert broker.tasks() == []


def test_bad_prompt_answers_json_errors_for_the_page_script(alice):
    response = alice.post(DASHBOARD, {"prompt": ""}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "cannot be empty" in response.json()["errors"]["prompt"][0]["message"]


def test_prompt_of_exactly_1000_units_is_accepted(alice, django_capture_on_commit_callbacks, broker):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(DASHBOARD, {"prompt": "a" * 998 + "🎬"})
    assert response.status_code == 302
    assert VideoGeneration.objects.count() == 1


def test_without_an_api_key_the_page_warns_and_a_job_fails_at_once(alice, settings, broker):
    settings.RUNWAY_API_KEY = ""
    assert b"Runway API key is not configured" in alice.get(DASHBOARD).content
    alice.post(DASHBOARD, {"prompt": "Waves"})
    job = VideoGeneration.objects.get()
    assert job.status == Status.FAILED
    assert job.message == "Runway API key is not configured"
    assert broker.tasks() == []


def test_jobs_refused_for_want_of_a_key_count_towards_no_limit(alice, settings, broker):
    settings.RUNWAY_API_KEY = ""
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 1
    for prompt in ("Waves", "Dunes", "Rain"):
        alice.post(DASHBOARD, {"prompt": prompt})
    assert list(VideoGeneration.objects.values_list("status", flat=True)) == [Status.FAILED] * 3
    settings.RUNWAY_API_KEY = "key_" + "0" * 128  # configured now: the first real job is allowed
    response = alice.post(DASHBOARD, {"prompt": "Snow"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert VideoGeneration.objects.filter(prompt="Snow").exclude(status=Status.FAILED).exists()
    snow = VideoGeneration.objects.with_cost().get(prompt="Snow")
    assert len(ledger.generations_since(user_id=snow.owner_id, start=snow.created_at - timedelta(days=1))) == 1
    assert ledger.spent_this_month(user_id=snow.owner_id, now=timezone.now()) == snow.cost_credits > 0


def test_history_shows_only_own_jobs_newest_first_and_paginates(alice, make_job, other_user):
    for i in range(12):
        make_job(prompt=f"mine {i:02}")
    make_job(owner=other_user, prompt="not mine")
    page1 = alice.get(DASHBOARD).content.decode()
    page2 = alice.get(DASHBOARD + "?page=2").content.decode()

    assert page1.index("mine 11") < page1.index("mine 10")
    assert "mine 02" in page1 and "mine 01" not in page1
    assert "mine 01" in page2 and "mine 00" in page2
    assert "not mine" not in page1 + page2


def test_prompts_are_escaped(alice, make_job):
    make_job(prompt="<script>alert(1)</script>")
    content = alice.get(DASHBOARD).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;" in content


def test_status_endpoint_reports_the_job(alice, make_job):
    job = make_job(status=Status.RUNNING, progress=37)
    data = alice.get(f"/videos/{job.pk}/status/").json()
    assert data["status"] == "running"
    assert data["status_label"] == "Generating"
    assert data["progress"] == 37
    assert data["is_final"] is False
    assert data["output_url"] == ""


def test_status_endpoint_makes_the_same_few_queries_however_many_jobs_exist(alice, make_job):
    def queries_for(job: VideoGeneration) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert alice.get(f"/videos/{job.pk}/status/").status_code == 200
        return len(queries)

    running = make_job(status=Status.RUNNING)
    done = make_job(status=Status.SUCCEEDED, finished_at=timezone.now())
    # Session, user and job; the time estimate for a job in progress adds one, once a minute.
    assert (queries_for(running), queries_for(running), queries_for(done)) == (4, 3, 3)
    for _ in range(30):
        make_job(status=Status.SUCCEEDED, finished_at=timezone.now())
        make_job(status=Status.RUNNING)
    assert (queries_for(running), queries_for(done)) == (3, 3)
    cache.clear()
    assert queries_for(running) == 4


def test_status_endpoint_gives_our_copy_never_runways_url(alice, make_job, stored_video):
    job = make_job(status=Status.SUCCEEDED, progress=100, output_url="https://cdn.test/v.mp4", video_file=stored_video)
    data = alice.get(f"/videos/{job.pk}/status/").json()
    assert data["is_final"] is True
    assert data["output_url"] == f"/videos/{job.pk}/video.mp4"
    assert "cdn.test" not in alice.get(f"/videos/{job.pk}/").content.decode()


def test_detail_page_plays_our_stored_video(alice, make_job, stored_video):
    job = make_job(status=Status.SUCCEEDED, progress=100, video_file=stored_video)
    content = alice.get(f"/videos/{job.pk}/").content.decode()
    assert f'<video controls preload="metadata" src="/videos/{job.pk}/video.mp4">' in content
    response = alice.get(f"/videos/{job.pk}/video.mp4")
    assert response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content) == MP4


def test_another_users_video_file_answers_404(alice, make_job, other_user, stored_video):
    job = make_job(owner=other_user, status=Status.SUCCEEDED, video_file=stored_video)
    assert alice.get(f"/videos/{job.pk}/video.mp4").status_code == 404


def test_a_job_without_a_stored_video_has_no_file(alice, make_job):
    job = make_job(status=Status.RUNNING)
    assert alice.get(f"/videos/{job.pk}/video.mp4").status_code == 404


def test_failed_job_shows_its_message(alice, make_job):
    job = make_job(status=Status.FAILED, message="Runway's content moderation declined the description.")
    content = alice.get(f"/videos/{job.pk}/").content.decode()
    assert "content moderation declined" in content


@pytest.mark.parametrize("suffix", ["", "status/"])
def test_another_users_job_answers_404(alice, make_job, other_user, suffix):
    job = make_job(owner=other_user)
    assert alice.get(f"/videos/{job.pk}/{suffix}").status_code == 404


def test_another_users_job_cannot_be_cancelled(alice, make_job, other_user):
    job = make_job(owner=other_user, status=Status.QUEUED)
    assert alice.post(f"/videos/{job.pk}/cancel/").status_code == 404
    job.refresh_from_db()
    assert job.status == Status.QUEUED


def test_owner_cancels_a_queued_job(alice, make_job):
    job = make_job(status=Status.QUEUED)
    response = alice.post(f"/videos/{job.pk}/cancel/", follow=True)
    job.refresh_from_db()
    assert job.status == Status.CANCELLED
    assert b"The video was cancelled." in response.content


def test_cancel_of_a_finished_job_says_so(alice, make_job):
    job = make_job(status=Status.SUCCEEDED)
    response = alice.post(f"/videos/{job.pk}/cancel/", follow=True)
    assert b"already ended" in response.content


def test_posts_need_the_csrf_token(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(DASHBOARD, {"prompt": "Waves"}).status_code == 403
    assert VideoGeneration.objects.count() == 0


def test_the_poster_is_served_to_the_owner_only(alice, make_job, other_user):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    poster = default_storage.save("posters/test/p.jpg", ContentFile(b"\xff\xd8jpeg\xff\xd9"))
    mine = make_job(status=Status.SUCCEEDED, poster=poster)
    theirs = make_job(owner=other_user, status=Status.SUCCEEDED, poster=poster)
    response = alice.get(f"/videos/{mine.pk}/poster.jpg")
    assert response["Content-Type"] == "image/jpeg"
    assert alice.get(f"/videos/{mine.pk}/status/").json()["poster_url"] == f"/videos/{mine.pk}/poster.jpg"
    assert alice.get(f"/videos/{theirs.pk}/poster.jpg").status_code == 404
    assert alice.get(f"/videos/{make_job().pk}/poster.jpg").status_code == 404


@responses.activate
def test_an_uploaded_image_makes_an_image_to_video_job_sent_as_a_data_uri(alice, broker):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from videos.tasks import submit

    png = PNG
    upload = SimpleUploadedFile("first.png", png, content_type="image/png")
    response = alice.post(DASHBOARD, {"prompt": "The scene comes alive", "image": upload})
    assert response.status_code == 302
    job = VideoGeneration.objects.get()
    assert (job.endpoint, job.model) == ("image_to_video", "gen4_turbo")
    with job.image.open("rb") as stored:
        assert stored.read() == png

    responses.post("https://runway.test/v1/image_to_video", json={"id": "t-1"})
    submit.apply(args=[job.pk, job.step], throw=True)
    body = json.loads(responses.calls[0].request.body)
    assert body["promptImage"] == "data:image/png;base64," + base64.b64encode(png).decode()
    assert body["promptText"] == "The scene comes alive"


def test_staff_can_play_any_video_in_the_admin(client, admin_user, make_job, stored_video):
    job = make_job(status=Status.SUCCEEDED, video_file=stored_video)
    client.force_login(admin_user)
    page = client.get(f"/admin/videos/videogeneration/{job.pk}/change/").content.decode()
    assert f'src="/videos/{job.pk}/video.mp4"' in page
    assert client.get(f"/videos/{job.pk}/video.mp4").status_code == 200


# --- Costs on the pages (the spend ledger) ------------------------------------------------------


@pytest.fixture
def made(alice, broker, django_capture_on_commit_callbacks):
    """A job made through the form: 60 credits reserved in the ledger (gen4.5, 5 s)."""
    with django_capture_on_commit_callbacks(execute=True):
        alice.post(DASHBOARD, {"prompt": "A lighthouse in a storm"})
    return VideoGeneration.objects.get()


def test_a_job_card_shows_its_estimate_until_runway_says_what_it_charged(alice, made):
    assert "· about 60 credits (US$0.60)" in alice.get(DASHBOARD).content.decode()
    assert alice.get(f"/videos/{made.pk}/status/").json()["cost"] == {"credits": 60, "final": False}

    ledger.spend_settle(generation=made, charged=48)  # Runway billed less than its estimate
    page = alice.get(DASHBOARD).content.decode()
    assert "· 48 credits (US$0.48)" in page and "about 48" not in page
    assert alice.get(f"/videos/{made.pk}/status/").json()["cost"] == {"credits": 48, "final": True}
    assert "<dt>Cost</dt><dd>48 credits (US$0.48)</dd>" in alice.get(f"/videos/{made.pk}/").content.decode()


def test_the_history_reads_every_cost_in_the_same_query(alice, make_job, django_assert_max_num_queries):
    for _ in range(8):
        ledger.spend_reserve(generation=make_job())
    alice.get(DASHBOARD)  # warm the session and the caches
    with django_assert_max_num_queries(12):
        page = alice.get(DASHBOARD).content.decode()
    assert page.count("about 60 credits (US$0.60)") == 8


def test_the_dashboard_shows_this_months_spend_and_todays_videos_against_the_limits(alice, made, settings):
    page = alice.get(DASHBOARD).content.decode()
    budget = settings.RUNWAY_MONTHLY_BUDGET_PER_USER
    left = f"{budget - 60:,}"
    assert f"This month: 60 credits (US$0.60) of your {budget:,} credits" in page
    assert f"{left} left until" in page
    assert f"Today: 1 of {settings.RUNWAY_DAILY_LIMIT_PER_USER} videos" in page


# --- One job per click: re-run and try again carry a one-time token -------------------------------


@pytest.mark.parametrize(("action", "status"), [("retry", Status.FAILED), ("rerun", Status.SUCCEEDED)])
def test_a_double_click_or_a_replay_of_try_again_and_rerun_makes_one_job(alice, make_job, broker, action, status):
    source = make_job(status=status, step=4)
    page = alice.get(f"/videos/{source.pk}/").content.decode()
    form = re.search(rf'action="/videos/{source.pk}/{action}/">.*?name="token" value="([0-9a-f-]{{36}})"', page)
    assert form is not None, "the button carries a one-time token"

    answers = [alice.post(f"/videos/{source.pk}/{action}/", {"token": form.group(1)}) for _ in range(3)]

    made = VideoGeneration.objects.exclude(pk=source.pk)
    assert made.count() == 1
    assert {answer["Location"] for answer in answers} == {f"/videos/{made.get().pk}/"}
    # The next render gives the button a new token: a later click is a new request.
    assert form.group(1) not in alice.get(f"/videos/{source.pk}/").content.decode()


def test_staff_read_anyones_video_page_without_its_actions_and_others_still_get_404(
    client, make_job, other_user, admin_user, stored_video
):
    job = make_job(status=Status.SUCCEEDED, progress=100, video_file=stored_video)  # alice's
    client.force_login(admin_user)

    page = client.get(job.get_absolute_url())  # the admin's "View on site"

    assert page.status_code == 200
    content = page.content.decode()
    assert "alice's video: you see it as staff" in content
    assert f'src="/videos/{job.pk}/video.mp4"' in content
    assert f"/videos/{job.pk}/rerun/" not in content and f"/videos/{job.pk}/delete/" not in content
    client.force_login(other_user)
    assert client.get(job.get_absolute_url()).status_code == 404


def test_the_accounts_lines_come_alone_for_the_page_to_swap_in(alice, make_job, client):
    answer = alice.get("/videos/account/")

    assert answer.status_code == 200
    content = answer.content.decode()
    assert content.lstrip().startswith('<div class="account" id="account" data-url="/videos/account/">')
    assert "This month: 0 credits (US$0.00) of your 10,000 credits (US$100.00)" in content
    assert "no-cache" in answer["Cache-Control"]
    client.logout()
    assert client.get("/videos/account/").status_code == 302  # to the login
