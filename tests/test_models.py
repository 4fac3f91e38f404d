"""The job record: the table of allowed moves, and the questions the QuerySet answers once for all."""

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from videos.models import (
    ACTIVE_STATUSES,
    ALLOWED_MOVES,
    FINAL_STATUSES,
    STEP_LOST_AFTER,
    STORE_STEP_LOST_AFTER,
    TRANSITIONS,
    InvalidTransition,
    Status,
    Step,
    VideoGeneration,
)
from videos.runway import DOWNLOAD_SECONDS

pytestmark = pytest.mark.django_db

FLAGS = ("video_pending", "cancel_pending", "poster_pending")


@pytest.fixture
def every_kind_of_job(make_job):
    """One job for every status and every combination of the pending flags, due a minute ago."""
    due = timezone.now() - timedelta(minutes=1)
    return [
        make_job(status=status, next_check_at=due, **dict(zip(FLAGS, flags, strict=True)))
        for status in Status
        for flags in itertools.product((False, True), repeat=len(FLAGS))
    ]


def test_the_query_for_work_left_agrees_with_each_jobs_next_step(every_kind_of_job):
    with_work = set(VideoGeneration.objects.with_next_step().values_list("pk", flat=True))

    assert with_work == {job.pk for job in every_kind_of_job if job.next_step is not None}
    assert set(VideoGeneration.objects.due(timezone.now()).values_list("pk", flat=True)) == with_work
    assert not VideoGeneration.objects.due(timezone.now() - timedelta(hours=1)).exists()


def test_next_step_follows_the_job_through_its_life(make_job):
    job = make_job(status=Status.QUEUED)
    seen = [job.next_step]
    for status, flag in [
        (Status.SUBMITTING, None),
        (Status.PENDING, None),
        (Status.RUNNING, "video_pending"),
        (Status.SUCCEEDED, "poster_pending"),
        (Status.SUCCEEDED, None),
    ]:
        job.status = status
        job.video_pending = job.poster_pending = False
        if flag:
            setattr(job, flag, True)
        seen.append(job.next_step)

    assert seen == [Step.SUBMIT, None, Step.POLL, Step.STORE_VIDEO, Step.MAKE_POSTER, None]
    job.status, job.cancel_pending = Status.TIMED_OUT, True
    assert job.next_step == Step.CANCEL_AT_RUNWAY


def test_active_is_every_job_that_has_not_ended(every_kind_of_job):
    active = set(VideoGeneration.objects.active().values_list("pk", flat=True))

    assert active == {job.pk for job in every_kind_of_job if not job.is_final}
    assert set(Status) == ACTIVE_STATUSES | FINAL_STATUSES


def test_overdue_is_a_step_late_by_a_poll_interval_or_a_claimed_step_whose_worker_died(make_job, settings):
    settings.RUNWAY_POLL_INTERVAL = 10
    now = timezone.now()
    late = make_job(status=Status.RUNNING, next_check_at=now - timedelta(seconds=11))
    make_job(status=Status.RUNNING, next_check_at=now - timedelta(seconds=9))  # its own message is just behind
    make_job(status=Status.SUCCEEDED, next_check_at=now - timedelta(hours=1))  # nothing left to do
    claimed = make_job(status=Status.SUBMITTING, next_check_at=None)
    VideoGeneration.objects.filter(pk=claimed.pk).update(updated_at=now - STEP_LOST_AFTER)
    make_job(status=Status.PENDING, next_check_at=None)  # claimed just now: its worker is at it

    assert set(VideoGeneration.objects.overdue(now).values_list("pk", flat=True)) == {late.pk, claimed.pk}


