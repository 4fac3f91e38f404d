"""The Celery tasks and the steps behind them, with Runway mocked at the HTTP boundary."""

import json
import re
from datetime import datetime, timedelta

import pytest
import requests
import responses
from django.db.models import F
from django.utils import timezone

from tests.conftest import MP4, run_next_step
from videos import tasks
from videos.models import SpendEntry, SpendKind, Status, Step, VideoGeneration
from videos.services import actions, ledger, selectors, steps

BASE = "https://runway.test"
TASK_ID = "acf9ba3d-a513-42c9-a646-96e8bc97c691"
TASK_URL = f"{BASE}/v1/tasks/{TASK_ID}"

pytestmark = pytest.mark.django_db


def run_step(job: VideoGeneration) -> VideoGeneration:
    """Run the task of the job's next step, as the worker would, and reload the row."""
    return run_next_step(job)


MADE = "https://cdn.test/a.mp4"


def succeeded_at_runway(output: str = MADE) -> None:
    """Runway says the video is done, at `output`, which serves the sample video."""
    responses.get(TASK_URL, json=task_answer("SUCCEEDED", output=[output]))
    responses.get(output, body=MP4, content_type="video/mp4")


def task_answer(status: str, **extra) -> dict:
    return {"id": TASK_ID, "createdAt": "2026-08-26T06:30:33.796Z", "status": status, **extra}


@pytest.fixture
def submitted(make_job):
    """A job that Runway accepted a little while ago."""
    return make_job(status=Status.PENDING, runway_task_id=TASK_ID, submitted_at=timezone.now(), step=1)


@responses.activate
def test_submit_sends_one_create_and_schedules_the_first_poll(make_job, broker):
    responses.post(f"{BASE}/v1/text_to_video", json={"id": TASK_ID, "estimatedCost": 50})
    job = run_step(make_job())

    assert job.status == Status.PENDING
    assert job.runway_task_id == TASK_ID
    assert job.submitted_at is not None
    assert len(responses.calls) == 1
    [queued] = broker.tasks()
    assert queued.name == "videos.tasks.poll"
    assert queued.args == [job.pk, job.step]
    assert queued.eta is not None
    eta = timezone.datetime.fromisoformat(queued.eta)
    assert timedelta(seconds=9) < eta - timezone.now() <= timedelta(seconds=10)
    assert job.next_check_at is not None


@responses.activate
def test_pending_and_throttled_are_waiting_not_errors(submitted, broker):
    responses.get(TASK_URL, json=task_answer("THROTTLED"))
    job = run_step(submitted)
    assert job.status == Status.THROTTLED
    assert job.get_status_display() == "Waiting for capacity"
    assert job.message == ""

    responses.replace(responses.GET, TASK_URL, json=task_answer("PENDING"))
    job = run_step(job)
    assert job.status == Status.PENDING
    assert job.poll_count == 2
    assert [t.args for t in broker.tasks()] == [[job.pk, job.step - 1], [job.pk, job.step]]


@responses.activate
def test_running_updates_progress_and_reschedules_with_the_poll_interval(submitted, broker, settings):
    settings.RUNWAY_POLL_INTERVAL = 7
    responses.get(TASK_URL, json=task_answer("RUNNING", progress=0.42))
    before = timezone.now()
    job = run_step(submitted)

    assert job.status == Status.RUNNING
    assert job.progress == 42
    [queued] = broker.tasks()
    eta = timezone.datetime.fromisoformat(queued.eta)
    assert before + timedelta(seconds=7) <= eta <= timezone.now() + timedelta(seconds=7)


@responses.activate
def test_a_poll_that_finds_the_video_done_makes_storing_it_the_next_step(submitted, broker):
    responses.get(TASK_URL, json=task_answer("SUCCEEDED", output=["https://cdn.test/a.mp4?_jwt=x", "https://b"]))

    next_step = steps.step_run(step=Step.POLL, generation_id=submitted.pk, number=submitted.step)

    # Not done until our copy is kept: storing it is a step of its own, due now.
    job = VideoGeneration.objects.get(pk=submitted.pk)
    assert (job.status, job.video_pending, job.next_step) == (Status.PENDING, True, Step.STORE_VIDEO)
    assert job.output_url == "https://cdn.test/a.mp4?_jwt=x"  # the first output
    assert next_step == steps.NextStep(job.pk, Step.STORE_VIDEO, job.step, 0.0)
    assert len(responses.calls) == 1


