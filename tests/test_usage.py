"""The daily reconciliation (services/usage.py): Runway's usage per day and model beside the
ledger's, with Runway mocked at the HTTP boundary; and the admin page that shows staff where they differ."""

import json
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import responses

from runway_simulator import ManualClock, RunwaySimulator
from tests.stack import Stack, wait_for_jobs
from videos import tasks
from videos.catalog import VideoRequest
from videos.models import Status, UsageCheck, UsageDay, VideoGeneration
from videos.services import actions, creation, ledger, selectors, usage

pytestmark = pytest.mark.django_db
USAGE_URL = "https://runway.test/v1/organization/usage"
NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
CHANGELIST = "/admin/videos/usageday/"


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def made_on(make_job, day: date, *, model: str = "gen4.5", charged: int | None, reserved: int = 60):
    """A job made at noon on `day` whose ledger says it cost `charged` (None: still running)."""
    job = make_job(model=model)
    job.created_at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    job.save(update_fields=["created_at"])
    ledger.spend_reserve(generation=job)
    if charged is not None:
        ledger.spend_settle(generation=job, charged=charged)
    return job


def runway_says(*days: tuple[str, dict[str, int]]) -> None:
    results = [{"date": day, "usedCredits": [{"model": m, "amount": a} for m, a in used.items()]} for day, used in days]
    models = sorted({m for _, used in days for m in used})
    responses.post(USAGE_URL, json={"models": models, "results": results})


@responses.activate
def test_the_reconciliation_reads_a_week_of_runways_usage_and_keeps_it_beside_the_ledgers(make_job):
    made_on(make_job, date(2026, 12, 1), charged=60)
    made_on(make_job, date(2026, 12, 1), charged=0)  # refunded
    made_on(make_job, date(2026, 12, 2), model="veo3.1", charged=160, reserved=160)
    made_on(make_job, date(2026, 12, 3), charged=None)  # still at Runway: its estimate counts
    runway_says(
        ("2026-12-01", {"gen4.5": 60}),
        ("2026-12-02", {"veo3.1": 320, "gen4_turbo": 25}),  # Runway billed more, and a model we never used
        ("2026-12-03", {"gen4.5": 60}),
    )

    rows = usage.usage_reconcile(now=NOW)

    [call] = responses.calls
    assert json.loads(call.request.body) == {"startDate": "2026-11-27", "beforeDate": "2026-12-04"}
    found = {(row.day.isoformat(), row.model): (row.ledger_credits, row.runway_credits, row.difference) for row in rows}
    assert found == {
        ("2026-12-01", "gen4.5"): (60, 60, 0),
        ("2026-12-02", "veo3.1"): (160, 320, 160),
        ("2026-12-02", "gen4_turbo"): (0, 25, 25),
        ("2026-12-03", "gen4.5"): (60, 60, 0),
    }
    assert UsageDay.objects.count() == 4
    assert UsageCheck.objects.get().error == ""


@responses.activate
def test_a_day_runway_reports_nothing_for_shows_the_ledgers_figure_against_none(make_job):
    made_on(make_job, date(2026, 12, 2), charged=60)
    runway_says()

    [row] = usage.usage_reconcile(now=NOW)

    assert (row.model, row.ledger_credits, row.runway_credits, row.difference) == ("gen4.5", 60, None, -60)


@responses.activate
def test_a_reading_replaces_the_last_one_and_a_failed_reading_keeps_it_and_says_why(make_job):
    made_on(make_job, date(2026, 12, 2), charged=60)
    runway_says(("2026-12-02", {"gen4.5": 60}))
    usage.usage_reconcile(now=NOW)
    usage.usage_reconcile(now=NOW)  # the same week again: one row per day and model still
    assert UsageDay.objects.count() == 1
    responses.replace(responses.POST, USAGE_URL, status=401, json={"error": "bad key"})

    tasks.reconcile_usage.apply(throw=True)  # as beat has a worker run it: Runway's refusal is kept, not raised

    assert UsageDay.objects.count() == 1
    assert UsageCheck.objects.get().error == "Runway rejected the API key"


@responses.activate
def test_malformed_lines_of_runways_answer_are_left_out():
    responses.post(
        USAGE_URL,
        json={
            "results": [
                {
                    "date": "2026-12-02",
                    "usedCredits": [{"model": "gen4.5", "amount": "12"}, {"model": "gen4.5", "amount": 5}],
                },
                {"date": "soon"},
            ]
        },
    )

    [row] = usage.usage_reconcile(now=NOW)

    assert (row.day, row.runway_credits) == (date(2026, 12, 2), 5)


