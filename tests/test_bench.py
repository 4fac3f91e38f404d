"""`make bench`'s five benchmarks, small, as a smoke test: each runs end to end through the real
worker, gunicorn, Redis and the simulator, and counts right. No timing is asserted here; the
figures are for docs/PERFORMANCE.md."""

from dataclasses import replace

import pytest
from django.conf import settings

from bench import report, scenarios
from harness.s3 import s3_bucket
from harness.stack import database_url
from runway_simulator import RunwaySimulator
from tests.stack import LOG_DIR, stack_environment
from videos.models import VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

UNLIMITED = 10**9


@pytest.fixture
def setup(settings):
    # Lifted here for the jobs this process makes, and for gunicorn's through the environment.
    settings.RUNWAY_MAX_ACTIVE_PER_USER = settings.RUNWAY_DAILY_LIMIT_PER_USER = UNLIMITED
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = UNLIMITED
    with RunwaySimulator(task_seconds=2, daily_limit=UNLIMITED) as simulator:
        env = stack_environment(simulator, max_wait=300, db_url=database_url())
        env.update(
            RUNWAY_MAX_ACTIVE_PER_USER=str(UNLIMITED),
            RUNWAY_DAILY_LIMIT_PER_USER=str(UNLIMITED),
            RUNWAY_MONTHLY_BUDGET_PER_USER=str(UNLIMITED),
        )
        yield scenarios.Setup(
            simulator=simulator,
            env=env,
            broker_url=settings.CELERY_BROKER_URL,
            queue=settings.CELERY_TASK_DEFAULT_QUEUE,
            poll_interval=int(env["RUNWAY_POLL_INTERVAL"]),
            gunicorn_workers=2,
        )


@pytest.fixture
def owners(django_user_model):
    return [django_user_model.objects.create(username=f"bench{n}") for n in range(4)]


FIELD = scenarios.Network("field", latency=0.05, download_latency=0.05, download_rate=1e6)


def test_the_benchmarks_run_small_and_count_right(setup, owners):
    flight = scenarios.in_flight(setup, owners=owners, jobs=6, timeout=120, network=FIELD)
    assert flight.statuses == {"succeeded": 6}
    assert flight.finished
    assert flight.calls.creates_per_job == {1: 6}
    assert flight.calls.shortest_gap >= setup.poll_interval
    assert flight.calls.downloads == 6
    assert len(flight.lags) == 6
    # The worker as deployed: one process, whose pool starts threads as work comes (up to
    # CELERY_WORKER_CONCURRENCY), each step on one of them.
    assert flight.worker_peak.processes == 1
    assert flight.worker_peak.threads > 2
    # On PostgreSQL its threads share the pool's connections (DATABASE_POOL_SIZE); its HTTP threads hold none.
    budget, _ = report.connection_budget(settings.CELERY_WORKER_CONCURRENCY)
    assert 1 <= flight.database_connections <= budget or connection_is_sqlite()
    assert flight.worker_cpu is not None and flight.worker_cpu.own > 0
    assert flight.cpu_ms_per_job is not None and flight.cpu_ms_per_job > 0
    made = VideoGeneration.objects.filter(prompt__startswith="in-flight")
    assert all(job.video_file and job.poster for job in made)
    assert setup.simulator.options.latency == 0  # the network is loopback again after the run

    # Two workers, as on two machines sharing one bucket and no disk: both take jobs, none is made twice.
    with s3_bucket(log_dir=LOG_DIR) as bucket:
        two = scenarios.in_flight(
            setup, owners=owners, jobs=8, timeout=120, network=FIELD,
            design=scenarios.Design("two", env=bucket.env, workers=2),
        )  # fmt: skip
        stored = bucket.object_keys()
    assert two.statuses == {"succeeded": 8}
    assert two.calls.creates_per_job == {1: 8}
    assert len(two.shares) == 2 and sum(two.shares) == 8
    assert len(two.worker_peaks) == 2
    kept = VideoGeneration.objects.filter(prompt__startswith="in-flight two")
    assert {name for job in kept for name in (job.video_file.name, job.poster.name)} <= set(stored)

    # The design before, followed for a moment only: what ended is counted, the rest dropped.
    before = scenarios.in_flight(
        setup, owners=owners, jobs=4, timeout=120, design=scenarios.PREFORK, network=FIELD, give_up_after=0
    )
    assert before.worker_peak.processes == 3  # the main process and its two pool processes
    assert before.ended < 4
    assert not before.finished

    baseline = scenarios.blocking_baseline(setup, owners=owners, jobs=4, finish=2, timeout=120)
    assert baseline.finished == 2
    assert VideoGeneration.objects.filter(prompt__startswith="blocking", status="succeeded").count() >= 2

    status = scenarios.status_under_load(setup, owners=owners, jobs=4, browsers=4, seconds=3, interval=1)
    assert status.errors == []  # every answer a 200 or a 304
    assert len(status.latencies) >= 4
    assert 0 <= status.not_modified < len(status.latencies)  # each browser's first answer is a 200
    assert status.queries == {"in progress, first in a minute": 4, "in progress": 3, "done": 3}

    posts = scenarios.submissions(setup, owners=owners, clients=2, seconds=2)
    assert posts.errors == []
    assert posts.created == len(posts.latencies) > 0  # every post answered 201 made one job

    creates = scenarios.create_cost(owners[0], rounds=3)
    assert creates.service_queries == 4  # as tests/test_create_cost.py counts them
    assert creates.form_queries == 6
    assert creates.service_cpu_ms > 0 and creates.form_cpu_ms > 0

    slow = scenarios.slow_runway(setup, owner=owners[0], latency=30.0)
    assert slow.runway_calls == 0
    assert len(slow.timings) == 12
    assert slow.slowest[1] < 30.0  # no page waited on Runway's answer

    text = report.render(
        report.Results(
            task_seconds=setup.simulator.options.task_seconds,
            poll_interval=setup.poll_interval,
            worker_concurrency=settings.CELERY_WORKER_CONCURRENCY,
            in_flight=[flight, two, before],
            baselines=[baseline],
            status=[status, replace(status, network="field")],
            submissions=posts,
            slow_runway=slow,
            creates=creates,
            seconds=60.0,
        ),
        machine=["this test's machine"],
        command="pytest tests/test_bench.py",
        before={"cpu": "150 ms"},
    )
    headings = ("Then and now", "In-flight scale", "Runway calls per job", "Status endpoint", "Submissions",
                "What making a job costs", "Targets")  # fmt: skip
    for heading in headings:
        assert heading in text
    assert "| Worker CPU per job, 1 worker (with ffmpeg's) | 150 ms | - |" in text
    assert "creates 6 job(s) × 1" in text
    assert "| 2 workers: exactly 1 create per job | 8 × 1 | yes |" in text
    assert settings.RUNWAY_API_KEY not in text


def connection_is_sqlite() -> bool:
    from django.db import connection

    return connection.vendor == "sqlite"
