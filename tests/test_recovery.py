"""Recovery on the real stack: killed workers, a broker that forgot every message, two workers at once.

The database row is the truth: whatever happens to the processes and the broker, every job ends,
no video is paid for twice, and no task is polled faster than Runway allows.
"""

import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from harness.s3 import s3_bucket
from runway_simulator import RunwaySimulator
from tests.stack import LOG_DIR, POLL_INTERVAL, Stack, StackBroker, broker_messages, wait_for_jobs, wait_until
from videos.catalog import RUNNING, VideoRequest
from videos.models import STEP_LOST_AFTER, Status, VideoGeneration
from videos.services import actions, creation

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

MIN_POLL_GAP = POLL_INTERVAL - 0.5  # a little under the interval, for timer jitter
_TASK_PATH = re.compile(r"/v1/tasks/([^/?]+)")


@pytest.fixture
def stack() -> Iterator[Stack]:
    """The processes of a test on the test settings' Redis."""
    stack = Stack()
    yield stack
    stack.stop()


def get_times(simulator: RunwaySimulator) -> dict[str, list[float]]:
    """When each Runway task was asked about (GET /v1/tasks/<id>), in order."""
    times: dict[str, list[float]] = defaultdict(list)
    for request in list(simulator.requests):
        match = _TASK_PATH.fullmatch(request.path)
        if request.method == "GET" and match:
            times[match.group(1)].append(request.at)
    return {task_id: sorted(at) for task_id, at in times.items()}


def polls_too_close(simulator: RunwaySimulator) -> dict[str, list[float]]:
    """Per task, the gaps between two GETs of it that were shorter than Runway allows."""
    close = {}
    for task_id, times in get_times(simulator).items():
        gaps = [round(later - earlier, 2) for earlier, later in zip(times, times[1:], strict=False)]
        if any(gap < MIN_POLL_GAP for gap in gaps):
            close[task_id] = gaps
    return close


def all_scheduled_and_idle(ids: list[int], broker: StackBroker, *, in_broker: bool = True) -> bool:
    """Every job was made at Runway and its next step is scheduled, none due within a second; where
    the broker shows the worker's countdowns (Redis) and the polls wait `in_broker`, each job's
    next step waits there."""
    jobs = list(VideoGeneration.objects.filter(pk__in=ids))
    soon = timezone.now() + timedelta(seconds=1)
    scheduled = len(jobs) == len(ids) and all(
        job.runway_task_id and job.next_check_at and job.next_check_at > soon for job in jobs
    )
    if not scheduled or not in_broker or not broker.shows_held_messages:
        return scheduled
    held = {tuple(m.args) for m in broker.messages() if m.task == "videos.tasks.poll"}
    return all((job.pk, job.step) in held for job in jobs)


def test_jobs_survive_a_killed_worker_and_beat_and_a_broker_that_lost_every_message(
    user, stack_on_each_broker, settings
):
    stack = stack_on_each_broker
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 100
    simulator = stack.start(task_seconds=15.0)
    # Its polls wait in the broker, as a prefork worker's do (for polls kept by the worker, see the next test).
    crashed = stack.worker(WORKER_POLL_THREADS="0")
    beat = stack.beat()
    with stack.broker.sending():
        ids = [
            creation.generation_create(owner=user, request=VideoRequest(prompt=f"Chaos scene {i}")).pk
            for i in range(30)
        ]

    # Strike when every job was created at Runway and its next step (a countdown) is in the broker,
    # not while a step runs: a job whose worker dies mid-step waits STEP_LOST_AFTER for the sweep.
    deadline = time.monotonic() + 30
    while not all_scheduled_and_idle(ids, stack.broker):
        if time.monotonic() > deadline:
            pytest.fail(f"the jobs' next steps never all reached the broker\n{stack.logs()}")
        time.sleep(0.1)
    before = dict(VideoGeneration.objects.filter(pk__in=ids).values_list("pk", "runway_task_id"))
    crashed.kill()
    beat.kill()
    stack.broker.wait_until_unconsumed()
    lost = stack.broker.forget()

    assert crashed.process.returncode == -9
    # The next steps were held by the broker when it lost them: on Redis, in kombu's unacknowledged
    # hash (one the dying worker had just taken may be gone already: kombu pops a message before it
    # notes it as unacknowledged); on RabbitMQ, back in the queue once the dead worker's connection closed.
    assert any(m.task == "videos.tasks.poll" for m in lost)
    assert stack.broker.messages() == []
    assert {job.status for job in VideoGeneration.objects.filter(pk__in=ids)} == {Status.PENDING}
    stack.clock.advance(15.0)  # the videos were made at Runway while our side was down
    worker = stack.worker()
    stack.beat()
    jobs = wait_for_jobs(stack, ids, lambda job: job.is_final, seconds=90)

    assert [job.status for job in jobs] == [Status.SUCCEEDED] * 30, [(job.pk, job.message) for job in jobs]
    assert simulator.creates == 30
    assert {job.pk: job.runway_task_id for job in jobs} == before
    assert len(set(before.values())) == 30
    assert polls_too_close(simulator) == {}
    assert "had lost their task message" in worker.log.read_text(errors="replace")  # the sweep brought them back