@responses.activate
def test_the_poll_task_stores_the_video_and_makes_its_poster_at_once(submitted, broker):
    responses.get(TASK_URL, json=task_answer("SUCCEEDED", output=["https://cdn.test/a.mp4?_jwt=x"]))
    responses.get("https://cdn.test/a.mp4?_jwt=x", body=MP4, content_type="video/mp4")
    first_step = submitted.step
    job = run_step(submitted)

    # The store step ran in the same process, right after the poll: Runway's link was fresh.
    assert job.status == Status.SUCCEEDED
    assert not job.video_pending
    with job.video_file.open("rb") as stored:
        assert stored.read() == MP4
    assert job.progress == 100
    assert job.finished_at is not None
    # Then the poster, a step of its own too: three steps, each claimed on its own, no message between.
    assert job.step == first_step + 3
    with job.poster.open("rb") as poster:
        assert poster.read()[:2] == b"\xff\xd8"  # a JPEG frame for the history's thumbnail
    assert not job.poster_pending
    assert broker.tasks() == []
    # The output host is not Runway's API: it never gets the key; making the poster asks Runway nothing.
    assert "Authorization" not in responses.calls[1].request.headers
    assert len(responses.calls) == 2


@responses.activate
def test_a_store_step_of_its_own_keeps_the_video(make_job, broker):
    # As the sweep finds a job whose worker died between the poll and storing the video.
    job = make_job(status=Status.RUNNING, runway_task_id=TASK_ID, output_url=MADE, video_pending=True, step=3)
    responses.get(MADE, body=MP4)

    job = run_step(job)

    assert (job.status, job.video_pending, job.poster_pending) == (Status.SUCCEEDED, False, False)
    assert job.poster  # made right after, in the same process
    assert [c.request.url for c in responses.calls] == [MADE]
    assert broker.tasks() == []


@responses.activate
def test_an_expired_output_link_is_refreshed_by_asking_runway_again(submitted, broker):
    responses.get(TASK_URL, json=task_answer("SUCCEEDED", output=["https://cdn.test/a.mp4?_jwt=old"]))
    responses.get("https://cdn.test/a.mp4?_jwt=old", status=403)
    job = run_step(submitted)
    assert not job.is_final
    assert "no longer works (403)" in job.last_error
    assert job.next_step == Step.POLL
    [retry] = broker.tasks()
    assert retry.name == "videos.tasks.poll"
    assert timezone.datetime.fromisoformat(retry.eta) - timezone.now() >= timedelta(seconds=9)  # a backoff

    responses.replace(
        responses.GET, TASK_URL, json=task_answer("SUCCEEDED", output=["https://cdn.test/a.mp4?_jwt=new"])
    )
    responses.get("https://cdn.test/a.mp4?_jwt=new", body=MP4)
    job = run_step(job)
    assert job.status == Status.SUCCEEDED
    assert job.output_url == "https://cdn.test/a.mp4?_jwt=new"
    assert job.video_file


@responses.activate
def test_an_output_that_is_not_a_video_fails_the_job(submitted, broker):
    responses.get(TASK_URL, json=task_answer("SUCCEEDED", output=["https://cdn.test/a.mp4"]))
    responses.get("https://cdn.test/a.mp4", body=b"<html>not a video</html>")
    job = run_step(submitted)
    assert job.status == Status.FAILED
    assert job.message == "Runway made the video, but it could not be kept: Runway's output is not an MP4 video"
    assert not job.video_file


@responses.activate
def test_an_output_larger_than_allowed_fails_the_job(submitted, broker, settings):
    settings.RUNWAY_MAX_VIDEO_BYTES = len(MP4) - 1
    succeeded_at_runway()
    job = run_step(submitted)
    assert job.status == Status.FAILED
    assert "larger than" in job.message
    assert not job.video_file


@responses.activate
def test_succeeded_without_output_is_retried_not_final(submitted, broker):
    responses.get(TASK_URL, json=task_answer("SUCCEEDED", output=[]))
    job = run_step(submitted)

    assert not job.is_final
    assert "no output" in job.last_error
    assert len(broker.tasks()) == 1


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("SAFETY.INPUT.TEXT", "content moderation declined the description"),
        ("INPUT_PREPROCESSING.SAFETY.TEXT", "content moderation declined the description"),
        ("SAFETY.OUTPUT.VIDEO", "declined the generated video"),
        ("ASSET.INVALID", "could not use the input image"),
        ("INTERNAL.BAD_OUTPUT.CODE01", "discarded the result for quality"),
        ("INTERNAL", "problem on its side"),
        ("THIRD_PARTY.UNAVAILABLE", "problem on its side"),
        ("", "problem on its side"),
    ],
)
@responses.activate
def test_failed_shows_a_friendly_message_and_keeps_the_raw_code(submitted, broker, code, words):
    responses.get(TASK_URL, json=task_answer("FAILED", failure="raw reason", failureCode=code))
    job = run_step(submitted)

    assert job.status == Status.FAILED
    assert words in job.message
    assert job.failure_code == code
    assert job.last_error == "raw reason"
    assert broker.tasks() == []