def test_a_store_step_counts_as_lost_only_after_its_download_could_have_ended(make_job):
    now = timezone.now()
    storing = make_job(status=Status.RUNNING, video_pending=True, next_check_at=None)
    VideoGeneration.objects.filter(pk=storing.pk).update(updated_at=now - STEP_LOST_AFTER)
    assert not VideoGeneration.objects.overdue(now).exists()  # a long download is not a dead worker

    VideoGeneration.objects.filter(pk=storing.pk).update(updated_at=now - STORE_STEP_LOST_AFTER)
    assert list(VideoGeneration.objects.overdue(now)) == [storing]
    assert timedelta(seconds=DOWNLOAD_SECONDS) < STORE_STEP_LOST_AFTER


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (Status.SUCCEEDED, Status.RUNNING),
        (Status.FAILED, Status.QUEUED),
        (Status.CANCELLED, Status.SUCCEEDED),
        (Status.QUEUED, Status.RUNNING),
        (Status.PENDING, Status.SUBMITTING),
    ],
)
def test_a_move_the_table_does_not_have_is_refused(make_job, source, target):
    job = make_job(status=source)

    with pytest.raises(InvalidTransition, match=f"from {source} to {target}"):
        job.move_to(target)

    assert job.status == source


def test_staying_in_a_status_is_always_allowed(make_job):
    job = make_job(status=Status.SUCCEEDED)
    job.move_to(Status.SUCCEEDED)
    assert job.status == Status.SUCCEEDED


def test_an_ended_job_never_moves_again():
    assert {source for source, _ in ALLOWED_MOVES} & FINAL_STATUSES == set()


def test_every_status_can_be_reached_from_queued_and_every_unfinished_job_can_be_cancelled():
    reached, frontier = {Status.QUEUED}, [Status.QUEUED]
    while frontier:
        source = frontier.pop()
        for target in {t for s, t in ALLOWED_MOVES if s == source} - reached:
            reached.add(target)
            frontier.append(target)
    assert reached == set(Status)
    assert all((status, Status.CANCELLED) in ALLOWED_MOVES for status in ACTIVE_STATUSES)


def test_every_transition_says_what_causes_it():
    assert all(transition.cause and transition.sources and transition.targets for transition in TRANSITIONS)


def test_the_architecture_page_shows_the_table_of_moves_as_it_is():
    def names(statuses):
        return ", ".join(status.value for status in Status if status in statuses)

    page = (Path(settings.BASE_DIR) / "docs" / "ARCHITECTURE.md").read_text()
    table = page.split("| from | to | cause |\n|---|---|---|\n", 1)[1].split("\n\n", 1)[0]

    assert table.splitlines() == [f"| {names(t.sources)} | {names(t.targets)} | {t.cause} |" for t in TRANSITIONS]


def test_a_cancelled_job_reads_cancelling_and_is_not_settled_until_its_task_is_deleted_at_runway(make_job):
    job = make_job(status=Status.CANCELLED, runway_task_id="t-1", cancel_pending=True)
    assert (job.status_label, job.is_final, job.is_settled) == ("Cancelling…", True, False)
    job.cancel_pending = False
    assert (job.status_label, job.is_settled) == ("Cancelled", True)
    # A job that timed out is also deleted at Runway afterwards, and says what happened to it.
    timed_out = make_job(status=Status.TIMED_OUT, runway_task_id="t-2", cancel_pending=True)
    assert (timed_out.status_label, timed_out.is_settled) == ("Timed out", True)
    assert make_job(status=Status.RUNNING).status_label == "Generating"


def test_a_deleted_job_is_hidden_from_its_owner_and_reads_deleting_for_staff(make_job):
    shown = make_job(status=Status.SUCCEEDED)
    deleting = make_job(status=Status.SUCCEEDED, runway_task_id="t-1", cancel_pending=True, delete_pending=True)

    assert list(VideoGeneration.objects.visible()) == [shown]
    assert deleting.status_label == "Deleting…"
    # The worker deletes its task at Runway first, then its files and row; the sweep finds it if lost.
    assert deleting.next_step == Step.CANCEL_AT_RUNWAY
    assert deleting in VideoGeneration.objects.with_next_step()
