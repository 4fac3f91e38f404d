"""What each of a job's steps costs the worker, run one at a time in this process.

    python -m bench.step_cost     # PostgreSQL of BENCH_DATABASE_URL, Redis of BENCH_BROKER_URL

JOBS jobs are made (as a form post makes them, their messages not sent), then each step is run
for every job through videos.services.steps, as the worker's task runs it: the submit, a poll
that finds the task running, and a poll that finds it done (which stores the video and makes its
poster at once). For each: CPU milliseconds per job of the thread that runs it (median and 95th
percentile; the simulator, a thread of its own, is left out), database queries and broker
messages sent per job. The simulator answers on loopback in this process; the messages go to a
Redis queue of the run's own, which nothing consumes (dropped at the end).

What is left of a worker's CPU per job after these is Celery's: taking each message from the
broker, running it, acknowledging it.
"""

import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

import django
import redis

if TYPE_CHECKING:
    from runway_simulator import ManualClock

JOBS = 200


def configure(simulator_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "runway_project.settings",
            "DEBUG": "False",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://127.0.0.1:5432/postgres"),
            "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14"),
            "CELERY_QUEUE": f"bench-steps-{secrets.token_hex(4)}",
            "MEDIA_ROOT": tempfile.mkdtemp(prefix="runway-bench-steps-"),
            "RUNWAY_API_KEY": "key_" + secrets.token_hex(64),
            "RUNWAY_API_BASE_URL": simulator_url,
            "RUNWAY_MAX_ACTIVE_PER_USER": str(10**9),
            "RUNWAY_DAILY_LIMIT_PER_USER": str(10**9),
            "RUNWAY_MONTHLY_BUDGET_PER_USER": str(10**9),
            "LOG_LEVEL": "WARNING",
        }
    )


def measure(ids: list[int], step: Callable[[int], None]) -> dict[str, float]:
    """Per job: median and 95th percentile CPU milliseconds, queries and messages of `step`."""
    from celery.signals import before_task_publish
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sent: list[str] = []

    def count(sender: str, **_: object) -> None:
        sent.append(sender)

    before_task_publish.connect(count, weak=False)
    cpu, queries, messages = [], [], []
    try:
        for pk in ids:
            connection.queries_log.clear()
            sent.clear()
            with CaptureQueriesContext(connection) as captured:
                started = time.thread_time()
                step(pk)
                cpu.append((time.thread_time() - started) * 1000)
            queries.append(len(captured))
            messages.append(len(sent))
    finally:
        before_task_publish.disconnect(count)
    cpu.sort()
    return {
        "cpu_ms": statistics.median(cpu),
        "cpu_p95_ms": cpu[int(len(cpu) * 0.95)],
        "queries": statistics.mean(queries),
        "messages": statistics.mean(messages),
    }


def run_steps(jobs: int, clock: "ManualClock") -> dict[str, dict[str, float]]:
    from django.contrib.auth.models import User

    from videos.catalog import VideoRequest
    from videos.models import Step, VideoGeneration
    from videos.services import creation, steps

    owner = User.objects.create(username=f"steps-{secrets.token_hex(4)}")
    ids = [
        creation.generation_create(owner=owner, request=VideoRequest(prompt=f"steps {n}"), enqueue=False).pk
        for n in range(jobs)
    ]

    def counted(step: Step) -> Callable[[int], None]:
        # The step number is read before the clock starts: the task's message carries it.
        numbers = dict(VideoGeneration.objects.filter(pk__in=ids).values_list("pk", "step"))
        return lambda pk: steps.step_run_and_enqueue_next(step=step, generation_id=pk, number=numbers[pk])

    half = len(ids) // 2
    figures = {"submit": measure(ids, counted(Step.SUBMIT))}
    clock.advance(10)  # past PENDING
    figures["poll, still running"] = measure(ids, counted(Step.POLL))
    clock.advance(60)  # every task has succeeded at the simulator
    figures["poll, done (video and poster)"] = measure(ids[:half], counted(Step.POLL))
    figures.update(_finisher_and_poster(ids[half:]))
    left = VideoGeneration.objects.filter(pk__in=ids).exclude(status="succeeded").count()
    if left:
        raise SystemExit(f"{left} of {jobs} jobs did not succeed: the figures are not of the steps named")
    return figures


def _finisher_and_poster(ids: list[int]) -> dict[str, dict[str, float]]:
    """The end of a job as a worker's poller runs it: an HTTP thread asked Runway and downloaded
    the video (not counted), a finisher thread runs the poll step with both, and a poster thread
    makes the poster from the row that step wrote."""
    from dataclasses import asdict

    from videos.models import Step, VideoGeneration
    from videos.runway import get_client
    from videos.services import polling, steps
    from videos.services.bookkeeping import NextStep

    rows = {row.pk: row for row in VideoGeneration.objects.filter(pk__in=ids)}
    fetched: dict[int, tuple[dict[str, object], IO[bytes]]] = {}
    for pk, row in rows.items():
        state = get_client().get_task(row.runway_task_id)
        fetched[pk] = (asdict(state), steps.video_download(state.output[0]))
    posters: dict[int, tuple[NextStep, VideoGeneration | None]] = {}

    def keep_poster(next_step: NextStep, row: VideoGeneration | None = None) -> bool:
        posters[next_step.generation_id] = (next_step, row)
        return True

    held, polling.hold = polling.hold, keep_poster
    try:
        finisher = measure(
            ids,
            lambda pk: steps.step_run_and_enqueue_next(
                step=Step.POLL, generation_id=pk, number=rows[pk].step, answer=fetched[pk][0], video=fetched[pk][1]
            ),
        )
    finally:
        polling.hold = held
    poster = measure(ids, lambda pk: polling._run_poster_step(*posters[pk]))
    return {"poll, done, video fetched (finisher)": finisher, "poster, after it (poster thread)": poster}


def main() -> None:
    from runway_simulator import ManualClock, RunwaySimulator

    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else JOBS
    clock = ManualClock()  # the tasks run until it is moved on
    with RunwaySimulator(task_seconds=30.0, daily_limit=10**9, clock=clock) as simulator:
        configure(simulator.base_url)
        django.setup()
        from django.conf import settings
        from django.db import connection
        from django.test.utils import setup_databases, teardown_databases

        connection.settings_dict["TEST"]["NAME"] = "bench_steps"
        databases = setup_databases(verbosity=0, interactive=False)
        try:
            figures = run_steps(jobs, clock)
        finally:
            teardown_databases(databases, verbosity=0)
            client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
            for key in client.scan_iter(match=f"{settings.CELERY_TASK_DEFAULT_QUEUE}*"):
                client.delete(key)
    print(f"Each step of {jobs} jobs, one at a time, in this process (simulator on loopback):")
    for name, row in figures.items():
        print(
            f"  {name:32} {row['cpu_ms']:6.2f} ms CPU (p95 {row['cpu_p95_ms']:6.2f})"
            f"   {row['queries']:4.1f} queries   {row['messages']:3.1f} messages"
        )


if __name__ == "__main__":
    main()
