"""The spend ledger (services.ledger) through the job's life, with Runway mocked at the HTTP boundary,
and the limits that count it (services.creation)."""

import importlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
import responses
from django.apps import apps as django_apps
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection, connections
from django.utils import timezone

from tests.conftest import MP4, run_next_step
from videos import tasks
from videos.catalog import VideoRequest
from videos.models import SpendEntry, SpendKind, Status, UserBudget, VideoGeneration
from videos.services import actions, creation, ledger, recovery, selectors

BASE = "https://runway.test"
TASK_ID = "acf9ba3d-a513-42c9-a646-96e8bc97c691"
TASK_URL = f"{BASE}/v1/tasks/{TASK_ID}"
CREATE_URL = f"{BASE}/v1/text_to_video"
OUTPUT = "https://cdn.test/a.mp4"

pytestmark = pytest.mark.django_db


@pytest.fixture
def create(user, broker, django_capture_on_commit_callbacks):
    """generation_create for alice (gen4.5, 5 s by default: 60 credits at the published price)."""

    def create(*, owner=None, duration=None, model=None):
        request = VideoRequest(prompt="A serene mountain landscape at sunset", duration=duration, model=model)
        with django_capture_on_commit_callbacks(execute=True):
            return creation.generation_create(owner=owner or user, request=request)

    return create


def entries(job: VideoGeneration) -> list[tuple[str, int, int | None]]:
    """The job's ledger entries, oldest first, as (kind, credits, Runway's figure)."""
    found = SpendEntry.objects.filter(generation_number=job.pk).order_by("pk")
    return [(e.kind, e.credits, e.runway_credits) for e in found]


def total(job: VideoGeneration) -> int:
    return SpendEntry.objects.filter(generation_number=job.pk).credits()


def task(status: str, **extra: object) -> dict[str, object]:
    return {"id": TASK_ID, "createdAt": "2026-08-26T06:30:33.796Z", "status": status, **extra}