def test_polls_a_killed_worker_kept_are_sent_again_by_the_sweep(user, stack, settings):
    """A worker's poller keeps its jobs' polls in the process (videos/services/polling.py): killed,
    it takes them with it, and the rows, still saying when each poll is due, bring them back."""
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 100
    simulator = stack.start(task_seconds=15.0)
    crashed = stack.worker()
    beat = stack.beat()
    ids = [creation.generation_create(owner=user, request=VideoRequest(prompt=f"Kept scene {i}")).pk for i in range(20)]
    deadline = time.monotonic() + 30
    while not all_scheduled_and_idle(ids, stack.broker, in_broker=False):
        if time.monotonic() > deadline:
            pytest.fail(f"the jobs' polls were never all kept by the worker\n{stack.logs()}")
        time.sleep(0.1)
    assert not any(m.task == "videos.tasks.poll" for m in stack.broker.messages())  # none in the broker
    crashed.kill()
    beat.kill()
    stack.clock.advance(15.0)
    worker = stack.worker(takes_over=True)
    stack.beat()
    jobs = wait_for_jobs(stack, ids, lambda job: job.is_final, seconds=90)

    assert [job.status for job in jobs] == [Status.SUCCEEDED] * 20, [(job.pk, job.message) for job in jobs]
    assert simulator.creates == 20
    assert polls_too_close(simulator) == {}
    assert "had lost their task message" in worker.log.read_text(errors="replace")


def test_two_workers_share_fifty_jobs_without_a_double_create_or_a_fast_poll(user, stack, settings):
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 100
    simulator = stack.start(task_seconds=7.0)
    workers = [stack.worker(), stack.worker()]
    for worker in workers:
        worker.wait_until_ready(seconds=30)  # so that neither has the queue to itself at first
    prompts = [f"Shared scene {i}" for i in range(50)]
    ids = [creation.generation_create(owner=user, request=VideoRequest(prompt=prompt)).pk for prompt in prompts]
    # Every task is asked about at least twice: once before it ends, once after. A poll counts once
    # it has finished (its answer noted, the next one scheduled): poll_count alone goes up as a poll
    # is claimed, and its question could then reach Runway after the clock has moved, as the second.
    wait_for_jobs(stack, ids, lambda job: job.poll_count >= 1 and job.next_check_at is not None, seconds=60)
    stack.clock.advance(7.0)

    jobs = wait_for_jobs(stack, ids, lambda job: job.is_final, seconds=60)

    assert [job.status for job in jobs] == [Status.SUCCEEDED] * 50, [(job.pk, job.message) for job in jobs]
    assert simulator.creates == 50
    assert len({job.runway_task_id for job in jobs}) == 50
    posts = Counter(r.json["promptText"] for r in list(simulator.requests) if r.method == "POST")
    assert posts == dict.fromkeys(prompts, 1)
    times = get_times(simulator)
    assert set(times) == {job.runway_task_id for job in jobs}
    assert all(len(at) >= 2 for at in times.values()), "the gaps below were not tested"
    assert polls_too_close(simulator) == {}
    for worker in workers:
        log = worker.log.read_text(errors="replace")
        assert re.search(r"Runway (POST|GET) /v1/\S+ -> 200", log), worker.tail()  # both did steps


def test_two_machines_share_the_jobs_and_one_killed_loses_nothing(user, stack, settings, tmp_path):
    """Two workers as on two machines: one bucket for the media, no disk in common, one broker and
    one database. Both take jobs; one is killed (-9) while it holds its jobs' polls, and the other,
    with beat's sweep, finishes every one of them: no job lost, none made twice at Runway, no task
    polled faster than Runway allows, every file in the bucket and none on either machine's disk."""
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 100
    simulator = stack.start(task_seconds=15.0)
    disks = [tmp_path / "machine-a", tmp_path / "machine-b"]
    with s3_bucket(log_dir=LOG_DIR) as bucket:
        workers = []
        for disk in disks:
            disk.mkdir()
            workers.append(stack.worker(MEDIA_ROOT=str(disk), **bucket.env))
        for worker in workers:
            worker.wait_until_ready(seconds=30)  # so that neither has the queue to itself at first
        stack.beat()
        ids = [
            creation.generation_create(owner=user, request=VideoRequest(prompt=f"Machine {i}")).pk for i in range(30)
        ]
        deadline = time.monotonic() + 60
        while not all_scheduled_and_idle(ids, stack.broker, in_broker=False):
            if time.monotonic() > deadline:
                pytest.fail(f"the jobs were never all made and held\n{stack.logs()}")
            time.sleep(0.1)
        shares = [worker.log.read_text(errors="replace").count(" submitted as Runway task ") for worker in workers]
        assert sum(shares) == 30 and min(shares) > 0, shares  # both machines took jobs
        workers[0].kill()
        stack.clock.advance(15.0)
        jobs = wait_for_jobs(stack, ids, lambda job: job.is_final and not job.poster_pending, seconds=120)
        stored = set(bucket.object_keys())

    assert [job.status for job in jobs] == [Status.SUCCEEDED] * 30, [(job.pk, job.message) for job in jobs]
    assert simulator.creates == 30
    assert polls_too_close(simulator) == {}
    assert {name for job in jobs for name in (job.video_file.name, job.poster.name)} <= stored
    assert [path for disk in disks for path in disk.rglob("*") if path.is_file()] == []
    assert "had lost their task message" in workers[1].log.read_text(errors="replace")  # the sweep brought them back


