import csv
import io
import re

import pytest
import responses
from django.utils import timezone

from tests.conftest import run_next_step
from videos.models import GroupPolicy, SpendEntry, Status, VideoGeneration
from videos.services import ledger

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/videos/videogeneration/"
TASK_URL = "https://runway.test/v1/tasks/t-1"


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_changelist_shows_jobs_with_their_columns(staff, make_job):
    make_job(prompt="A very long description of a serene mountain landscape at sunset, with birds")
    content = staff.get(CHANGELIST).content.decode()
    assert "A very long description of a serene mountain landscape at s…" in content
    assert "gen4.5" in content
    assert "alice" in content


def test_changelist_filters_by_status_and_searches_task_ids(staff, make_job):
    make_job(prompt="first", status=Status.FAILED, runway_task_id="aaa-111")
    make_job(prompt="second", status=Status.SUCCEEDED, runway_task_id="bbb-222")

    by_status = staff.get(CHANGELIST, {"status__exact": "failed"}).content.decode()
    assert "first" in by_status and "second" not in by_status
    by_task = staff.get(CHANGELIST, {"q": "bbb-222"}).content.decode()
    assert "second" in by_task and "first" not in by_task
    by_model = staff.get(CHANGELIST, {"model": "gen4.5"})
    assert by_model.status_code == 200


def test_change_page_shows_runway_fields_read_only(staff, make_job, settings):
    job = make_job(runway_task_id="aaa-111", failure_code="SAFETY.INPUT.TEXT", status=Status.FAILED)
    content = staff.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    assert "SAFETY.INPUT.TEXT" in content
    assert 'name="runway_task_id"' not in content
    assert 'name="status"' not in content
    assert settings.RUNWAY_API_KEY not in content


def test_staff_cannot_add_jobs_by_hand(staff):
    assert staff.get(f"{CHANGELIST}add/").status_code == 403


def test_cancel_action_cancels_at_once_and_leaves_runway_to_the_worker(
    staff, make_job, broker, django_capture_on_commit_callbacks
):
    running = make_job(status=Status.RUNNING, runway_task_id="t-1")
    done = make_job(status=Status.SUCCEEDED)
    with responses.RequestsMock() as runway, django_capture_on_commit_callbacks(execute=True):
        response = staff.post(CHANGELIST, {"action": "cancel", "_selected_action": [running.pk, done.pk]}, follow=True)
        assert len(runway.calls) == 0
    content = response.content.decode()
    assert "1 video cancelled." in content
    assert "already ended" in content
    assert "Cancelling…" in content  # the changelist shows the job as the worker still has it

    with responses.RequestsMock() as runway:
        runway.delete(TASK_URL, status=204)
        job = run_next_step(running)
        assert len(runway.calls) == 1
    assert (job.status, job.status_label) == (Status.CANCELLED, "Cancelled")


def test_poll_now_action_queues_the_next_step_and_says_when_it_runs(staff, make_job, broker):
    from datetime import timedelta

    from django.utils import timezone

    job = make_job(status=Status.PENDING, runway_task_id="t-1", step=1, next_check_at=timezone.now())
    VideoGeneration.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=1))
    done = make_job(status=Status.SUCCEEDED)
    with responses.RequestsMock() as runway:
        response = staff.post(CHANGELIST, {"action": "poll_now", "_selected_action": [job.pk, done.pk]}, follow=True)
        assert len(runway.calls) == 0
    content = response.content.decode()
    assert f"#{job.pk}: poll queued, runs now." in content
    assert f"#{done.pk}: This video has already ended (done)." in content
    assert [(t.name, t.args) for t in broker.tasks()] == [("videos.tasks.poll", [job.pk, 1])]

    with responses.RequestsMock() as runway:
        runway.get(TASK_URL, json={"id": "t-1", "status": "RUNNING", "progress": 0.6})
        broker.tasks()[0].run()
    job.refresh_from_db()
    assert (job.status, job.progress) == (Status.RUNNING, 60)