def test_staff_see_where_the_ledger_and_runway_differ_and_can_ask_for_a_check(staff, broker):
    checked = NOW
    UsageDay.objects.create(
        day=date(2026, 12, 1), model="gen4.5", runway_credits=60, ledger_credits=60, checked_at=checked
    )
    UsageDay.objects.create(
        day=date(2026, 12, 2), model="veo3.1", runway_credits=320, ledger_credits=160, checked_at=checked
    )
    UsageCheck.objects.create(checked_at=checked, start=date(2026, 11, 27))

    page = staff.get(CHANGELIST).content.decode()
    assert "Veo 3.1" in page and "+160" in page
    assert "1 row differs" in page
    assert "Last checked 2026-12-03 09:30 UTC, the days from 2026-11-27" in page
    differing = staff.get(CHANGELIST, {"matches": "no"}).context["cl"].result_list
    assert [row.model for row in differing] == ["veo3.1"]
    assert '<a href="?model=veo3.1">Veo 3.1</a>' in page  # the filter names models too

    answer = staff.post(f"{CHANGELIST}check/", follow=True)

    assert "The worker is reading Runway&#x27;s figures" in answer.content.decode()
    assert [task.name for task in broker.tasks()] == ["videos.tasks.reconcile_usage"]
    assert staff.get(f"{CHANGELIST}check/").status_code == 405


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_after_a_day_of_every_outcome_the_ledger_agrees_with_what_the_simulator_billed(user, settings):
    """A real worker and the simulator over HTTP: what the ledger says each job cost, by Runway's
    billing and refund rules, is what the simulator (as Runway) says it charged."""
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 10
    stack = Stack()
    stack.clock = ManualClock(start=time.time())  # Runway's days are ours
    try:
        # One task per model at a time: the second gen4.5 job waits THROTTLED behind the first.
        simulator = RunwaySimulator(
            task_seconds=10.0, max_concurrent=1, api_key=settings.RUNWAY_API_KEY, clock=stack.clock
        )
        stack.simulator = simulator.start()
        stack.worker()
        asked = {
            "done": VideoRequest(prompt="A lighthouse in a storm"),  # gen4.5, 5 s: 60
            "refunded": VideoRequest(prompt="Runway-side trouble [sim:fail]", model="veo3.1"),  # 4 s: 160, given back
            "moderated": VideoRequest(  # billed as if made
                prompt="Declined [sim:fail=SAFETY.INPUT.TEXT]", image_url="https://images.example.com/a.png"
            ),
            "cancelled running": VideoRequest(prompt="Waves [sim:never]", model="veo3.1_fast"),  # 4 s: 60, kept
            "cancelled waiting": VideoRequest(prompt="Behind the lighthouse"),  # THROTTLED behind "done": refunded
        }
        jobs: dict[str, int] = {}
        for name, request in asked.items():
            if name == "cancelled waiting":
                # Only once "done" has its task: the worker sends creates side by side, and the
                # first to reach Runway would take the slot.
                wait_for_jobs(stack, [jobs["done"]], lambda job: bool(job.runway_task_id), seconds=60)
            jobs[name] = creation.generation_create(owner=user, request=request).pk
        ids = list(jobs.values())
        at_runway = lambda job: job.poll_count >= 1 and job.next_check_at is not None  # noqa: E731
        wait_for_jobs(stack, ids, at_runway, seconds=60)
        assert VideoGeneration.objects.get(pk=jobs["cancelled waiting"]).runway_status == "THROTTLED"
        stack.clock.advance(2.0)  # past PENDING: all started but the one behind the lighthouse
        wait_for_jobs(stack, [jobs["cancelled running"]], lambda job: job.status == Status.RUNNING, seconds=30)
        for name in ("cancelled running", "cancelled waiting"):
            actions.generation_cancel(generation_id=jobs[name])
        wait_for_jobs(stack, ids[3:], lambda job: not job.cancel_pending, seconds=30)
        stack.clock.advance(10.0)
        ended = dict(zip(jobs, wait_for_jobs(stack, ids, lambda job: job.is_settled, seconds=60), strict=True))
        settings.RUNWAY_API_BASE_URL = simulator.base_url
        rows = usage.usage_reconcile()
    finally:
        stack.stop()

    assert {name: job.status for name, job in ended.items()} == {
        "done": Status.SUCCEEDED,
        "refunded": Status.FAILED,
        "moderated": Status.FAILED,
        "cancelled running": Status.CANCELLED,
        "cancelled waiting": Status.CANCELLED,
    }
    costs = {name: selectors.generation_cost(generation=job).credits for name, job in ended.items()}
    assert costs == {"done": 60, "refunded": 0, "moderated": 25, "cancelled running": 60, "cancelled waiting": 0}
    # Per model over the week (a job made just before midnight counts on two days at Runway's).
    ours, runways = Counter[str](), Counter[str]()
    for row in rows:
        ours[row.model] += row.ledger_credits
        runways[row.model] += row.runway_credits or 0
    assert ours == runways == {"gen4.5": 60, "veo3.1": 0, "gen4_turbo": 25, "veo3.1_fast": 60}
    reasons = {
        name: selectors.generation_card_state(generation=VideoGeneration.objects.with_cost().get(pk=job.pk)).cost_reason
        for name, job in ended.items()
    }
    assert (
        reasons["cancelled running"] == "Runway had started making it, and does not refund a task stopped once started."
    )
    assert reasons["cancelled waiting"] == "Nothing charged: cancelled before Runway had started it."
    assert reasons["refunded"] == "Nothing charged: Runway does not bill a video it could not make."
    assert reasons["moderated"] == "Runway bills a video its moderation declined as if it had been made."