def test_the_sweep_starts_a_job_whose_message_was_lost_before_any_worker_saw_it(user, stack):
    simulator = stack.start(task_seconds=0.0)  # done as soon as it is made: this test is about the start
    worker = stack.worker()
    stack.beat()
    job = creation.generation_create(owner=user, request=VideoRequest(prompt="A message that never was"), enqueue=False)
    # Its message was lost a minute ago, so the sweep's first round finds it overdue.
    VideoGeneration.objects.filter(pk=job.pk).update(next_check_at=timezone.now() - timedelta(minutes=1))
    assert broker_messages() == []

    (job,) = wait_for_jobs(stack, [job.pk], lambda job: job.is_final, seconds=40)

    assert job.status == Status.SUCCEEDED, job.message or job.last_error
    assert simulator.creates == 1
    assert "Sweep: 1 job(s) had lost their task message" in worker.log.read_text(errors="replace")


def deletes(simulator: RunwaySimulator) -> list[str]:
    return [r.path for r in list(simulator.requests) if r.method == "DELETE"]


def test_a_cancel_and_a_delete_cut_off_by_a_killed_worker_are_finished_by_the_next(user, stack_on_each_broker):
    stack = stack_on_each_broker
    simulator = stack.start(task_seconds=10.0)
    crashed = stack.worker()
    beat = stack.beat()
    with stack.broker.sending():
        running = creation.generation_create(owner=user, request=VideoRequest(prompt="[sim:never] A long take")).pk
        failing = creation.generation_create(owner=user, request=VideoRequest(prompt="[sim:fail] A doomed take")).pk
    wait_for_jobs(stack, [running, failing], lambda job: bool(job.runway_task_id), seconds=30)
    stack.clock.advance(10.0)
    wait_for_jobs(stack, [failing], lambda job: job.status == Status.FAILED, seconds=30)
    # A poll has seen the running task RUNNING: the cancel then deletes it at once. Before that the
    # cancel first asks Runway how the task is (a refund depends on it), and with Runway a minute away
    # that question, not the DELETE, would be out when the worker dies.
    wait_for_jobs(stack, [running], lambda job: job.runway_status == RUNNING, seconds=30)

    # Runway now takes a minute to answer: the worker's DELETEs are on their way when it dies.
    simulator.set_network(latency=60.0)
    with stack.broker.sending():
        actions.generation_cancel(generation_id=running)
        actions.generation_delete(generation_id=failing)
    # Both DELETEs have reached Runway (and wait out their latency); the waiters alone would not
    # say so: the worker's poll of the running job, every POLL_INTERVAL real seconds, waits too.
    wait_until(
        lambda: len(deletes(simulator)) >= 2,
        seconds=30,
        stack=stack,
        what="the two DELETEs",
        detail=lambda: [(r.method, r.path) for r in list(simulator.requests)],
    )
    stack.clock.wait_for_waiters(2, timeout=30)
    deletes_sent = deletes(simulator)
    crashed.kill()
    beat.kill()
    stack.broker.wait_until_unconsumed()
    stack.broker.forget()
    # Their steps were claimed and never finished; the sweep takes them back STEP_LOST_AFTER later.
    VideoGeneration.objects.filter(pk__in=[running, failing]).update(updated_at=F("updated_at") - STEP_LOST_AFTER)
    simulator.set_network(latency=0.0)
    stack.clock.advance(60.0)  # the dead worker's answers go out to nobody
    assert VideoGeneration.objects.get(pk=running).status_label == "Cancelling…"

    worker = stack.worker()
    stack.beat()
    (cancelled,) = wait_for_jobs(stack, [running], lambda job: not job.cancel_pending, seconds=60)
    deadline = time.monotonic() + 30
    while VideoGeneration.objects.filter(pk=failing).exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the deleted job's row is still there\n{stack.logs()}")
        time.sleep(0.2)

    assert len(deletes_sent) == 2
    assert cancelled.status_label == "Cancelled"
    assert simulator.creates == 2
    # Each task was deleted once by the dead worker's requests; the next worker's found them gone.
    assert sorted(deletes(simulator)) == sorted(deletes_sent * 2)
    assert "had lost their task message" in worker.log.read_text(errors="replace")