@responses.activate
def test_cancelled_at_runway_ends_the_job(submitted, broker):
    responses.get(TASK_URL, json=task_answer("CANCELLED"))
    job = run_step(submitted)
    assert job.status == Status.CANCELLED
    assert broker.tasks() == []


@responses.activate
def test_unknown_state_is_not_final(submitted, broker):
    responses.get(TASK_URL, json=task_answer("QUEUED_SOMEWHERE_NEW"))
    job = run_step(submitted)

    assert job.status == Status.PENDING
    assert "QUEUED_SOMEWHERE_NEW" in job.last_error
    assert len(broker.tasks()) == 1


@responses.activate
def test_network_error_then_recovery_keeps_the_job(submitted, broker):
    responses.get(TASK_URL, body=requests.ConnectionError("reset"))
    job = run_step(submitted)
    assert job.status == Status.PENDING
    assert job.error_count == 1
    assert "Could not reach Runway" in job.last_error
    [retry] = broker.tasks()
    # Backed off: at least the poll interval, with jitter on top.
    assert timezone.datetime.fromisoformat(retry.eta) - timezone.now() >= timedelta(seconds=9)

    responses.replace(responses.GET, TASK_URL, json=task_answer("RUNNING", progress=0.5))
    job = run_step(job)
    assert job.status == Status.RUNNING
    assert job.error_count == 0
    assert job.progress == 50


@responses.activate
def test_retry_after_is_honoured(submitted, broker):
    responses.get(TASK_URL, status=429, headers={"Retry-After": "90"}, json={"error": "slow down"})
    job = run_step(submitted)
    [retry] = broker.tasks()
    assert timezone.datetime.fromisoformat(retry.eta) - timezone.now() >= timedelta(seconds=89)
    assert not job.is_final


def at_runway_since(job: VideoGeneration, seconds: float) -> None:
    """Runway accepted the job's create `seconds` ago (and it was made a moment before that)."""
    accepted = timezone.now() - timedelta(seconds=seconds)
    VideoGeneration.objects.filter(pk=job.pk).update(submitted_at=accepted, created_at=accepted - timedelta(seconds=1))


def final_entry(job: VideoGeneration) -> SpendEntry:
    return SpendEntry.objects.get(generation_number=job.pk, kind=SpendKind.FINAL)


@responses.activate
def test_max_wait_times_out_and_cancels_at_runway(submitted, broker, settings):
    settings.RUNWAY_MAX_WAIT = 300
    ledger.spend_reserve(generation=submitted)
    at_runway_since(submitted, 301)
    responses.get(TASK_URL, json=task_answer("RUNNING", progress=0.3))
    responses.delete(TASK_URL, status=204)
    job = run_step(submitted)

    assert job.status == Status.TIMED_OUT
    assert job.message == "Video generation timed out after 5 minutes at Runway"
    assert job.cancel_pending is False
    assert [c.request.method for c in responses.calls] == ["GET", "DELETE"]  # the poll's look decides the cost
    assert broker.tasks() == []
    # Runway had started it: a task cancelled while RUNNING is not refunded, so the estimate stands.
    assert (final_entry(job).credits, final_entry(job).note) == (0, ledger.STARTED_NOTE)
    assert selectors.generation_cost(generation=job).credits == 60


@responses.activate
def test_the_wait_at_runway_counts_from_when_runway_accepted_it_not_from_creation(submitted, broker, settings):
    settings.RUNWAY_MAX_WAIT = 300
    VideoGeneration.objects.filter(pk=submitted.pk).update(
        created_at=timezone.now() - timedelta(seconds=600), submitted_at=timezone.now() - timedelta(seconds=100)
    )
    responses.get(TASK_URL, json=task_answer("RUNNING", progress=0.3))
    job = run_step(submitted)

    assert job.status == Status.RUNNING  # ten minutes since it was made, but only 100 s at Runway
    assert [c.request.method for c in responses.calls] == ["GET"]