def refusal(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(excinfo.value.message_dict[NON_FIELD_ERRORS])


# --- What each job records -----------------------------------------------------------------


@responses.activate
def test_a_job_reserves_our_estimate_takes_runways_then_settles_on_what_runway_charged(create):
    job = create()
    assert entries(job) == [(SpendKind.RESERVED, 60, None)]

    responses.post(CREATE_URL, json={"id": TASK_ID, "estimatedCost": {"credits": 70}})
    job = run_next_step(job)
    assert job.status == Status.PENDING
    assert entries(job)[1:] == [(SpendKind.ESTIMATE, 10, 70)]  # Runway's estimate is the truth
    assert total(job) == 70

    responses.get(TASK_URL, json=task("RUNNING", progress=0.5, estimatedCost={"credits": 70}))
    job = run_next_step(job)
    assert len(entries(job)) == 2  # an unfinished task's estimate is no new charge

    responses.replace(responses.GET, TASK_URL, json=task("SUCCEEDED", output=[OUTPUT], cost={"credits": 48}))
    responses.get(OUTPUT, body=MP4, content_type="video/mp4")
    job = run_next_step(job)  # the poll that finds it done, then storing the video (and its poster)
    assert job.status == Status.SUCCEEDED
    final = SpendEntry.objects.get(generation_number=job.pk, kind=SpendKind.FINAL)
    assert (final.credits, final.runway_credits) == (-22, 48)  # a correction: Runway billed less
    assert "22 credits less" in final.note
    assert total(job) == 48  # the job's entries add up to what Runway charged
    assert (final.username, final.model, final.user_id) == ("alice", "gen4.5", job.owner_id)


@responses.activate
def test_a_malformed_estimate_on_create_keeps_ours_logs_it_and_the_job_goes_on(create, caplog):
    job = create()
    responses.post(CREATE_URL, json={"id": TASK_ID, "estimatedCost": {"credits": "sixty"}})

    job = run_next_step(job)

    assert job.status == Status.PENDING
    assert entries(job) == [(SpendKind.RESERVED, 60, None), (SpendKind.ESTIMATE, 0, None)]
    assert "estimatedCost.credits missing or malformed" in caplog.text
    assert "our estimate stands" in caplog.text


@responses.activate
def test_a_final_answer_without_a_cost_keeps_the_estimate(create, caplog):
    job = create()
    responses.post(CREATE_URL, json={"id": TASK_ID, "estimatedCost": {"credits": 60}})
    job = run_next_step(job)
    responses.get(TASK_URL, json=task("FAILED", failure="no", failureCode="SAFETY.INPUT.TEXT"))

    job = run_next_step(job)

    assert job.status == Status.FAILED
    assert entries(job)[-1] == (SpendKind.FINAL, 0, None)
    assert total(job) == 60
    assert "cost.credits missing or malformed" in caplog.text


@responses.activate
def test_a_task_runway_did_not_bill_settles_at_0(create):
    job = create()
    responses.post(CREATE_URL, json={"id": TASK_ID, "estimatedCost": {"credits": 60}})
    job = run_next_step(job)
    responses.get(TASK_URL, json=task("FAILED", failureCode="INTERNAL", cost={"credits": 0}))

    job = run_next_step(job)

    assert total(job) == 0


@responses.activate
def test_a_finished_task_polled_again_is_settled_once(create):
    # Our copy could not be stored (the link had expired), so the next poll asks Runway again.
    job = create()
    responses.post(CREATE_URL, json={"id": TASK_ID, "estimatedCost": {"credits": 60}})
    job = run_next_step(job)
    responses.get(TASK_URL, json=task("SUCCEEDED", output=[OUTPUT], cost={"credits": 60}))
    responses.get(OUTPUT, status=403)
    job = run_next_step(run_next_step(job))
    assert job.status == Status.PENDING

    job = run_next_step(job)

    assert [kind for kind, _, _ in entries(job)] == [SpendKind.RESERVED, SpendKind.ESTIMATE, SpendKind.FINAL]
    assert total(job) == 60


@responses.activate
def test_a_create_runway_refused_gives_the_reservation_back(create):
    job = create()
    responses.post(CREATE_URL, status=400, json={"error": "bad ratio"})

    job = run_next_step(job)

    assert job.status == Status.FAILED
    assert entries(job) == [(SpendKind.RESERVED, 60, None), (SpendKind.FINAL, -60, 0)]


@responses.activate
def test_a_create_that_may_have_reached_runway_keeps_the_reservation(create):
    job = create()
    responses.post(CREATE_URL, status=502)

    job = run_next_step(job)

    assert job.failure_code == "UNCONFIRMED"
    assert entries(job)[-1] == (SpendKind.FINAL, 0, None)
    assert total(job) == 60


def test_a_job_cancelled_before_it_was_sent_costs_nothing(create):
    job = create()
    actions.generation_cancel(generation_id=job.pk)
    assert total(job) == 0


@responses.activate
def test_a_job_cancelled_at_runway_keeps_runways_estimate(create, django_capture_on_commit_callbacks):
    job = create()
    responses.post(CREATE_URL, json={"id": TASK_ID, "estimatedCost": {"credits": 60}})
    job = run_next_step(job)
    with django_capture_on_commit_callbacks(execute=False):
        actions.generation_cancel(generation_id=job.pk)
    responses.delete(TASK_URL, status=204)

    job = run_next_step(job)

    assert not job.cancel_pending
    assert entries(job)[-1] == (SpendKind.FINAL, 0, None)
    assert total(job) == 60


def test_the_sweep_giving_up_on_a_create_keeps_the_reservation(create):
    job = create()
    VideoGeneration.objects.filter(pk=job.pk).update(
        status=Status.SUBMITTING, step=1, next_check_at=None, updated_at=timezone.now() - timedelta(minutes=5)
    )
    recovery.generation_sweep()
    job.refresh_from_db()
    assert job.failure_code == "UNCONFIRMED"
    assert entries(job)[-1] == (SpendKind.FINAL, 0, None)
    assert total(job) == 60


# --- A create recorded after a database outage (videos.tasks.record_submission) -------------


def test_a_create_recorded_late_gets_runways_estimate_once(create, broker):
    job = create()
    VideoGeneration.objects.filter(pk=job.pk).update(status=Status.SUBMITTING, step=1)
    for _ in range(2):  # the message delivered twice
        tasks.record_submission.apply(args=[job.pk, 1, TASK_ID, timezone.now().isoformat(), 65], throw=True)

    job.refresh_from_db()
    assert job.status == Status.PENDING
    assert entries(job) == [(SpendKind.RESERVED, 60, None), (SpendKind.ESTIMATE, 5, 65)]


def test_a_create_message_of_the_previous_version_keeps_our_estimate(create, broker):
    job = create()
    VideoGeneration.objects.filter(pk=job.pk).update(status=Status.SUBMITTING, step=1)
    tasks.record_submission.apply(args=[job.pk, 1, TASK_ID, timezone.now().isoformat()], throw=True)
    assert entries(job) == [(SpendKind.RESERVED, 60, None), (SpendKind.ESTIMATE, 0, None)]


@responses.activate
def test_a_create_recorded_after_the_job_ended_is_estimated_then_settled(create, broker):
    job = create()
    VideoGeneration.objects.filter(pk=job.pk).update(status=Status.FAILED, step=2, failure_code="UNCONFIRMED")
    responses.delete(TASK_URL, status=204)

    tasks.record_submission.apply(args=[job.pk, 1, TASK_ID, timezone.now().isoformat(), 60], throw=True)

    assert [kind for kind, _, _ in entries(job)] == [SpendKind.RESERVED, SpendKind.ESTIMATE, SpendKind.FINAL]
    assert total(job) == 60


# --- Kept, and never changed -----------------------------------------------------------------


def test_entries_outlive_their_job_and_their_user(create, user):
    number = create().pk
    VideoGeneration.objects.filter(pk=number).delete()
    entry = SpendEntry.objects.get(generation_number=number)
    assert entry.generation_id is None and entry.user_id == user.pk

    user.delete()
    entry = SpendEntry.objects.get(generation_number=number)
    assert (entry.user_id, entry.username, entry.model, entry.credits) == (None, "alice", "gen4.5", 60)


def test_an_entry_cannot_be_changed_or_deleted(create):
    entry = SpendEntry.objects.get(generation_number=create().pk)
    entry.credits = 0
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()
    assert SpendEntry.objects.get(pk=entry.pk).credits == 60


# --- The limits count the ledger ----------------------------------------------------------


def test_deleting_jobs_does_not_reset_the_daily_limit(create, settings):
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 2
    for job in (create(), create()):
        actions.generation_cancel(generation_id=job.pk)
        actions.generation_delete(generation_id=job.pk)
    assert not VideoGeneration.objects.exists()

    with pytest.raises(ValidationError) as excinfo:
        create()

    assert "You have made 2 videos in the last 24 hours" in refusal(excinfo)


def test_the_budget_refuses_a_job_that_does_not_fit_and_says_what_is_left_and_when_it_resets(create, settings):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 100
    create()  # 60 credits reserved

    with pytest.raises(ValidationError) as excinfo:
        create()

    resets = ledger.next_month_start(timezone.now())
    assert resets.day == 1 and resets > timezone.now()
    message = refusal(excinfo)
    assert "This video would cost about 60 credits (US$0.60)" in message
    assert "40 credits (US$0.40) of your monthly budget of 100 credits (US$1.00) is left" in message
    assert f"It resets on {resets:%Y-%m-%d} 00:00 UTC" in message
    assert VideoGeneration.objects.count() == 1


def test_a_job_that_fits_the_budget_exactly_is_made(create, settings):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 84
    create()  # 60
    assert create(duration=2).status == Status.QUEUED  # 24: 84 in all


def test_a_budget_of_0_refuses_everything_clearly(create, settings):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 0
    with pytest.raises(ValidationError) as excinfo:
        create()
    assert "Your monthly budget is 0 credits, so you cannot generate videos" in refusal(excinfo)
    assert not VideoGeneration.objects.exists()


def test_staff_can_give_one_user_a_budget_of_their_own(create, user, other_user, settings):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 0
    UserBudget.objects.create(user=user, monthly_credits=60)
    assert create().status == Status.QUEUED
    with pytest.raises(ValidationError):
        create(owner=other_user)


def test_last_months_spend_does_not_count(create, user, settings):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 60
    job = create()
    start = ledger.month_start(timezone.now())
    VideoGeneration.objects.filter(pk=job.pk).update(status=Status.SUCCEEDED)
    # The ledger is append-only for the product; a test moves an entry back in time directly.
    SpendEntry.objects.filter(generation_number=job.pk).update(job_created_at=start - timedelta(seconds=1))
    assert ledger.spent_this_month(user_id=user.pk, now=timezone.now()) == 0
    assert create().status == Status.QUEUED


def test_the_month_starts_on_the_first_at_midnight_utc():
    now = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert ledger.month_start(now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert ledger.next_month_start(now) == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two requests at once need two connections to a server that locks rows: PostgreSQL (DATABASE_URL)",
)
def test_two_requests_at_once_cannot_overspend(settings, django_user_model):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 100  # room for one 60-credit job, not two
    owner = django_user_model.objects.create_user(username="carol", password="a-long-test-password")
    barrier = threading.Barrier(2)
    made: list[int] = []
    refused: list[str] = []

    def request() -> None:
        try:
            barrier.wait(timeout=10)
            job = creation.generation_create(owner=owner, request=VideoRequest(prompt="Waves"), enqueue=False)
            made.append(job.pk)
        except ValidationError as exc:
            refused.append(" ".join(exc.messages))
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(made) == 1, (made, refused)
    assert len(refused) == 1 and "40 credits (US$0.40)" in refused[0]
    assert SpendEntry.objects.filter(user=owner).credits() == 60
    assert User.objects.filter(pk=owner.pk).exists()


# --- What pages will show (services.selectors) --------------------------------------------


def test_spend_summary_says_this_months_spend_against_the_budget_and_todays_count(create, user, settings):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 1000
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 2
    first = create()
    create(duration=2)

    summary = selectors.spend_summary(user=user)

    assert (summary.spent, summary.budget, summary.left) == (84, 1000, 916)
    assert summary.resets_at == ledger.next_month_start(timezone.now())
    assert (summary.today, summary.daily_limit) == (2, 2)
    assert summary.next_slot_at == first.created_at + timedelta(days=1)


def test_spend_summary_reads_a_users_own_budget_and_has_a_slot_under_the_limit(create, user):
    UserBudget.objects.create(user=user, monthly_credits=50)
    summary = selectors.spend_summary(user=user)
    assert (summary.spent, summary.budget, summary.today, summary.next_slot_at) == (0, 50, 0, None)


@responses.activate
def test_a_jobs_cost_is_the_estimate_while_it_runs_and_runways_figure_after(create):
    job = create()
    assert selectors.generation_cost(generation=job) == selectors.GenerationCost(credits=60, final=False)
    responses.post(CREATE_URL, json={"id": TASK_ID, "estimatedCost": {"credits": 64}})
    job = run_next_step(job)
    assert selectors.generation_cost(generation=job) == selectors.GenerationCost(64, final=False, from_runway=True)
    responses.get(TASK_URL, json=task("FAILED", failureCode="INTERNAL", cost={"credits": 0}))
    job = run_next_step(job)
    cost = selectors.generation_cost(generation=job)
    assert cost == selectors.GenerationCost(credits=0, final=True, from_runway=True)
    assert cost is not None and cost.dollars == "US$0.00"


@responses.activate
def test_a_jobs_cost_says_when_it_is_only_our_estimate(create):
    job = create()
    responses.post(CREATE_URL, json={"id": TASK_ID})  # no estimatedCost
    job = run_next_step(job)
    responses.get(TASK_URL, json=task("CANCELLED"))  # no cost
    job = run_next_step(job)
    assert selectors.generation_cost(generation=job) == selectors.GenerationCost(60, final=True, from_runway=False)


def test_a_job_that_reserved_nothing_has_no_cost(make_job):
    assert selectors.generation_cost(generation=make_job()) is None


def test_the_upgrade_reserves_the_jobs_made_before_the_ledger(make_job, user, settings):
    backfill = importlib.import_module("videos.migrations.0010_backfill_spend_ledger").backfill
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 2
    sent = make_job(runway_task_id=TASK_ID, status=Status.SUCCEEDED, duration=5)
    never_sent = make_job(status=Status.FAILED, duration=5)
    old = make_job(runway_task_id="old", status=Status.SUCCEEDED)
    VideoGeneration.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))

    backfill(django_apps, None)
    backfill(django_apps, None)  # run twice: nothing more

    assert entries(sent) == [(SpendKind.RESERVED, 60, None)]
    assert entries(never_sent) == [(SpendKind.RESERVED, 0, None)]
    assert entries(old) == []
    with pytest.raises(ValidationError, match="You have made 2 videos"):
        creation.generation_create(owner=user, request=VideoRequest(prompt="Waves"))