def test_poll_now_right_after_a_poll_waits_for_the_poll_interval(staff, make_job, broker, settings):
    job = make_job(status=Status.RUNNING, runway_task_id="t-1", step=2, next_check_at=None)
    job.next_check_at = job.updated_at  # as a poll that just ended leaves it
    job.save()
    response = staff.post(CHANGELIST, {"action": "poll_now", "_selected_action": [job.pk]}, follow=True)
    assert f"#{job.pk}: poll queued, runs in {settings.RUNWAY_POLL_INTERVAL} s." in response.content.decode()


def test_non_staff_cannot_open_the_admin(client, user):
    client.force_login(user)
    assert client.get(CHANGELIST).status_code == 302


def test_the_bulk_delete_asks_first(staff, make_job):
    job = make_job(status=Status.SUCCEEDED)
    page = staff.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [job.pk]})
    assert page.status_code == 200 and "<title>Delete multiple objects" in page.content.decode()
    assert VideoGeneration.objects.filter(pk=job.pk, delete_pending=False).exists()


def test_deleting_in_the_admin_goes_through_the_service(
    staff, make_job, stored_video, broker, django_capture_on_commit_callbacks
):
    from django.core.files.storage import default_storage

    done = make_job(status=Status.SUCCEEDED, runway_task_id="t-1", video_file=stored_video)
    running = make_job(status=Status.RUNNING, runway_task_id="t-2")
    with responses.RequestsMock() as runway, django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            CHANGELIST,
            {"action": "delete_selected", "_selected_action": [done.pk, running.pk], "post": "yes"},
            follow=True,
        )
        assert len(runway.calls) == 0
    content = response.content.decode()
    assert "1 video deleted." in content
    assert "Cancel this video before deleting it." in content
    assert "Successfully deleted" not in content  # one message of what was done, not Django's too
    assert "Deleting…" in content  # staff still see it, until the worker has deleted it at Runway
    assert staff.get(f"{CHANGELIST}{done.pk}/change/").status_code == 200

    with responses.RequestsMock() as runway:
        runway.delete(TASK_URL, status=204)
        [queued] = broker.tasks()
        queued.run()
        assert [c.request.method for c in runway.calls] == ["DELETE"]
    assert not VideoGeneration.objects.filter(pk=done.pk).exists()
    assert not default_storage.exists(stored_video)
    assert "Deleting…" not in staff.get(CHANGELIST).content.decode()


def test_deleting_one_video_from_its_change_page_waits_on_nothing(
    staff, make_job, broker, django_capture_on_commit_callbacks
):
    job = make_job(status=Status.FAILED, runway_task_id="t-1")
    with responses.RequestsMock() as runway, django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"{CHANGELIST}{job.pk}/delete/", {"post": "yes"}, follow=True)
        assert len(runway.calls) == 0
    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]] == ["1 video deleted."]
    job.refresh_from_db()
    assert job.delete_pending
    assert [t.name for t in broker.tasks()] == ["videos.tasks.cancel_at_runway"]


def test_staff_filter_jobs_by_the_work_left_and_see_each_jobs_next_step(staff, make_job, settings):
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(hours=1)
    lost = make_job(prompt="lost poll", status=Status.RUNNING, next_check_at=long_ago)
    make_job(prompt="soon poll", status=Status.RUNNING, next_check_at=timezone.now() + timedelta(seconds=5))
    make_job(prompt="poll on its way", status=Status.RUNNING, next_check_at=timezone.now() - timedelta(seconds=2))
    # Late by one and a half poll intervals: the sweep sends it again, but it is not yet an alarm.
    make_job(prompt="a bit late", status=Status.RUNNING, next_check_at=timezone.now() - timedelta(seconds=15))
    make_job(prompt="all done", status=Status.SUCCEEDED)

    def shown(work: str) -> set[str]:
        content = staff.get(CHANGELIST, {"work": work}).content.decode()
        prompts = ("lost poll", "soon poll", "poll on its way", "a bit late", "all done")
        return {prompt for prompt in prompts if prompt in content}

    assert shown("waiting") == {"lost poll", "soon poll", "poll on its way", "a bit late"}
    assert shown("due") == {"lost poll", "poll on its way", "a bit late"}
    assert shown("overdue") == {"lost poll"}
    assert shown("none") == {"all done"}
    page = staff.get(f"{CHANGELIST}{lost.pk}/change/").content.decode()
    assert f"poll, due {long_ago:%Y-%m-%d %H:%M:%S} UTC" in page


