"""`python -m bench.recovery`: how long a worker takes to move jobs again after its broker fails.

Two failures, each `--runs` times, with a Redis of the run's own:
- stranded: a proxy in front of Redis leaves every open connection silent (as a managed Redis
  failing over does: no FIN, no reset) while new connections work;
- killed: redis-server is killed with -9 and started again, empty, on the same port, `--down`
  seconds later (a restart, or a failover to an empty replica).

Each run starts a worker and beat, makes `--jobs` jobs and waits until they are made at Runway,
breaks the broker, then makes two more (their messages are lost with it). "Moving again" is the time
from the failure to Runway receiving the first of the late jobs' creates: a message went through the
broker again and its step ran. "All done" is the time until every job has succeeded.
"""

import argparse
import logging
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import django

from bench import LOG_DIR
from harness.faults import RedisServer, TcpProxy
from runway_simulator import ManualClock, RunwaySimulator

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--failure", choices=["stranded", "killed", "both"], default="both")
    parser.add_argument("--down", type=float, default=10.0, help="seconds a killed Redis stays down (%(default)s)")
    parser.add_argument(
        "--latency", type=float, default=0.25, help="seconds per Runway answer, as across the internet (%(default)s)"
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://127.0.0.1:5432/postgres")
    )
    args = parser.parse_args()
    failures = ["stranded", "killed"] if args.failure == "both" else [args.failure]
    # Loopback: the videos are made when the run moves the clock. With latency, answers must come in
    # real time, so the simulator keeps the real clock and a video takes 10 real seconds.
    clock = ManualClock() if not args.latency else None
    media = tempfile.mkdtemp(prefix="runway-recovery-media-")
    with RunwaySimulator(task_seconds=10.0, daily_limit=10**9, clock=clock) as simulator:
        simulator.set_network(latency=args.latency)
        print(f"Runway {args.latency * 1000:g} ms away")
        _configure(args.database_url, simulator.base_url, media)
        django.setup()
        logging.getLogger("videos").setLevel(logging.WARNING)  # the worker and beat log to var/bench/
        from django.db import connection
        from django.test.utils import setup_databases, teardown_databases

        connection.settings_dict["TEST"]["NAME"] = "bench_recovery"
        databases = setup_databases(verbosity=0, interactive=False)
        try:
            results = {
                failure: [_run(failure, simulator, clock, jobs=args.jobs, down=args.down) for _ in range(args.runs)]
                for failure in failures
            }
        finally:
            teardown_databases(databases, verbosity=0)
            shutil.rmtree(media, ignore_errors=True)
    for failure, runs in results.items():
        moving = [run[0] for run in runs]
        done = [run[1] for run in runs]
        what = f"killed, {args.down:g} s down" if failure == "killed" else failure
        print(f"{what}: moving again after {_figures(moving)}; all {args.jobs + 2} jobs done after {_figures(done)}")


def _figures(values: list[float]) -> str:
    listed = ", ".join(f"{value:.1f}" for value in values)
    return f"{listed} s (median {statistics.median(values):.1f} s)"


def _configure(database_url: str, simulator_url: str, media: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "runway_project.settings",
            "DEBUG": "False",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": media,
            "RUNWAY_API_KEY": "key_" + secrets.token_hex(64),
            "RUNWAY_API_BASE_URL": simulator_url,
            "RUNWAY_POLL_INTERVAL": "5",
            "RUNWAY_SWEEP_INTERVAL": "5",
            "RUNWAY_MAX_ACTIVE_PER_USER": "1000",
            "CELERY_QUEUE": f"recovery-{secrets.token_hex(4)}",  # each run's Redis is new, and empty
            "LOG_LEVEL": "INFO",
        }
    )


def _run(
    failure: str, simulator: RunwaySimulator, clock: ManualClock | None, *, jobs: int, down: float
) -> tuple[float, float]:
    from django.contrib.auth.models import User

    from harness.faults import celery_broker
    from harness.stack import CeleryBeat, CeleryWorker, database_url

    server = RedisServer(log_dir=LOG_DIR).start()
    proxy = TcpProxy(server.port)
    url = f"redis://127.0.0.1:{proxy.port}/0"
    env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": url}
    worker, beat = CeleryWorker(env, log_dir=LOG_DIR), CeleryBeat(env, log_dir=LOG_DIR)
    try:
        worker.wait_until_ready()
        owner = User.objects.create(username=f"recovery-{secrets.token_hex(4)}")
        with celery_broker(url):
            creates = simulator.creates
            ids = _create(owner, jobs)
            _wait(lambda: simulator.creates >= creates + jobs, 60, "the first jobs' creates")
            failed = time.monotonic()
            if failure == "stranded":
                proxy.strand()
            else:
                server.kill()
                time.sleep(down)  # a benchmark's stand-in for the time a restart takes
                server.start()
            ids += _create(owner, 2)
            _wait(lambda: simulator.creates > creates + jobs, 180, "a late job's create")
            moving = time.monotonic() - failed
            _wait(lambda: simulator.creates >= creates + jobs + 2, 60, "the late jobs' creates")
            if clock is not None:
                clock.advance(10.0)
            _wait(lambda: _all_succeeded(ids), 180, "every job")
            return moving, time.monotonic() - failed
    finally:
        for process in (worker, beat):
            process.kill()
        proxy.close()
        server.close()


def _create(owner: "User", count: int) -> list[int]:
    from videos.catalog import VideoRequest
    from videos.services import creation

    return [
        creation.generation_create(owner=owner, request=VideoRequest(prompt=f"Recovery scene {n}")).pk
        for n in range(count)
    ]


def _all_succeeded(ids: list[int]) -> bool:
    from videos.models import Status, VideoGeneration

    return VideoGeneration.objects.filter(pk__in=ids, status=Status.SUCCEEDED).count() == len(ids)


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not happen within {seconds} s (logs in {LOG_DIR})")
        time.sleep(0.1)


if __name__ == "__main__":
    main()