@responses.activate
def test_timeout_message_uses_the_configured_wait(submitted, broker, settings):
    settings.RUNWAY_MAX_WAIT = 90
    ledger.spend_reserve(generation=submitted)
    at_runway_since(submitted, 91)
    responses.get(TASK_URL, json=task_answer("PENDING"))
    responses.delete(TASK_URL, status=204)
    job = run_step(submitted)
    assert job.message == "Video generation timed out after 90 seconds at Runway"
    # Still PENDING when it was deleted: Runway refunds it, and so does the ledger.
    assert (final_entry(job).credits, final_entry(job).note) == (-60, ledger.REFUNDED_NOTE)
    assert selectors.generation_cost(generation=job).credits == 0


@responses.activate
def test_a_video_that_finishes_at_the_deadline_is_kept(submitted, broker):
    at_runway_since(submitted, 301)
    succeeded_at_runway()
    job = run_step(submitted)
    assert job.status == Status.SUCCEEDED
    assert [c.request.url for c in responses.calls] == [TASK_URL, MADE]


@responses.activate
def test_a_video_whose_download_keeps_failing_past_the_deadline_times_out(submitted, broker):
    at_runway_since(submitted, 301)
    responses.get(TASK_URL, json=task_answer("SUCCEEDED", output=[MADE]))
    responses.get(MADE, status=502)
    responses.delete(TASK_URL, status=204)
    job = run_step(submitted)
    assert job.status == Status.TIMED_OUT
    assert not job.video_file
    assert [c.request.method for c in responses.calls] == ["GET", "GET", "DELETE"]


@responses.activate
def test_a_failed_cancel_is_retried_by_later_steps(submitted, broker):
    at_runway_since(submitted, 301)
    responses.get(TASK_URL, json=task_answer("RUNNING"))
    responses.delete(TASK_URL, status=503)
    job = run_step(submitted)
    assert job.status == Status.TIMED_OUT
    assert job.cancel_pending is True
    assert "Could not cancel" in job.last_error
    assert len(broker.tasks()) == 1

    responses.replace(responses.DELETE, TASK_URL, status=204)
    job = run_step(job)
    assert job.cancel_pending is False
    assert job.status == Status.TIMED_OUT
    assert len(broker.tasks()) == 1


@responses.activate
def test_late_duplicate_message_changes_nothing(submitted, broker):
    responses.get(TASK_URL, json=task_answer("RUNNING", progress=0.2))
    stale_step = submitted.step
    job = run_step(submitted)
    snapshot = VideoGeneration.objects.filter(pk=job.pk).values().get()

    tasks.poll.apply(args=[job.pk, stale_step], throw=True)

    assert VideoGeneration.objects.filter(pk=job.pk).values().get() == snapshot
    assert len(responses.calls) == 1
    assert len(broker.tasks()) == 1


@responses.activate
def test_message_for_a_finished_job_changes_nothing(make_job, broker):
    job = make_job(status=Status.SUCCEEDED, runway_task_id=TASK_ID, output_url="https://cdn.test/a.mp4", step=4)
    snapshot = VideoGeneration.objects.filter(pk=job.pk).values().get()
    for step in Step:
        tasks.task_for(step).apply(args=[job.pk, job.step], throw=True)
    tasks.advance_generation.apply(args=[job.pk, job.step], throw=True)
    assert VideoGeneration.objects.filter(pk=job.pk).values().get() == snapshot
    assert len(responses.calls) == 0


@responses.activate
def test_a_message_for_another_step_than_the_jobs_next_changes_nothing(submitted, broker):
    snapshot = VideoGeneration.objects.filter(pk=submitted.pk).values().get()
    for step in (Step.SUBMIT, Step.STORE_VIDEO, Step.MAKE_POSTER, Step.CANCEL_AT_RUNWAY):
        tasks.task_for(step).apply(args=[submitted.pk, submitted.step], throw=True)
    assert VideoGeneration.objects.filter(pk=submitted.pk).values().get() == snapshot
    assert len(responses.calls) == 0


@responses.activate
def test_a_message_of_the_earlier_one_task_runs_whichever_step_is_due(submitted, broker):
    responses.get(TASK_URL, json=task_answer("RUNNING", progress=0.3))
    tasks.advance_generation.apply(args=[submitted.pk, submitted.step], throw=True)
    submitted.refresh_from_db()
    assert (submitted.status, submitted.progress, submitted.poll_count) == (Status.RUNNING, 30, 1)
    assert [t.name for t in broker.tasks()] == ["videos.tasks.poll"]


@responses.activate
def test_duplicate_submit_message_creates_once(make_job, broker):
    responses.post(f"{BASE}/v1/text_to_video", json={"id": TASK_ID})
    job = make_job()
    tasks.submit.apply(args=[job.pk, 0], throw=True)
    tasks.submit.apply(args=[job.pk, 0], throw=True)
    assert len(responses.calls) == 1


