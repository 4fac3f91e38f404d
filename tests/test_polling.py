"""Polls kept by a worker's poller (videos/services/polling.py), with Runway mocked at the HTTP boundary."""

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
import responses
from django.db import DatabaseError
from django.utils import timezone

from tests.conftest import MP4
from videos.catalog import VideoRequest
from videos.models import STEP_LOST_AFTER, Status, Step, VideoGeneration
from videos.runway import RunwayError, TaskState
from videos.services import actions, creation, polling, steps
from videos.services.bookkeeping import NextStep, runway_deadline

BASE = "https://runway.test"
TASK = "acf9ba3d-a513-42c9-a646-96e8bc97c691"


def held(job: VideoGeneration, *, due: float = 0.0) -> polling.Held:
    return polling.Held(job.pk, job.step, job.runway_task_id, Status(job.status), runway_deadline(job), due)


def running(job: VideoGeneration, progress: float = 0.4) -> polling.Answer:
    return polling.Answer(held(job), TaskState(id=job.runway_task_id, status="RUNNING", progress=progress))


def succeeded(job: VideoGeneration) -> TaskState:
    """Runway's answer that the job's task succeeded, its video served at the output URL (responses)."""
    output = "https://cdn.test/a.mp4"
    responses.get(output, body=MP4, content_type="video/mp4")
    return TaskState(id=job.runway_task_id, status="SUCCEEDED", output=[output], cost_credits=50)


@pytest.fixture
def at_runway(make_job):
    """Jobs Runway accepted a moment ago, waiting for their first poll."""

    def make(count: int = 1, **fields) -> list[VideoGeneration]:
        defaults = {"status": Status.PENDING, "submitted_at": timezone.now(), "step": 1}
        return [make_job(**{**defaults, "runway_task_id": f"{TASK[:-2]}{n:02d}", **fields}) for n in range(count)]

    return make


@pytest.mark.django_db
def test_waiting_answers_are_written_in_one_update(at_runway, broker, django_assert_num_queries):
    first, second, third = at_runway(3)
    answers = [
        running(first, 0.25),
        polling.Answer(held(second), TaskState(id=second.runway_task_id, status="THROTTLED")),
        polling.Answer(held(third), TaskState(id=third.runway_task_id, status="PENDING")),
    ]
    now = timezone.now()
    with django_assert_num_queries(1):
        again, others = polling.polls_record(answers, now=now)

    assert others == []
    assert [(h.generation_id, h.number) for h in again] == [(first.pk, 2), (second.pk, 2), (third.pk, 2)]
    assert [h.status for h in again] == [Status.RUNNING, Status.THROTTLED, Status.PENDING]
    rows = {row.pk: row for row in VideoGeneration.objects.all()}
    assert rows[first.pk].status == Status.RUNNING
    assert rows[first.pk].progress == 25
    assert rows[first.pk].runway_status == "RUNNING"
    assert rows[second.pk].status == Status.THROTTLED
    for row in rows.values():
        assert row.step == 2
        assert row.poll_count == 1
        assert row.next_check_at == now + timedelta(seconds=10)
        assert row.updated_at == now
    assert broker.tasks() == []  # nothing went through the broker


@pytest.mark.django_db
def test_a_job_cancelled_while_its_poll_was_out_is_let_go(at_runway, broker):
    kept, cancelled = at_runway(2)
    answers = [running(kept), running(cancelled)]
    actions.generation_cancel(generation_id=cancelled.pk)
    broker.clear()  # the cancel's own step at Runway

    again, others = polling.polls_record(answers, now=timezone.now())

    assert [h.generation_id for h in again] == [kept.pk]
    assert others == []
    cancelled.refresh_from_db()
    assert cancelled.status == Status.CANCELLED
    assert cancelled.poll_count == 0
    assert broker.tasks() == []


@pytest.mark.django_db
@responses.activate
def test_a_finished_task_goes_to_the_poll_step_with_its_answer_and_is_not_asked_again(at_runway, broker, media):
    [job] = at_runway(1)
    state = succeeded(job)
    output = state.output[0]
    answer = polling.Answer(held(job), state)

    assert polling.polls_record([answer], now=timezone.now()) == ([], [answer])
    polling._run_poll_step(answer)  # what a finisher thread runs

    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED
    assert job.video_file
    assert job.poster  # made at once, in the same thread
    assert [call.request.url for call in responses.calls] == [output]  # no GET of the task
    assert broker.tasks() == []


@pytest.mark.django_db
@responses.activate
def test_an_answer_a_finisher_could_not_take_goes_through_the_broker(at_runway, broker, media):
    [job] = at_runway(1)
    state = succeeded(job)
    output = state.output[0]

    polling.hand_back(polling.Answer(held(job), state))

    [message] = broker.tasks()
    assert message.name == "videos.tasks.poll"
    assert message.args[:2] == [job.pk, job.step]
    assert message.eta is None
    message.run()
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED
    assert job.video_file
    assert [call.request.url for call in responses.calls] == [output]  # no GET of the task