def test_the_overdue_filter_lists_the_jobs_healthz_counts(staff, client, make_job, settings):
    from datetime import timedelta

    from django.utils import timezone

    from videos.services import recovery

    recovery.generation_sweep()
    now = timezone.now()
    make_job(prompt="queued long ago", status=Status.QUEUED, next_check_at=now - timedelta(seconds=25))
    stuck = make_job(prompt="create cut off", status=Status.SUBMITTING, next_check_at=None)
    VideoGeneration.objects.filter(pk=stuck.pk).update(updated_at=now - timedelta(minutes=3))
    make_job(prompt="just late", status=Status.QUEUED, next_check_at=now - timedelta(seconds=15))

    content = staff.get(CHANGELIST, {"work": "overdue"}).content.decode()
    client.logout()
    settings.METRICS_TOKEN = "tests-metrics-token"
    monitor = {"Authorization": "Bearer tests-metrics-token"}
    counted = client.get("/healthz", headers=monitor).json()["checks"]["overdue_jobs"]["count"]

    listed = {prompt for prompt in ("queued long ago", "create cut off", "just late") if prompt in content}
    assert listed == {"queued long ago", "create cut off"}
    assert counted == len(listed)
    assert "Overdue (as /healthz counts)" in content


# --- Costs and the spend ledger ------------------------------------------------------------

SPEND = "/admin/videos/spendentry/"


def spent(job: VideoGeneration, *, charged: int | None = None) -> VideoGeneration:
    """The job's reservation in the spend ledger, and its final cost when `charged` is given."""
    ledger.spend_reserve(generation=job)
    if charged is not None:
        ledger.spend_settle(generation=job, charged=charged)
    return job


def test_changelist_shows_each_jobs_estimate_and_final_cost(staff, make_job):
    spent(make_job(prompt="running one", duration=5))  # 60 reserved, not final
    spent(make_job(prompt="done one", duration=4, status=Status.SUCCEEDED), charged=31)
    make_job(prompt="never reserved")

    response = staff.get(CHANGELIST)

    cells = [
        (job.prompt, job.ledger_estimate, job.ledger_total, bool(job.ledger_settled))
        for job in response.context["cl"].result_list
    ]
    assert sorted(cells) == [
        ("done one", 48, 31, True),
        ("never reserved", None, None, False),
        ("running one", 60, 60, False),
    ]
    content = response.content.decode()
    assert '<td class="field-cost">about 60</td>' in content and '<td class="field-cost">31</td>' in content
    assert '<td class="field-model_name">Gen-4.5</td>' in content  # the name, not the API's id


def test_the_spend_ledger_is_read_only_in_the_admin(staff, make_job):
    job = spent(make_job(), charged=45)
    entry = SpendEntry.objects.filter(generation_number=job.pk).first()
    assert entry is not None

    assert staff.get(SPEND).status_code == 200
    assert staff.get(f"{SPEND}add/").status_code == 403
    change = staff.get(f"{SPEND}{entry.pk}/change/")
    assert change.status_code == 200 and b'name="credits"' not in change.content  # a view page, no form
    assert staff.post(f"{SPEND}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SpendEntry.objects.filter(generation_number=job.pk).count() == 2


def test_the_spend_list_filters_and_totals_what_it_selects(staff, make_job, other_user):
    spent(make_job(duration=5), charged=50)
    spent(make_job(owner=other_user, model="veo3.1", duration=4), charged=160)

    everyone = staff.get(SPEND)
    assert everyone.context["spend_totals"] == {"credits": 210, "dollars": "US$2.10", "jobs": 2}
    bob = staff.get(SPEND, {"username": "bob"})
    assert bob.context["spend_totals"] == {"credits": 160, "dollars": "US$1.60", "jobs": 1}
    assert "160 credits (US$1.60) over 1 job." in bob.content.decode()
    veo = staff.get(SPEND, {"model": "veo3.1"})
    assert veo.context["spend_totals"]["credits"] == 160
    today = timezone.now()
    by_day = staff.get(
        SPEND, {"created_at__year": today.year, "created_at__month": today.month, "created_at__day": today.day}
    )
    assert by_day.context["spend_totals"]["credits"] == 210


def test_spend_entries_export_as_csv_safe_for_spreadsheets(staff, make_job, django_user_model):
    mallory = django_user_model.objects.create_user(username="=cmd", password="another-test-password")
    job = spent(make_job(owner=mallory), charged=45)
    selected = list(SpendEntry.objects.filter(generation_number=job.pk).values_list("pk", flat=True))

    response = staff.post(SPEND, {"action": "export_csv", "_selected_action": selected})

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:7] == ["created_at", "username", "user_id", "generation_number", "model", "kind", "credits"]
    assert [(r[1], r[5], r[6], r[7]) for r in rows[1:]] == [
        ("'=cmd", "reserved", "60", ""),
        ("'=cmd", "final", "-15", "45"),
    ]