@responses.activate
def test_create_rejected_by_runway_fails_with_its_message(make_job, broker):
    responses.post(
        f"{BASE}/v1/text_to_video",
        status=400,
        json={"error": "Validation of body failed", "issues": [{"path": ["promptText"], "message": "Too long"}]},
    )
    job = run_step(make_job())
    assert job.status == Status.FAILED
    assert "Validation of body failed" in job.message
    assert "promptText: Too long" in job.message
    assert broker.tasks() == []


@responses.activate
def test_bad_key_fails_the_job(make_job, broker):
    responses.post(f"{BASE}/v1/text_to_video", status=401, json={"error": "Unauthorized"})
    job = run_step(make_job())
    assert job.status == Status.FAILED
    assert job.message == "Runway rejected the API key"


@responses.activate
def test_create_refused_for_capacity_is_retried_later(make_job, broker):
    responses.post(f"{BASE}/v1/text_to_video", status=429, headers={"Retry-After": "30"}, json={"error": "daily"})
    job = run_step(make_job())
    assert job.status == Status.QUEUED
    assert job.error_count == 1
    [retry] = broker.tasks()
    assert timezone.datetime.fromisoformat(retry.eta) - timezone.now() >= timedelta(seconds=29)

    responses.replace(responses.POST, f"{BASE}/v1/text_to_video", json={"id": TASK_ID})
    job = run_step(job)
    assert job.status == Status.PENDING
    assert len(responses.calls) == 2


@responses.activate
def test_create_that_may_have_reached_runway_is_not_sent_again(make_job, broker):
    responses.post(f"{BASE}/v1/text_to_video", body=requests.ReadTimeout("no answer"))
    job = run_step(make_job())

    assert job.status == Status.FAILED
    assert job.failure_code == steps.UNCONFIRMED_CODE
    assert "not sent again" in job.message
    assert broker.tasks() == []
    tasks.submit.apply(args=[job.pk, job.step], throw=True)
    assert len(responses.calls) == 1


@responses.activate
def test_create_answered_by_a_gateway_error_is_not_sent_again(make_job, broker):
    responses.post(f"{BASE}/v1/text_to_video", status=504, body="<html>Gateway Time-out</html>")
    job = run_step(make_job())
    assert job.status == Status.FAILED
    assert job.failure_code == steps.UNCONFIRMED_CODE
    assert len(responses.calls) == 1


@responses.activate
def test_create_that_never_connected_is_retried(make_job, broker):
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    refused = requests.ConnectionError(MaxRetryError(None, BASE, NewConnectionError(None, "refused")))
    responses.post(f"{BASE}/v1/text_to_video", body=refused)
    job = run_step(make_job())
    assert job.status == Status.QUEUED
    assert len(broker.tasks()) == 1


@responses.activate
def test_a_job_taken_up_after_its_send_deadline_is_never_sent_and_costs_nothing(make_job, broker, settings):
    settings.RUNWAY_MAX_QUEUE_WAIT = 300
    responses.post(f"{BASE}/v1/text_to_video", json={"id": TASK_ID, "estimatedCost": {"credits": 60}})
    job = make_job()
    ledger.spend_reserve(generation=job)
    VideoGeneration.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=301))
    job = run_step(job)

    assert job.status == Status.TIMED_OUT
    assert job.failure_code == steps.NOT_SENT_CODE
    assert job.message == (
        "Timed out before it was sent to Runway: it waited more than 5 minutes to start. Never sent; nothing charged."
    )
    assert len(responses.calls) == 0  # never sent
    assert broker.tasks() == []
    assert (final_entry(job).credits, selectors.generation_cost(generation=job).credits) == (-60, 0)


@responses.activate
def test_creates_keep_failing_until_a_retry_would_miss_the_send_deadline_then_time_out(make_job, broker, settings):
    settings.RUNWAY_MAX_QUEUE_WAIT = 300
    responses.post(f"{BASE}/v1/text_to_video", status=503)
    job = make_job()
    ledger.spend_reserve(generation=job)
    # Made 290 s ago: a retry after Runway's 503 would come after the 300 s, so none is scheduled.
    VideoGeneration.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=290))
    job = run_step(job)

    assert job.status == Status.TIMED_OUT
    assert job.failure_code == steps.NOT_SENT_CODE
    assert "Runway is unavailable (503)" in job.last_error
    assert len(responses.calls) == 1
    assert broker.tasks() == []
    assert selectors.generation_cost(generation=job).credits == 0