@pytest.mark.django_db
def test_a_failed_poll_goes_back_to_its_step_an_interval_later(at_runway, broker):
    [job] = at_runway(1)
    error = polling.Answer(held(job), None, RunwayError("Runway is busy", permanent=False, retry_after=30))
    poller = polling.Poller(threads=1)  # not started: no finisher threads
    poller._answers.put(error)
    poller._asking = 1

    poller.flush()

    [message] = broker.tasks()
    assert message.args == [job.pk, job.step]
    assert message.eta is not None
    wait = timezone.datetime.fromisoformat(message.eta) - timezone.now()
    assert timedelta(seconds=29) < wait <= timedelta(seconds=30)


@pytest.mark.django_db
@responses.activate
def test_a_job_past_its_time_goes_to_its_step_which_times_it_out(at_runway, broker, settings):
    [job] = at_runway(1, submitted_at=timezone.now() - timedelta(seconds=settings.RUNWAY_MAX_WAIT + 1))
    responses.delete(f"{settings.RUNWAY_API_BASE_URL}/v1/tasks/{job.runway_task_id}", status=204)

    late = running(job)
    assert polling.polls_record([late], now=timezone.now()) == ([], [late])

    polling._run_poll_step(late)
    job.refresh_from_db()
    assert job.status == Status.TIMED_OUT


@pytest.mark.django_db
def test_a_poll_step_hands_its_next_poll_to_the_poller_not_the_broker(at_runway, broker, monkeypatch):
    [job] = at_runway(1)
    poller = polling.Poller(threads=1, clock=lambda: 100.0)  # not started: it only keeps
    monkeypatch.setattr(poller, "_running", True)
    monkeypatch.setattr(polling, "_poller", poller)
    monkeypatch.setattr(
        steps,
        "get_client",
        lambda: type("C", (), {"get_task": lambda self, _: TaskState(job.runway_task_id, "RUNNING")})(),
    )

    steps.step_run_and_enqueue_next(step=Step.POLL, generation_id=job.pk, number=job.step)

    assert broker.tasks() == []
    assert poller.held == 1
    [(due, _, kept)] = poller._heap
    assert due == 110.0  # an interval on the poller's clock
    assert (kept.generation_id, kept.number, kept.task_id, kept.status) == (job.pk, 2, job.runway_task_id, "running")


@pytest.mark.django_db
def test_a_jobs_next_poll_is_due_an_interval_after_runway_answered_its_last(at_runway, broker):
    """Not after the answer was written: our write's wait would add up, poll after poll, and a video
    that ended would be noticed later each time. Not after it was asked either: Runway may read a
    request at any moment until it answers, so the next could reach it less than an interval later."""
    first, second = at_runway(2)
    now = [107.3]  # the answers are written well after they came back
    poller = polling.Poller(threads=1, clock=lambda: now[0])
    poller._running = True
    poller._asking = 2
    poller._answers.put(replace(running(first), answered=100.0))
    poller._answers.put(replace(running(second), answered=104.5))

    poller.flush()

    assert sorted((due, kept.generation_id) for due, _, kept in poller._heap) == [(110.0, first.pk), (114.5, second.pk)]


@pytest.mark.django_db
def test_a_stopping_poller_hands_its_jobs_back_with_the_time_they_had_left(at_runway, broker):
    first, second = at_runway(2)
    now = [50.0]
    poller = polling.Poller(threads=1, clock=lambda: now[0])
    poller._running = True
    poller.hold(replace(held(first), due=53.0))
    poller.hold(replace(held(second), due=48.0))  # overdue already

    assert poller.stop() == 2

    assert not poller.hold(held(first))  # stopped: the caller sends it
    etas = {message.args[0]: message.eta for message in broker.tasks()}
    assert set(etas) == {first.pk, second.pk}
    assert etas[second.pk] is None
    wait = timezone.datetime.fromisoformat(etas[first.pk]) - timezone.now()
    assert timedelta(seconds=2) < wait <= timedelta(seconds=3)


