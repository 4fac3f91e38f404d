"""The history on the dashboard: filters, download, re-run, delete, the credit balance and time estimates."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import responses
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from videos import catalog
from videos.forms import HistoryFilterForm
from videos.models import CreditBalance, Status, VideoGeneration
from videos.services import actions, creation, selectors
from videos.services.steps import MAX_CANCEL_ATTEMPTS

pytestmark = pytest.mark.django_db
BASE = "https://runway.test"


def test_history_filters_by_status(alice, make_job, broker):
    make_job(prompt="done one", status=Status.SUCCEEDED)
    make_job(prompt="broken one", status=Status.FAILED)
    make_job(prompt="busy one", status=Status.RUNNING)

    def shown(query: str) -> str:
        return alice.get("/videos/" + query).content.decode()

    assert all(p in shown("") for p in ("done one", "broken one", "busy one"))
    assert "done one" in shown("?status=succeeded") and "broken one" not in shown("?status=succeeded")
    assert "broken one" in shown("?status=failed") and "busy one" not in shown("?status=failed")
    assert "busy one" in shown("?status=active") and "done one" not in shown("?status=active")
    assert "done one" in shown("?status=nonsense")  # an unknown filter shows everything


def test_dashboard_shows_the_balance_the_worker_read_with_its_age_and_never_asks_runway(alice, broker):
    CreditBalance.objects.create(credits=10_000, fetched_at=timezone.now() - timedelta(seconds=90))
    with responses.RequestsMock() as runway:
        content = alice.get("/videos/").content.decode()
        assert len(runway.calls) == 0
    assert "Runway credits:" in content
    assert "<strong>10,000</strong>" in content
    assert "checked 1\xa0minute ago" in content
    assert broker.messages() == []  # fresh enough: beat refreshes it


def test_a_balance_read_moments_ago_was_checked_just_now(alice, broker):
    CreditBalance.objects.create(credits=5, fetched_at=timezone.now() - timedelta(seconds=5))
    assert "checked just now" in alice.get("/videos/").content.decode()


def test_before_the_worker_has_read_a_balance_the_page_says_checking_and_asks_it_once(alice, broker):
    with responses.RequestsMock() as runway:
        first = alice.get("/videos/").content.decode()
        alice.get("/videos/")
        assert len(runway.calls) == 0
    assert "Runway credits:" in first
    assert "checking…" in first
    assert [t.name for t in broker.credit_refreshes()] == ["videos.tasks.refresh_credit_balance"]


def test_no_key_means_no_balance_request(alice, settings):
    settings.RUNWAY_API_KEY = ""
    with responses.RequestsMock() as mocked:  # any request would fail this test
        alice.get("/videos/")
        assert len(mocked.calls) == 0


def test_a_finished_video_can_be_downloaded_re_run_and_deleted(alice, make_job, stored_video, broker):
    job = make_job(status=Status.SUCCEEDED, video_file=stored_video, runway_task_id="t-1", seed=7)
    card = alice.get("/videos/").content.decode()
    # A bare download attribute: the name comes from the answer's Content-Disposition.
    assert f'href="/videos/{job.pk}/video.mp4" download>' in card
    assert f'action="/videos/{job.pk}/rerun/"' in card
    assert f'action="/videos/{job.pk}/delete/"' in card


def test_re_run_keeps_the_seed_and_settings(alice, make_job, broker):
    job = make_job(status=Status.SUCCEEDED, seed=7, model="gen4.5", ratio="720:1280", duration=8)
    response = alice.post(f"/videos/{job.pk}/rerun/")
    new = VideoGeneration.objects.exclude(pk=job.pk).get()
    assert response["Location"] == f"/videos/{new.pk}/"
    assert (new.prompt, new.model, new.ratio, new.duration, new.seed) == (job.prompt, "gen4.5", "720:1280", 8, 7)


def test_re_run_with_a_new_seed_changes_only_the_seed(alice, make_job, broker, monkeypatch):
    monkeypatch.setattr(creation.secrets, "randbelow", lambda n: 99)
    job = make_job(status=Status.SUCCEEDED, seed=7)
    alice.post(f"/videos/{job.pk}/rerun/", {"seed": "new"})
    new = VideoGeneration.objects.exclude(pk=job.pk).get()
    assert new.seed == 99
    assert new.prompt == job.prompt


def test_an_unfinished_video_cannot_be_re_run(alice, make_job):
    job = make_job(status=Status.RUNNING)
    response = alice.post(f"/videos/{job.pk}/rerun/", follow=True)
    assert "has not ended yet" in response.content.decode()
    assert VideoGeneration.objects.count() == 1


def test_delete_hides_the_video_at_once_and_the_worker_deletes_it_at_runway_then_our_files(
    alice, make_job, stored_video, broker, django_capture_on_commit_callbacks
):
    poster = default_storage.save("posters/test/p.jpg", ContentFile(b"jpeg"))
    job = make_job(
        prompt="to be deleted", status=Status.SUCCEEDED, video_file=stored_video, poster=poster, runway_task_id="t-1"
    )
    with responses.RequestsMock() as runway, django_capture_on_commit_callbacks(execute=True):
        response = alice.post(f"/videos/{job.pk}/delete/", follow=True)
        assert len(runway.calls) == 0  # nothing waits on Runway

    assert response.redirect_chain == [("/videos/", 302)]
    assert "The video was deleted." in response.content.decode()
    assert "to be deleted" not in response.content.decode()
    for page in ("", "status/", "video.mp4", "poster.jpg"):
        assert alice.get(f"/videos/{job.pk}/{page}").status_code == 404, page
    assert alice.post(f"/videos/{job.pk}/rerun/").status_code == 404
    deleting = VideoGeneration.objects.get(pk=job.pk)  # for staff, until the worker is done
    assert (deleting.delete_pending, deleting.status_label) == (True, "Deleting…")
    assert default_storage.exists(stored_video)
    [queued] = broker.tasks()
    assert (queued.name, queued.args) == ("videos.tasks.cancel_at_runway", [job.pk, deleting.step])

    with responses.RequestsMock() as runway:
        runway.delete(f"{BASE}/v1/tasks/t-1", status=204)
        queued.run()
        assert [c.request.method for c in runway.calls] == ["DELETE"]
    assert not VideoGeneration.objects.filter(pk=job.pk).exists()
    assert not default_storage.exists(stored_video)
    assert not default_storage.exists(poster)


def test_delete_of_a_video_runway_never_had_removes_it_and_its_files_once_committed(
    make_job, broker, django_capture_on_commit_callbacks
):
    image = default_storage.save("inputs/test/first.png", ContentFile(b"\x89PNG\r\n\x1a\n"))
    job = make_job(status=Status.CANCELLED, image=image)
    with responses.RequestsMock(), django_capture_on_commit_callbacks(execute=False) as callbacks:
        actions.generation_delete(generation_id=job.pk)
    assert not VideoGeneration.objects.filter(pk=job.pk).exists()
    assert default_storage.exists(image)  # not before the row's deletion is committed
    for callback in callbacks:
        callback()
    assert not default_storage.exists(image)
    assert broker.tasks() == []


@pytest.mark.parametrize(("answer", "attempts"), [(404, 1), (401, 1), (503, MAX_CANCEL_ATTEMPTS)])
def test_a_deleted_video_goes_even_when_runway_has_no_such_task_or_will_not_delete_it(
    make_job, stored_video, broker, django_capture_on_commit_callbacks, answer, attempts
):
    job = make_job(status=Status.FAILED, video_file=stored_video, runway_task_id="t-1")
    with django_capture_on_commit_callbacks(execute=True):
        actions.generation_delete(generation_id=job.pk)
    with responses.RequestsMock() as runway:
        runway.delete(f"{BASE}/v1/tasks/t-1", status=answer, json={"error": "no"})
        while broker.tasks():
            queued = broker.tasks()[-1]
            broker.clear()
            queued.run()
        assert len(runway.calls) == attempts
    assert not VideoGeneration.objects.filter(pk=job.pk).exists()
    assert not default_storage.exists(stored_video)


def test_a_video_deleted_while_its_cancel_is_out_at_runway_goes_when_the_cancel_is_done(
    make_job, stored_video, broker, django_capture_on_commit_callbacks
):
    job = make_job(status=Status.RUNNING, runway_task_id="t-1", video_file=stored_video)
    with django_capture_on_commit_callbacks(execute=True):
        actions.generation_cancel(generation_id=job.pk)
    [cancel] = broker.tasks()

    def deleted_by_its_owner_meanwhile(request):
        with django_capture_on_commit_callbacks(execute=True):
            actions.generation_delete(generation_id=job.pk)
        return (204, {}, "")

    with responses.RequestsMock() as runway:
        runway.add_callback(responses.DELETE, f"{BASE}/v1/tasks/t-1", callback=deleted_by_its_owner_meanwhile)
        cancel.run()
        assert len(runway.calls) == 1
        assert not VideoGeneration.objects.filter(pk=job.pk).exists()
        assert not default_storage.exists(stored_video)
        broker.tasks()[-1].run()  # the delete's own message finds nothing left to do
        assert len(runway.calls) == 1


def test_deleting_twice_is_harmless(make_job, broker, django_capture_on_commit_callbacks):
    job = make_job(status=Status.TIMED_OUT, runway_task_id="t-1", cancel_pending=True, step=4)
    with django_capture_on_commit_callbacks(execute=True):
        actions.generation_delete(generation_id=job.pk)
        actions.generation_delete(generation_id=job.pk)
    job.refresh_from_db()
    assert (job.step, job.delete_pending, job.cancel_pending) == (5, True, True)
    assert [t.args for t in broker.tasks()] == [[job.pk, 5]]
    with responses.RequestsMock() as runway:
        runway.delete(f"{BASE}/v1/tasks/t-1", status=204)
        broker.tasks()[0].run()
    actions.generation_delete(generation_id=job.pk)  # the row is gone: nothing to do, no error
    assert not VideoGeneration.objects.filter(pk=job.pk).exists()


def test_a_deleted_video_whose_message_is_lost_is_swept_up(make_job, broker, django_capture_on_commit_callbacks):
    from videos.services import recovery

    job = make_job(status=Status.SUCCEEDED, runway_task_id="t-1")
    with django_capture_on_commit_callbacks(execute=True):
        actions.generation_delete(generation_id=job.pk)
    broker.clear()
    assert recovery.generation_sweep(now=timezone.now() + timedelta(minutes=1)) == 1
    with responses.RequestsMock() as runway:
        runway.delete(f"{BASE}/v1/tasks/t-1", status=204)
        broker.tasks()[0].run()
    assert not VideoGeneration.objects.filter(pk=job.pk).exists()


def test_an_unfinished_video_must_be_cancelled_before_it_is_deleted(alice, make_job):
    job = make_job(status=Status.RUNNING, runway_task_id="t-1")
    response = alice.post(f"/videos/{job.pk}/delete/", follow=True)
    assert "Cancel this video before deleting it." in response.content.decode()
    assert VideoGeneration.objects.filter(pk=job.pk).exists()


@pytest.mark.parametrize("action", ["rerun", "delete"])
def test_another_users_video_cannot_be_re_run_or_deleted(alice, make_job, other_user, action):
    job = make_job(owner=other_user, status=Status.SUCCEEDED)
    assert alice.post(f"/videos/{job.pk}/{action}/").status_code == 404
    assert VideoGeneration.objects.count() == 1


def done_at_runway_in(make_job, seconds: float, *, waited: float = 0.0, model: str = "gen4.5") -> None:
    """A job of `model` that waited `waited` s to be sent, then took `seconds` at Runway."""
    done = make_job(status=Status.SUCCEEDED, model=model)
    sent = timezone.now() - timedelta(hours=1)
    VideoGeneration.objects.filter(pk=done.pk).update(
        created_at=sent - timedelta(seconds=waited), submitted_at=sent, finished_at=sent + timedelta(seconds=seconds)
    )


def test_status_reports_elapsed_time_and_an_estimate_from_the_models_time_at_runway(alice, make_job):
    # A job's wait to be sent is not Runway's time, and one slow job moves the median little.
    for seconds, waited in ((40, 0), (50, 900), (60, 0), (600, 0), (45, 0)):
        done_at_runway_in(make_job, seconds, waited=waited)
    done_at_runway_in(make_job, 5, model="veo3.1")  # another model does not count
    now = timezone.now()
    job = make_job(status=Status.RUNNING, progress=30)
    VideoGeneration.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=70), submitted_at=now - timedelta(seconds=12)
    )

    data = alice.get(f"/videos/{job.pk}/status/").json()

    assert 70 <= data["elapsed_seconds"] <= 72  # since it was made
    assert 12 <= data["runway_seconds"] <= 14  # since Runway accepted it
    assert data["estimated_seconds"] == 50
    assert data["progress_seconds"] is not None and data["progress_seconds"] >= 12  # when 30 % was read


def test_before_any_job_of_a_model_has_finished_the_estimate_is_its_first_guess(alice, make_job):
    job = make_job(status=Status.PENDING, model="veo3.1_fast", submitted_at=timezone.now())

    data = alice.get(f"/videos/{job.pk}/status/").json()

    assert data["estimated_seconds"] == catalog.FIRST_GUESS_SECONDS["veo3.1_fast"]
    assert data["progress_seconds"] is None  # no figure from Runway yet


def test_a_job_waiting_to_be_sent_has_no_time_at_runway(alice, make_job):
    data = alice.get(f"/videos/{make_job(status=Status.QUEUED).pk}/status/").json()

    assert (data["runway_seconds"], data["progress_seconds"]) == (None, None)


def test_the_form_carries_the_model_table_for_its_pickers(alice, settings):
    settings.RUNWAY_API_KEY = ""
    content = alice.get("/videos/").content.decode()
    start = content.index('<script id="pickers" type="application/json">') + len(
        '<script id="pickers" type="application/json">'
    )
    pickers = json.loads(content[start : content.index("</script>", start)])
    assert pickers["defaults"] == {
        "text_to_video": "gen4.5",
        "image_to_video": "gen4_turbo",
        "video_to_video": "aleph2",
        "character_performance": "act_two",
    }
    assert pickers["offers"]["gen4.5"]["text_to_video"]["ratios"] == ["1280:720", "720:1280"]
    assert pickers["offers"]["veo3.1"]["text_to_video"]["durations"] == [4, 6, 8]
    assert pickers["offers"]["veo3.1"]["text_to_video"]["seed"] is True
    assert "text_to_video" not in pickers["offers"]["gen4_turbo"]


# --- search and filters ------------------------------------------------------------------------


def made_at(job: VideoGeneration, when) -> VideoGeneration:
    """The job as if made at `when` (created_at is set on insert)."""
    VideoGeneration.objects.filter(pk=job.pk).update(created_at=when)
    job.refresh_from_db()
    return job


def prompts(jobs) -> set[str]:
    return {job.prompt for job in jobs}


def searched(user, search: str) -> set[str]:
    return prompts(selectors.generation_history(owner=user, search=search))


def test_history_search_finds_prompts_containing_the_words_in_any_case(user, make_job):
    make_job(prompt="A Lighthouse in a storm")
    make_job(prompt="A cat on a sofa")

    assert searched(user, "lighthouse") == {"A Lighthouse in a storm"}
    assert searched(user, "  STORM ") == {"A Lighthouse in a storm"}
    assert len(selectors.generation_history(owner=user, search="")) == 2


def test_history_search_wants_every_word_in_any_order(user, make_job):
    make_job(prompt="A lighthouse in a storm, waves crashing")
    make_job(prompt="A lighthouse at dawn")
    make_job(prompt="A storm over the sea")

    assert searched(user, "storm lighthouse") == {"A lighthouse in a storm, waves crashing"}
    assert searched(user, "lighthouse storm") == {"A lighthouse in a storm, waves crashing"}
    assert searched(user, "waves lighthouse storm") == {"A lighthouse in a storm, waves crashing"}
    assert searched(user, "storm lighthouse rainbow") == set()  # every word, not any
    assert searched(user, "storm") == {"A lighthouse in a storm, waves crashing", "A storm over the sea"}


def test_history_search_ignores_case_in_every_script_and_finds_parts_of_words(user, make_job):
    make_job(prompt="ÉTÉ À PARIS, Straße")
    make_job(prompt="Ünïcode Ωμέγα lighthouse")

    assert searched(user, "été paris") == {"ÉTÉ À PARIS, Straße"}
    assert searched(user, "STRASSE") == {"ÉTÉ À PARIS, Straße"}  # casefold: ß is ss
    assert searched(user, "ωμέγα") == {"Ünïcode Ωμέγα lighthouse"}
    assert searched(user, "light") == {"Ünïcode Ωμέγα lighthouse"}  # the start of a word


def test_history_search_on_postgresql_also_finds_other_forms_of_each_word(user, make_job):
    if connection.vendor != "postgresql":
        pytest.skip("full-text search is PostgreSQL's; elsewhere a word matches as it is written")
    make_job(prompt="Storms rolling over lighthouses")
    make_job(prompt="A cat on a sofa")

    assert searched(user, "storm lighthouse") == {"Storms rolling over lighthouses"}
    assert searched(user, "rolled") == {"Storms rolling over lighthouses"}
    assert searched(user, "the storm") == {"Storms rolling over lighthouses"}  # "the": a word it does not index
    assert searched(user, "the") == {"Storms rolling over lighthouses", "A cat on a sofa"}


def test_history_filters_by_model_and_by_each_ended_status(user, make_job):
    make_job(prompt="veo cancelled", model="veo3.1_fast", status=Status.CANCELLED)
    make_job(prompt="gen timed out", model="gen4.5", status=Status.TIMED_OUT)
    make_job(prompt="gen failed", model="gen4.5", status=Status.FAILED)

    assert prompts(selectors.generation_history(owner=user, model="veo3.1_fast")) == {"veo cancelled"}
    assert prompts(selectors.generation_history(owner=user, status="cancelled")) == {"veo cancelled"}
    assert prompts(selectors.generation_history(owner=user, status="timed_out")) == {"gen timed out"}
    assert prompts(selectors.generation_history(owner=user, status="failed")) == {"gen failed"}
    assert prompts(selectors.generation_history(owner=user, status="failed", model="veo3.1_fast")) == set()


def test_history_filters_by_date_in_the_users_time_zone(alice, make_job):
    # 23:30 UTC on Nov 28 is already Nov 29 in Tokyo (UTC+9).
    late = made_at(make_job(prompt="late on the 28th UTC"), datetime(2026, 11, 28, 23, 30, tzinfo=UTC))
    made_at(make_job(prompt="early on the 28th UTC"), datetime(2026, 11, 28, 1, 0, tzinfo=UTC))

    in_utc = alice.get("/videos/?since=2026-11-29").content.decode()
    alice.cookies["tz"] = "Asia/Tokyo"
    in_tokyo = alice.get("/videos/?since=2026-11-29").content.decode()
    until_28th_in_tokyo = alice.get("/videos/?until=2026-11-28").content.decode()

    assert "late on the 28th UTC" not in in_utc and "No videos match" in in_utc
    assert late.prompt in in_tokyo and "early on the 28th UTC" not in in_tokyo
    assert "early on the 28th UTC" in until_28th_in_tokyo and late.prompt not in until_28th_in_tokyo


def test_a_from_date_after_the_to_date_says_why_nothing_matches(alice, make_job):
    make_job(prompt="A lighthouse")

    page = alice.get("/videos/?since=2026-12-05&until=2026-12-01").content.decode()

    assert (
        "No videos match. The From date (Dec 5, 2026) is after the To date (Dec 1, 2026): no day is in between." in page
    )


def test_date_presets_count_back_from_the_start_of_today(user, make_job):
    now = timezone.now()
    made_at(make_job(prompt="today"), now)
    made_at(make_job(prompt="five days ago"), now - timedelta(days=5))
    made_at(make_job(prompt="twenty days ago"), now - timedelta(days=20))
    made_at(make_job(prompt="two months ago"), now - timedelta(days=60))

    def shown(when: str) -> set[str]:
        return prompts(selectors.generation_history(owner=user, **HistoryFilterForm({"when": when}).filters(now=now)))

    assert shown("today") == {"today"}
    assert shown("7d") == {"today", "five days ago"}
    assert shown("30d") == {"today", "five days ago", "twenty days ago"}
    assert len(shown("")) == 4


@pytest.mark.parametrize(
    "query",
    [
        "?status=nonsense",
        "?model=gen9",
        "?since=yesterday&until=2026-13-45",
        "?since=0001-01-01&until=9999-12-31",
        "?when=forever&page=banana",
        "?q=" + "x" * 5000,
        "?q=%00%ff&model=&status=",
    ],
)
def test_bad_filter_values_are_ignored_never_an_error(alice, make_job, query):
    make_job(prompt="still here")
    response = alice.get("/videos/" + query)
    assert response.status_code == 200
    content = response.content.decode()
    # A value that does not parse filters nothing (a long search is refused, so filters nothing either).
    assert "still here" in content


def test_the_status_filters_include_cancelled_and_timed_out_and_mark_the_current_one(alice, make_job):
    make_job(prompt="stopped", status=Status.CANCELLED)
    content = alice.get("/videos/?status=cancelled&q=stop").content.decode()

    # Each keeps the search; "All" drops only the status.
    assert '<a href="?status=cancelled&amp;q=stop" class="tab active" aria-current="page">Cancelled</a>' in content
    assert '<a href="?status=timed_out&amp;q=stop" class="tab">Timed out</a>' in content
    assert '<a href="?q=stop" class="tab">All</a>' in content
    filters = content[content.index('<nav class="filters"') :]
    assert filters[: filters.index("</nav>")].count('aria-current="page"') == 1
    assert "stopped" in content


def test_no_match_says_so_and_links_to_clear_the_filters(alice, make_job):
    make_job(prompt="a dog")
    content = alice.get("/videos/?q=unicorn").content.decode()
    assert "No videos match." in content
    assert '<a href="/videos/">Clear the search and filters</a>' in content
    assert "No videos yet" not in content


def test_the_search_form_works_without_script_and_keeps_its_values(alice):
    content = alice.get("/videos/?q=sea+waves&model=veo3.1&status=failed&when=7d").content.decode()
    form = re.search(r'<form method="get" class="history-search".*?</form>', content, re.S)
    assert form, "no search form"
    assert 'name="q" id="history-q" value="sea waves"' in form.group(0)
    assert '<option value="veo3.1" selected>Veo 3.1</option>' in form.group(0)
    assert '<option value="7d" selected>Last 7 days</option>' in form.group(0)
    assert '<input type="hidden" name="status" value="failed">' in form.group(0)


def test_pages_of_history_keep_the_search_and_filters(alice, make_job):
    for n in range(12):
        make_job(prompt=f"ocean {n}", status=Status.FAILED)
    make_job(prompt="desert", status=Status.FAILED)

    first = alice.get("/videos/?q=ocean&status=failed").content.decode()
    second = alice.get("/videos/?q=ocean&status=failed&page=2").content.decode()

    assert '<a href="?q=ocean&amp;status=failed&amp;page=2">Older</a>' in first
    assert "Page 1 of 2" in first
    assert '<a href="?q=ocean&amp;status=failed&amp;page=1">Newer</a>' in second
    assert "desert" not in first + second


# --- how a job is shown: model names, times, the input image ------------------------------------


def test_cards_and_the_detail_page_name_models_as_people_know_them(alice, make_job):
    job = make_job(model="veo3.1_fast", endpoint="text_to_video", ratio="1280:720", duration=8)
    card = re.search(r'<article class="generation.*?</article>', alice.get("/videos/").content.decode(), re.S)
    detail = alice.get(f"/videos/{job.pk}/").content.decode()

    assert card and "· Veo 3.1 Fast ·" in card.group(0)
    assert "<dd>Veo 3.1 Fast, from text</dd>" in detail
    assert "veo3.1_fast" not in card.group(0) + detail and "text_to_video" not in detail


def test_the_model_filter_offers_friendly_names(alice):
    content = alice.get("/videos/").content.decode()
    assert '<option value="gen4.5">Gen-4.5</option>' in content
    assert '<option value="gen4_turbo">Gen-4 Turbo</option>' in content