@responses.activate
def test_no_api_key_fails_without_any_request(make_job, broker, settings):
    settings.RUNWAY_API_KEY = ""
    job = run_step(make_job())
    assert job.status == Status.FAILED
    assert job.message == "Runway API key is not configured"
    assert len(responses.calls) == 0


@responses.activate
def test_task_gone_at_runway_fails_the_job(submitted, broker):
    responses.get(TASK_URL, status=404, json={"error": "Task not found"})
    job = run_step(submitted)
    assert job.status == Status.FAILED
    assert job.message == "Runway has no such task"


@responses.activate
def test_cancel_makes_pending_messages_stale_and_its_own_step_deletes_at_runway(submitted, broker):
    ledger.spend_reserve(generation=submitted)
    responses.get(TASK_URL, json=task_answer("PENDING"))
    responses.delete(TASK_URL, status=204)
    stale_step = submitted.step
    job = actions.generation_cancel(generation_id=submitted.pk)

    tasks.poll.apply(args=[job.pk, stale_step], throw=True)
    assert len(responses.calls) == 0
    assert (job.status, job.next_step) == (Status.CANCELLED, Step.CANCEL_AT_RUNWAY)
    job = run_step(job)
    assert job.cancel_pending is False
    # Asked first: whether Runway refunds a cancelled task depends on its status when it is cancelled.
    assert [c.request.method for c in responses.calls] == ["GET", "DELETE"]
    assert (job.runway_status, final_entry(job).note) == ("PENDING", ledger.REFUNDED_NOTE)
    assert selectors.generation_cost(generation=job).credits == 0


@responses.activate
def test_a_job_cancelled_while_runway_generates_it_keeps_its_cost_and_the_card_says_why(submitted, broker):
    ledger.spend_reserve(generation=submitted)
    responses.get(TASK_URL, json=task_answer("RUNNING", progress=0.45, estimatedCost={"credits": 60}))
    responses.delete(TASK_URL, status=204)
    job = actions.generation_cancel(generation_id=submitted.pk)
    job = run_step(job)

    assert [c.request.method for c in responses.calls] == ["GET", "DELETE"]
    assert (job.runway_status, final_entry(job).note) == ("RUNNING", ledger.STARTED_NOTE)
    job = VideoGeneration.objects.with_cost().get(pk=job.pk)
    assert (job.cost_credits, job.cost_final) == (60, True)
    assert "does not refund a task stopped once started" in selectors.generation_card_state(generation=job).cost_reason


@responses.activate
def test_a_job_cancelled_after_its_last_poll_saw_it_running_is_deleted_without_asking_again(submitted, broker):
    VideoGeneration.objects.filter(pk=submitted.pk).update(status=Status.RUNNING, runway_status="RUNNING")
    ledger.spend_reserve(generation=submitted)
    responses.delete(TASK_URL, status=204)
    job = run_step(actions.generation_cancel(generation_id=submitted.pk))

    assert [c.request.method for c in responses.calls] == ["DELETE"]  # started: no refund, whatever it is now
    assert final_entry(job).note == ledger.STARTED_NOTE


@responses.activate
def test_cancel_during_submit_deletes_the_new_task(make_job, broker):
    job = make_job()

    def create_then_user_cancels(request):
        actions.generation_cancel(generation_id=job.pk)  # the user clicks while the POST is in flight
        return (200, {}, json.dumps({"id": TASK_ID}))

    responses.add_callback(responses.POST, f"{BASE}/v1/text_to_video", callback=create_then_user_cancels)
    responses.get(TASK_URL, json=task_answer("PENDING"))
    responses.delete(TASK_URL, status=204)
    job = run_step(job)

    assert job.status == Status.CANCELLED
    assert job.runway_task_id == TASK_ID
    assert job.cancel_pending is False
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "DELETE"]
    assert broker.tasks() == []


def test_cancel_of_a_finished_job_is_refused(make_job):
    job = make_job(status=Status.SUCCEEDED)
    with pytest.raises(actions.GenerationError, match="already ended"):
        actions.generation_cancel(generation_id=job.pk)