def test_only_a_poll_with_its_task_and_deadline_is_held(monkeypatch):
    poller = polling.Poller(threads=1)
    poller._running = True
    monkeypatch.setattr(polling, "_poller", poller)
    deadline = timezone.now()
    assert not polling.hold(NextStep(1, Step.SUBMIT, 0, 0))
    assert not polling.hold(NextStep(1, Step.POLL, 1, 5.0))  # made without the row's details
    assert polling.hold(NextStep(1, Step.POLL, 1, 5.0, TASK, Status.PENDING, deadline))
    monkeypatch.setattr(polling, "_poller", None)
    assert not polling.hold(NextStep(1, Step.POLL, 1, 5.0, TASK, Status.PENDING, deadline))


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_a_started_poller_polls_each_job_every_interval_until_it_ends(settings, broker, media, user):
    """The threads for real: Runway says RUNNING twice, then SUCCEEDED; a finisher thread runs the
    poll step with that answer, which stores the video and its poster, and nothing goes through the broker."""
    settings.RUNWAY_POLL_INTERVAL = 1  # below Runway's guidance, for a quick test
    job = creation.generation_create(owner=user, request=VideoRequest(prompt="a held job"), enqueue=False)
    VideoGeneration.objects.filter(pk=job.pk).update(
        status=Status.PENDING, runway_task_id=TASK, submitted_at=timezone.now(), step=1
    )
    job.refresh_from_db()
    url = f"{settings.RUNWAY_API_BASE_URL}/v1/tasks/{TASK}"
    for progress in (0.2, 0.6):
        responses.get(
            url, json={"id": TASK, "createdAt": "2026-08-26T06:30:33.796Z", "status": "RUNNING", "progress": progress}
        )
    done = {
        "id": TASK,
        "createdAt": "2026-08-26T06:30:33.796Z",
        "status": "SUCCEEDED",
        "output": ["https://cdn.test/a.mp4"],
    }
    responses.get(url, json=done)
    responses.get("https://cdn.test/a.mp4", body=MP4, content_type="video/mp4")
    poller = polling.Poller(threads=2, finishers=1, finish=polling._run_poll_step)
    poller.start()
    try:
        assert poller.hold(held(job, due=poller.clock()))
        deadline = time.monotonic() + 10
        while VideoGeneration.objects.filter(pk=job.pk, poster_pending=False, status=Status.SUCCEEDED).count() == 0:
            assert time.monotonic() < deadline, "the poller's finisher never stored the video"
            time.sleep(0.05)
    finally:
        poller.stop()
    polls = [call.request for call in responses.calls if call.request.url == url]
    assert len(polls) == 3
    # Downloaded once, by the HTTP thread that heard the task succeeded; the store step kept that copy.
    assert [call.request.url for call in responses.calls].count("https://cdn.test/a.mp4") == 1
    job.refresh_from_db()
    assert job.poll_count == 3
    assert job.video_file and job.poster
    assert broker.tasks() == []


def test_a_poster_due_now_goes_to_a_poster_thread_and_a_stopping_poller_sends_the_waiting_ones(broker):
    drawn: list[int] = []
    poller = polling.Poller(threads=1, posters=1, make_poster=lambda step, row: drawn.append(step.generation_id))
    assert not poller.hold_poster(NextStep(1, Step.MAKE_POSTER, 4, 0))  # not started
    poller.start()
    try:
        assert poller.hold_poster(NextStep(1, Step.MAKE_POSTER, 4, 0))
        deadline = time.monotonic() + 10
        while drawn != [1]:
            assert time.monotonic() < deadline, "the poster thread never made the poster"
            time.sleep(0.01)
    finally:
        poller.stop()
    assert broker.tasks() == []
    assert not poller.hold_poster(NextStep(2, Step.MAKE_POSTER, 4, 0))  # stopped: the caller runs it

    waiting = polling.Poller(threads=1, posters=1)  # its threads not started: the poster waits
    waiting._running, waiting._drawing = True, [threading.Thread(target=lambda: None)]
    waiting._drawing[0].start()
    assert waiting.hold_poster(NextStep(3, Step.MAKE_POSTER, 4, 0))
    waiting._running = False
    assert waiting._posters_back() == 1
    [message] = broker.tasks()
    assert (message.name, message.args) == ("videos.tasks.make_poster", [3, 4])


@pytest.mark.django_db
def test_a_poster_waits_while_a_finished_video_waits_to_be_shown(at_runway, broker):
    """When many videos end at once, the steps that show them come before the posters of those shown."""
    [job] = at_runway(1)
    release = threading.Event()
    events: list[str] = []

    def finish(answer: polling.Answer) -> None:
        events.append("finishing")
        assert release.wait(10)
        events.append("finished")

    poller = polling.Poller(
        threads=1, finishers=1, finish=finish, posters=1, make_poster=lambda *_: events.append("poster")
    )
    poller.start()
    try:
        poller._finish_soon(polling.Answer(held(job), TaskState(id=job.runway_task_id, status="SUCCEEDED")))
        deadline = time.monotonic() + 10
        while events != ["finishing"]:
            assert time.monotonic() < deadline, "the finisher never took the answer"
            time.sleep(0.01)
        assert poller.hold_poster(NextStep(99, Step.MAKE_POSTER, 4, 0))
        while not poller._to_draw.empty():
            assert time.monotonic() < deadline, "the poster thread never took its step"
            time.sleep(0.01)
        time.sleep(0.3)  # the poster thread holds its step: it must not make it meanwhile
        assert events == ["finishing"]
        release.set()
        while events[-1:] != ["poster"]:
            assert time.monotonic() < deadline, "the poster was never made"
            time.sleep(0.01)
    finally:
        release.set()
        poller.stop()
    assert events == ["finishing", "finished", "poster"]


