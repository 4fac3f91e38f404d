"""The sweep (services.recovery) on its own: which lost work it finds and what it sends again."""

from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from videos import tasks
from videos.models import STEP_LOST_AFTER, Status, VideoGeneration
from videos.services import recovery, steps

BASE = "https://runway.test"
TASK_ID = "acf9ba3d-a513-42c9-a646-96e8bc97c691"
TASK_URL = f"{BASE}/v1/tasks/{TASK_ID}"

pytestmark = pytest.mark.django_db


# --- Sweep ----------------------------------------------------------------------------------


def overdue(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def touched(job: VideoGeneration, seconds_ago: float) -> VideoGeneration:
    """Set updated_at (auto_now, so only a queryset update can move it back)."""
    VideoGeneration.objects.filter(pk=job.pk).update(updated_at=overdue(seconds_ago))
    job.refresh_from_db()
    return job


def test_sweep_reenqueues_a_queued_job_overdue_by_more_than_the_poll_interval(make_job, broker, settings):
    settings.RUNWAY_POLL_INTERVAL = 10
    job = make_job(status=Status.QUEUED, next_check_at=overdue(11))

    assert recovery.generation_sweep() == 1

    [queued] = broker.tasks()
    assert queued.name == "videos.tasks.submit"
    assert queued.args == [job.pk, 0]


@pytest.mark.parametrize("status", [Status.PENDING, Status.THROTTLED, Status.RUNNING])
def test_sweep_reenqueues_a_job_at_runway_with_its_current_step(make_job, broker, status):
    job = make_job(status=status, runway_task_id=TASK_ID, step=4, next_check_at=overdue(60))

    assert recovery.generation_sweep() == 1

    assert [t.args for t in broker.tasks()] == [[job.pk, 4]]
    job.refresh_from_db()
    assert job.status == status
    assert job.step == 4


def test_a_swept_job_is_not_sent_again_by_the_next_sweep_while_its_message_may_still_run(make_job, broker):
    make_job(status=Status.RUNNING, runway_task_id=TASK_ID, step=4, next_check_at=overdue(60))

    assert recovery.generation_sweep() == 1
    assert recovery.generation_sweep() == 0
    assert len(broker.tasks()) == 1


def test_sweep_leaves_alone_jobs_that_are_not_due(make_job, broker, settings):
    settings.RUNWAY_POLL_INTERVAL = 10
    make_job(status=Status.QUEUED, next_check_at=timezone.now() + timedelta(seconds=30))
    make_job(status=Status.RUNNING, runway_task_id=TASK_ID, step=2, next_check_at=timezone.now() + timedelta(seconds=5))
    # Due, but not yet late by a poll interval: its own message is probably just behind.
    make_job(status=Status.PENDING, runway_task_id=TASK_ID, step=1, next_check_at=overdue(3))

    assert recovery.generation_sweep() == 0
    assert broker.tasks() == []


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT])
def test_sweep_leaves_alone_a_finished_job(make_job, broker, status):
    job = touched(make_job(status=status, runway_task_id=TASK_ID, step=3, next_check_at=overdue(600)), 600)
    snapshot = VideoGeneration.objects.filter(pk=job.pk).values().get()

    assert recovery.generation_sweep() == 0

    assert broker.tasks() == []
    assert VideoGeneration.objects.filter(pk=job.pk).values().get() == snapshot


@pytest.mark.parametrize("status", [Status.RUNNING, Status.SUBMITTING])
def test_sweep_leaves_alone_a_step_in_progress_that_is_recent(make_job, broker, status):
    job = touched(make_job(status=status, step=1, next_check_at=None), 5)

    assert recovery.generation_sweep() == 0

    assert broker.tasks() == []
    job.refresh_from_db()
    assert job.status == status


def test_sweep_reenqueues_a_step_whose_worker_died(make_job, broker):
    job = touched(make_job(status=Status.RUNNING, runway_task_id=TASK_ID, step=3, next_check_at=None), 180)
    assert recovery.generation_sweep() == 1
    assert [t.args for t in broker.tasks()] == [[job.pk, 3]]