def test_poll_now_queues_the_poll_no_sooner_than_a_poll_interval_after_the_last_step(submitted, broker, settings):
    settings.RUNWAY_POLL_INTERVAL = 10
    now = timezone.now()
    VideoGeneration.objects.filter(pk=submitted.pk).update(
        updated_at=now - timedelta(seconds=3), next_check_at=now + timedelta(seconds=7)
    )
    with responses.RequestsMock() as runway:
        queued = actions.generation_poll_now(generation_id=submitted.pk, now=now)
        assert len(runway.calls) == 0

    assert (queued.step, queued.number, queued.countdown) == (Step.POLL, submitted.step, 7.0)
    [message] = broker.tasks()
    assert (message.name, message.args) == ("videos.tasks.poll", [submitted.pk, submitted.step])
    assert 7 <= (timezone.datetime.fromisoformat(message.eta) - now).total_seconds() <= 8
    # Long after the last step, it is due at once.
    VideoGeneration.objects.filter(pk=submitted.pk).update(updated_at=now - timedelta(minutes=1))
    assert actions.generation_poll_now(generation_id=submitted.pk, now=now).countdown == 0


@responses.activate
def test_poll_now_and_the_scheduled_poll_make_one_request(submitted, broker):
    responses.get(TASK_URL, json=task_answer("RUNNING", progress=0.8))
    VideoGeneration.objects.filter(pk=submitted.pk).update(
        updated_at=timezone.now() - timedelta(minutes=1), next_check_at=timezone.now()
    )
    actions.generation_poll_now(generation_id=submitted.pk)
    [queued] = broker.tasks()
    queued.run()
    tasks.poll.apply(args=[submitted.pk, submitted.step], throw=True)  # the poll that was scheduled anyway

    job = VideoGeneration.objects.get(pk=submitted.pk)
    assert job.progress == 80
    assert len(responses.calls) == 1


def test_poll_now_leaves_a_step_that_is_running_to_its_worker(make_job, broker):
    running = make_job(status=Status.RUNNING, runway_task_id=TASK_ID, step=3, next_check_at=None)
    with pytest.raises(actions.GenerationError, match="poll step is running right now"):
        actions.generation_poll_now(generation_id=running.pk)
    assert broker.tasks() == []
    # Unless its worker died: claimed long ago and never finished.
    later = timezone.now() + timedelta(minutes=3)
    assert actions.generation_poll_now(generation_id=running.pk, now=later).countdown == 0
    assert len(broker.tasks()) == 1


def test_the_api_key_never_reaches_the_record(make_job, settings):
    job = make_job()
    text = repr(VideoGeneration.objects.filter(pk=job.pk).values().get())
    assert not re.search(re.escape(settings.RUNWAY_API_KEY), text)


@responses.activate
def test_a_video_whose_poster_cannot_be_made_is_still_kept(submitted, broker, monkeypatch):
    def no_poster(video):
        raise steps.PosterError("ffmpeg could not make a poster: broken")

    monkeypatch.setattr(steps, "poster_from_video", no_poster)
    succeeded_at_runway()
    job = run_step(submitted)  # the poll, the store, and the poster that fails
    assert job.status == Status.SUCCEEDED
    assert job.video_file
    assert not job.poster
    assert not job.poster_pending  # not tried again and again


@responses.activate
def test_a_poster_step_that_finds_ffmpeg_busy_comes_back_later(submitted, broker, monkeypatch):
    def busy(video):
        raise steps.PosterBusy

    monkeypatch.setattr(steps, "poster_from_video", busy)
    succeeded_at_runway()
    job = run_step(run_step(submitted))
    queued = broker.tasks()[-1]  # after the poll's and the first poster step's messages

    assert job.status == Status.SUCCEEDED
    assert job.poster_pending and not job.poster  # still to make, not given up
    assert queued.name == "videos.tasks.make_poster"
    assert queued.args == [job.pk, job.step]
    assert queued.eta is not None
    wait = (datetime.fromisoformat(queued.eta) - job.updated_at).total_seconds()
    assert steps.POSTER_BUSY_WAIT[0] - 1 <= wait <= steps.POSTER_BUSY_WAIT[1] + 1


@responses.activate
def test_a_poster_made_for_a_job_deleted_meanwhile_is_removed(submitted, broker, monkeypatch):
    from django.core.files.storage import default_storage

    succeeded_at_runway()
    made = []
    real_save = default_storage.save

    def save_then_delete_the_job(name, content, **kwargs):
        made.append(real_save(name, content, **kwargs))
        if name.startswith("posters/"):
            VideoGeneration.objects.filter(pk=submitted.pk).delete()
        return made[-1]

    monkeypatch.setattr(default_storage, "save", save_then_delete_the_job)
    tasks.poll.apply(args=[submitted.pk, submitted.step], throw=True)  # the poll, the store, the poster
    [video, poster] = made
    assert poster.startswith("posters/") and not default_storage.exists(poster)