def test_only_a_poster_due_now_is_taken(monkeypatch):
    poller = polling.Poller(threads=1)
    taken: list[NextStep] = []
    monkeypatch.setattr(poller, "hold_poster", lambda step, row: taken.append(step) or True)
    monkeypatch.setattr(polling, "_poller", poller)
    assert not polling.hold(NextStep(1, Step.MAKE_POSTER, 4, 3.0))  # after PosterBusy: through the broker
    assert polling.hold(NextStep(1, Step.MAKE_POSTER, 4, 0))
    assert [step.number for step in taken] == [4]


@pytest.mark.django_db
@responses.activate
def test_a_video_the_http_thread_could_not_fetch_is_left_to_the_store_step(at_runway):
    [job] = at_runway(1)
    output = "https://cdn.test/a.mp4"
    responses.get(output, status=503)
    state = TaskState(id=job.runway_task_id, status="SUCCEEDED", output=[output])

    assert polling._download(held(job), state) is None
    assert polling._download(held(job), replace(state, status="RUNNING")) is None
    assert len(responses.calls) == 1  # only the task that succeeded is fetched


@pytest.mark.django_db
@responses.activate
def test_a_video_fetched_with_its_poll_is_kept_by_the_poll_step_in_its_own_write(at_runway, broker, media):
    [job] = at_runway(1)
    state = succeeded(job)
    answer = polling.Answer(held(job), state, video=polling._download(held(job), state))
    number = job.step

    polling._run_poll_step(answer)

    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED
    assert job.video_file and job.poster
    # Two steps claimed, the poll (which kept the video) and the poster: no store step of its own.
    assert job.step == number + 2
    assert len(responses.calls) == 1  # downloaded once, with the poll
    assert broker.tasks() == []


@pytest.mark.django_db
@responses.activate
def test_an_answer_a_finisher_will_handle_is_in_hand_and_the_sweep_leaves_it_alone(at_runway, broker):
    """A final answer waiting for this worker's finishers marks its job as a claimed step is marked
    (no next_check_at): the sweep does not send its poll again an interval later (a second GET and
    download while the finishers are behind), only once a claimed step would count as lost."""
    waiting, cancelled = at_runway(2, next_check_at=timezone.now())
    answers = [polling.Answer(held(job), succeeded(job)) for job in (waiting, cancelled)]
    actions.generation_cancel(generation_id=cancelled.pk)
    cancelled.refresh_from_db()
    poller = polling.Poller(threads=1, finishers=1)
    poller._finishing = [threading.Thread(target=lambda: None)]  # as if started: this flush is the only one
    for answer in answers:
        poller._answers.put(answer)

    poller.flush()

    waiting.refresh_from_db()
    assert waiting.next_check_at is None
    assert waiting.step == 1 and waiting.status == Status.PENDING  # the finisher's step claims it
    assert VideoGeneration.objects.get(pk=cancelled.pk).next_check_at == cancelled.next_check_at  # not ours now
    assert [poller._to_finish.get_nowait().held.generation_id for _ in range(2)] == [waiting.pk, cancelled.pk]
    soon = waiting.updated_at + timedelta(seconds=3 * 10)  # three poll intervals later
    assert not VideoGeneration.objects.overdue(soon).filter(pk=waiting.pk).exists()
    lost = waiting.updated_at + STEP_LOST_AFTER + timedelta(seconds=1)
    assert VideoGeneration.objects.overdue(lost).filter(pk=waiting.pk).exists()


@pytest.mark.django_db
def test_an_answer_that_cannot_be_marked_in_hand_still_goes_to_a_finisher(at_runway, broker, monkeypatch):
    """The database away as the answers come back: the finishers still get them (one that cannot run
    its step hands it to the broker, which tries again), rather than the writer dropping them."""
    [job] = at_runway(1)

    def database_away(answers, *, now):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(polling, "polls_in_hand", database_away)
    poller = polling.Poller(threads=1, finishers=1)
    poller._finishing = [threading.Thread(target=lambda: None)]  # as if started: this flush is the only one
    poller._answers.put(polling.Answer(held(job), TaskState(id=job.runway_task_id, status="SUCCEEDED")))

    poller.flush()

    assert poller._to_finish.get_nowait().held.generation_id == job.pk