@responses.activate
def test_sweep_fails_a_job_stuck_in_submitting_without_sending_it_again(make_job, broker):
    responses.post(f"{BASE}/v1/text_to_video", json={"id": TASK_ID})
    job = touched(make_job(status=Status.SUBMITTING, step=1, next_check_at=None), 150)

    assert recovery.generation_sweep() == 1

    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.failure_code == steps.UNCONFIRMED_CODE
    assert "not sent again" in job.message
    assert job.finished_at is not None
    assert job.step == 2
    assert broker.tasks() == []
    # The message of the step that was in flight, should it come back, is stale now.
    tasks.submit.apply(args=[job.pk, 1], throw=True)
    tasks.submit.apply(args=[job.pk, job.step], throw=True)
    assert len(responses.calls) == 0
    assert recovery.generation_sweep() == 0


def test_sweep_reenqueues_a_final_job_that_still_has_to_be_cancelled_at_runway(make_job, broker):
    job = make_job(
        status=Status.TIMED_OUT, runway_task_id=TASK_ID, cancel_pending=True, step=5, next_check_at=overdue(60)
    )
    assert recovery.generation_sweep() == 1
    assert [t.args for t in broker.tasks()] == [[job.pk, 5]]


def test_sweep_reenqueues_a_lost_poster_step(make_job, broker):
    overdue_since = overdue(STEP_LOST_AFTER.total_seconds())
    job = make_job(status=Status.SUCCEEDED, poster_pending=True, step=7, next_check_at=overdue_since)
    make_job(status=Status.SUCCEEDED, step=7, next_check_at=overdue_since)  # its poster is made: nothing to do
    assert recovery.generation_sweep() == 1
    assert [t.args for t in broker.tasks()] == [[job.pk, 7]]


def test_a_poster_waiting_its_turn_is_not_swept_before_a_lost_step_would_be(make_job, broker, settings):
    """When a thousand videos end at once, their posters wait in their worker, after the videos: the
    sweep must not send each of them again an interval later (duplicates that the worker would then
    have to claim and drop, at the worst moment)."""
    settings.RUNWAY_POLL_INTERVAL = 5
    make_job(status=Status.SUCCEEDED, poster_pending=True, step=7, next_check_at=overdue(60))
    assert recovery.generation_sweep() == 0
    assert broker.tasks() == []


@responses.activate
def test_swept_message_and_its_duplicate_make_one_runway_call(make_job, broker):
    responses.get(TASK_URL, json={"id": TASK_ID, "status": "RUNNING", "progress": 0.4})
    job = make_job(status=Status.PENDING, runway_task_id=TASK_ID, step=2, next_check_at=overdue(60))
    recovery.generation_sweep()
    [swept] = broker.tasks()

    assert swept.name == "videos.tasks.poll"
    swept.run()
    swept.run()

    assert len(responses.calls) == 1
    job.refresh_from_db()
    assert job.status == Status.RUNNING
    assert job.progress == 40
    assert job.step == 3
    assert [t.args for t in broker.tasks()] == [[job.pk, 2], [job.pk, 3]]


def test_sweep_reenqueues_a_lost_store_video_step(make_job, broker):
    job = make_job(
        status=Status.RUNNING,
        runway_task_id=TASK_ID,
        output_url="https://cdn.test/a.mp4",
        video_pending=True,
        step=6,
        next_check_at=overdue(60),
    )
    assert recovery.generation_sweep() == 1
    [queued] = broker.tasks()
    assert (queued.name, queued.args) == ("videos.tasks.store_video", [job.pk, 6])


def test_the_sweep_takes_the_time_it_is_given(make_job, broker, settings):
    settings.RUNWAY_POLL_INTERVAL = 10
    due_at = timezone.now()
    make_job(status=Status.QUEUED, next_check_at=due_at)

    assert recovery.generation_sweep(now=due_at + timedelta(seconds=9)) == 0
    assert recovery.generation_sweep(now=due_at + timedelta(seconds=11)) == 1