def test_staff_set_a_users_budget_on_the_user_page(staff, user):
    page = staff.get(f"/admin/auth/user/{user.pk}/change/")
    assert b"video_budget-0-monthly_credits" in page.content


def test_the_change_page_links_the_video_through_the_checked_view_and_has_no_save(staff, make_job, stored_video):
    job = make_job(status=Status.SUCCEEDED, video_file=stored_video)
    content = staff.get(f"{CHANGELIST}{job.pk}/change/").content.decode()
    assert f'<a href="/videos/{job.pk}/video.mp4">{stored_video}</a>' in content
    assert f'src="/videos/{job.pk}/video.mp4"' in content  # the player
    assert "/media/" not in content
    assert 'name="_save"' not in content and 'name="_continue"' not in content
    assert f"{CHANGELIST}{job.pk}/delete/" in content  # deleting (through the service) stays
    # What the link opens: staff may fetch any video, and seek in it.
    assert staff.get(f"/videos/{job.pk}/video.mp4", HTTP_RANGE="bytes=0-9").status_code == 206


def test_staff_cannot_post_changes_to_a_job(staff, make_job):
    job = make_job(status=Status.FAILED, seed=42)
    assert staff.post(f"{CHANGELIST}{job.pk}/change/", {"seed": "7"}).status_code == 403
    job.refresh_from_db()
    assert job.seed == 42


def test_a_stored_video_gone_missing_is_said_on_the_change_page(staff, make_job, stored_video):
    from django.core.files.storage import default_storage

    job = make_job(status=Status.SUCCEEDED, video_file=stored_video)
    default_storage.delete(stored_video)
    response = staff.get(f"{CHANGELIST}{job.pk}/change/")
    assert response.status_code == 200
    assert "The stored file for this video is missing" in response.content.decode()
    assert "<video" not in response.content.decode()


def test_staff_give_a_group_its_video_rules_on_the_group_page(staff):
    response = staff.post(
        "/admin/auth/group/add/",
        {
            "name": "Interns",
            "video_policy-TOTAL_FORMS": "1",
            "video_policy-INITIAL_FORMS": "0",
            "video_policy-MIN_NUM_FORMS": "0",
            "video_policy-MAX_NUM_FORMS": "1",
            "video_policy-0-monthly_credits": "5000",
            "video_policy-0-allowed_models": ["gen4_turbo", "veo3.1_fast"],
            "video_policy-0-max_duration": "8",
            "video_policy-0-max_active": "4",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    rules = GroupPolicy.objects.get(group__name="Interns")
    assert (rules.monthly_credits, rules.allowed_models, rules.max_duration, rules.max_active) == (
        5000,
        ["gen4_turbo", "veo3.1_fast"],
        8,
        4,
    )
    page = staff.get(f"/admin/auth/group/{rules.group_id}/change/").content.decode()
    assert 'value="magnific_video_upscaler_creative"' in page  # every model can be allowed, the upscaler too
    assert re.search(r'value="veo3.1_fast"[^>]*checked', page)