@responses.activate
def test_an_input_image_that_vanished_fails_the_job_without_sending_anything(make_job, broker):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    name = default_storage.save("inputs/test/first.png", ContentFile(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10))
    job = make_job(endpoint="image_to_video", model="gen4_turbo", image=name)
    default_storage.delete(name)

    job = run_step(job)

    assert job.status == Status.FAILED
    assert job.message == "The input image could not be read."
    assert len(responses.calls) == 0


@responses.activate
def test_a_job_the_sweep_gave_up_on_while_its_create_was_out_has_its_new_task_deleted(make_job, broker):
    job = make_job()

    def create_while_the_sweep_fails_the_job(request):
        VideoGeneration.objects.filter(pk=job.pk).update(status=Status.FAILED, step=F("step") + 1)
        return (200, {}, json.dumps({"id": TASK_ID}))

    responses.add_callback(responses.POST, f"{BASE}/v1/text_to_video", callback=create_while_the_sweep_fails_the_job)
    responses.get(TASK_URL, json=task_answer("PENDING"))
    responses.delete(TASK_URL, status=204)
    job = run_step(job)

    assert job.status == Status.FAILED
    assert job.runway_task_id == TASK_ID
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "DELETE"]


@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_its_database_connection_from_task_to_task_until_it_is_old():
    from celery import signals
    from django.db import connection

    def between_tasks():
        signals.task_postrun.send(sender=tasks.poll, task_id="t", task=tasks.poll, args=(), kwargs={})
        signals.task_prerun.send(sender=tasks.poll, task_id="t", task=tasks.poll, args=(), kwargs={})

    VideoGeneration.objects.count()
    kept = connection.connection
    between_tasks()
    assert connection.connection is kept  # no new connection for every step

    connection.close_at = 0  # older than CONN_MAX_AGE
    between_tasks()
    assert connection.connection is None


def test_every_step_has_a_task_named_after_it():
    from celery import current_app

    for step in Step:
        task = tasks.task_for(step)
        assert task.name == f"videos.tasks.{step.value}"
        assert task.name in current_app.tasks  # registered, so a worker runs its messages
        assert getattr(tasks, step.value) is task


# --- A database that went away mid-step ---------------------------------------------------------


def test_a_step_that_finds_no_database_comes_back_after_2_4_8_16_then_every_30_seconds():
    assert [tasks.outage_backoff(retries) for retries in range(7)] == [2, 4, 8, 16, 30, 30, 30]
    total = sum(tasks.outage_backoff(retries) for retries in range(tasks.OUTAGE_RETRIES))
    assert 240 <= total <= 300  # a restart or a failover of tens of seconds is ridden out


def test_a_create_recorded_late_schedules_the_first_poll(make_job, broker):
    # The worker claimed the submit (step 0 -> 1), sent the create, and found no database to write it.
    job = make_job(status=Status.SUBMITTING, step=1)
    submitted_at = timezone.now() - timedelta(seconds=30)

    tasks.record_submission.apply(args=[job.pk, 1, TASK_ID, submitted_at.isoformat()], throw=True)

    job.refresh_from_db()
    assert (job.status, job.runway_task_id, job.submitted_at) == (Status.PENDING, TASK_ID, submitted_at)
    assert [(t.name, t.args) for t in broker.tasks()] == [("videos.tasks.poll", [job.pk, 1])]


@responses.activate
def test_a_create_recorded_after_the_job_ended_stops_its_task_at_runway(make_job, broker):
    # The sweep gave up on the job (the database was away longer than STEP_LOST_AFTER): its task,
    # which nobody would see, is deleted at once.
    job = make_job(status=Status.FAILED, step=2, failure_code=steps.UNCONFIRMED_CODE)
    ledger.spend_reserve(generation=job)
    ledger.spend_settle(generation=job, charged=None, note=ledger.UNCONFIRMED_NOTE)  # as the sweep settled it
    responses.delete(TASK_URL, status=204)

    tasks.record_submission.apply(args=[job.pk, 1, TASK_ID, timezone.now().isoformat()], throw=True)

    job.refresh_from_db()
    assert (job.status, job.runway_task_id, job.cancel_pending) == (Status.FAILED, TASK_ID, False)
    assert [call.request.method for call in responses.calls] == ["DELETE"]


def test_a_create_recorded_twice_is_recorded_once(make_job, broker):
    job = make_job(status=Status.SUBMITTING, step=1)
    for _ in range(2):
        tasks.record_submission.apply(args=[job.pk, 1, TASK_ID, timezone.now().isoformat()], throw=True)

    job.refresh_from_db()
    assert (job.status, job.runway_task_id) == (Status.PENDING, TASK_ID)
    assert len(broker.tasks()) == 1
