"""A job's ending is one JobEvent (videos/models.py), written by the same write as its final
status, whichever part ended it, and `job_ended` is sent once that write commits."""

import pytest
import responses
from django.utils import timezone

from tests.conftest import run_next_step
from tests.test_tasks import TASK_ID, TASK_URL, succeeded_at_runway, task_answer
from videos.events import job_ended
from videos.models import JobEvent, Status, VideoGeneration
from videos.services import actions, steps
from videos.services.bookkeeping import finish, save_claimed

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent():
    received = []

    def receiver(sender, event, **kwargs):
        received.append(event)

    job_ended.connect(receiver)
    yield received
    job_ended.disconnect(receiver)


@pytest.fixture
def submitted(make_job):
    return make_job(status=Status.PENDING, runway_task_id=TASK_ID, submitted_at=timezone.now(), step=1)


@responses.activate
def test_a_poll_that_finds_the_task_failed_records_one_event_and_sends_it_on_commit(
    submitted, broker, sent, django_capture_on_commit_callbacks
):
    responses.get(TASK_URL, json=task_answer("FAILED", failure="no", failureCode="INTERNAL"))
    with django_capture_on_commit_callbacks(execute=True):
        job = run_next_step(submitted)

    [event] = JobEvent.objects.all()
    assert job.status == Status.FAILED and (event.generation, event.status) == (job, Status.FAILED)
    assert event.owner == job.owner and event.generation_number == job.pk
    assert sent == [event]


@responses.activate
def test_a_done_video_records_its_ending_once_though_its_poster_is_written_after(submitted, broker, sent):
    succeeded_at_runway()
    job = run_next_step(submitted)  # the poll, the store, then the poster: each a write of its own
    assert job.status == Status.SUCCEEDED and job.poster

    assert list(JobEvent.objects.values_list("status", flat=True)) == [Status.SUCCEEDED]


def test_a_cancel_records_the_ending_and_nothing_is_sent_before_commit(
    make_job, sent, django_capture_on_commit_callbacks
):
    job = make_job(status=Status.RUNNING, runway_task_id=TASK_ID)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        actions.generation_cancel(generation_id=job.pk)
    assert JobEvent.objects.get().status == Status.CANCELLED
    assert sent == [] and callbacks  # only once the transaction commits


def test_a_write_that_lost_its_step_to_a_cancel_records_no_ending(make_job):
    job = make_job(status=Status.RUNNING, runway_task_id=TASK_ID, step=3)
    row = VideoGeneration.objects.get(pk=job.pk)
    finish(row, Status.FAILED, message="Runway failed it")
    VideoGeneration.objects.filter(pk=job.pk).update(step=4)  # a cancel took the step meanwhile

    assert save_claimed(row, 3, steps._RUNWAY_FIELDS) is False
    assert not JobEvent.objects.exists()


def test_a_job_that_never_ends_and_moves_between_waiting_states_records_nothing(make_job):
    job = make_job(status=Status.PENDING, runway_task_id=TASK_ID)
    job.move_to(Status.RUNNING)
    job.save()
    job.move_to(Status.THROTTLED)
    job.save()
    assert not JobEvent.objects.exists()
