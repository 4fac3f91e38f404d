"""`python -m bench.flight`: one in-flight run of benchmark 1 (the README's worker, Runway far away),
for the figures of issue 24 without the whole of `make bench`.

    .venv/bin/python -m bench.flight --jobs 300              # 250 ms per Runway call, 30 s jobs, 5 s polls
    .venv/bin/python -m bench.flight --jobs 1000 --latency 0.1

Prints the worker's CPU per job (its own threads, and ffmpeg's apart), when the jobs showed done
and their posters were made, creates and polls per job, the lag from Runway finishing to the page
showing it, and the worker's database connections and memory. Like `make bench`, it needs
PostgreSQL and Redis on their local ports (BENCH_DATABASE_URL, BENCH_BROKER_URL) and makes a
database of its own, dropped at the end.
"""

import argparse
import contextlib
import logging
import os
import shutil
import statistics
import tempfile
from collections.abc import Iterator

import django

from bench import LOG_DIR
from harness.s3 import s3_bucket
from runway_simulator import RunwaySimulator


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flight", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--task-seconds", type=float, default=30.0)
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per Runway answer (%(default)s)")
    parser.add_argument("--poll-interval", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="worker processes, as on that many machines")
    parser.add_argument("--kill-after", type=float, default=None, help="kill one worker (-9) this long after")
    parser.add_argument("--s3", action="store_true", help="media in a bucket on moto's S3 server, not on disk")
    args = parse(parser)
    with prepared(args, "bench_flight") as simulator:
        _run(args, simulator)


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The arguments of a single benchmark's command, with where its database and broker are."""
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://127.0.0.1:5432/postgres")
    )
    parser.add_argument("--broker-url", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14"))
    return parser.parse_args()


@contextlib.contextmanager
def prepared(args: argparse.Namespace, database: str) -> Iterator[RunwaySimulator]:
    """The simulator, production's settings for this process and the ones it starts, and a database
    of the run's own (`database`, dropped at the end), as `make bench` prepares them."""
    from bench.__main__ import _configure

    media = tempfile.mkdtemp(prefix="runway-bench-one-")
    with RunwaySimulator(task_seconds=args.task_seconds, daily_limit=10**9) as simulator:
        _configure(args, simulator.base_url, media)
        django.setup()
        logging.getLogger("videos").setLevel(logging.WARNING)
        from django.db import connection
        from django.test.utils import setup_databases, teardown_databases

        connection.settings_dict["TEST"]["NAME"] = database
        databases = setup_databases(verbosity=0, interactive=False)
        try:
            yield simulator
        finally:
            teardown_databases(databases, verbosity=0)
            shutil.rmtree(media, ignore_errors=True)


def _run(args: argparse.Namespace, simulator: RunwaySimulator) -> None:
    from django.contrib.auth.models import User

    from bench import scenarios

    setup = scenarios.Setup.here(simulator, poll_interval=args.poll_interval, gunicorn_workers=1)
    owners = User.objects.bulk_create(User(username=f"flight{n}") for n in range(10))
    network = scenarios.Network(f"{args.latency * 1000:g} ms", args.latency, args.latency, 2e6)
    with contextlib.ExitStack() as stack:
        media = stack.enter_context(s3_bucket(log_dir=LOG_DIR)).env if args.s3 else {}
        design = scenarios.Design(
            f"{args.workers} worker(s)", env=media, workers=args.workers, kill_one_after=args.kill_after
        )
        flight = scenarios.in_flight(setup, owners=owners, jobs=args.jobs, timeout=600, network=network, design=design)
    lags = sorted(flight.lags)
    cpu = flight.worker_cpu
    print(f"{flight.jobs} jobs, {args.latency * 1000:g} ms per Runway call: {flight.statuses}")
    if cpu is not None and flight.cpu_ms_per_job is not None:
        print(f"worker CPU per job: {flight.cpu_ms_per_job:.1f} ms, ffmpeg's {cpu.helpers * 1000 / flight.jobs:.1f} ms")
    posters = f"{flight.posters_seconds:.1f} s" if flight.posters_seconds is not None else "not all"
    print(f"all done {flight.all_done_seconds:.1f} s after the last submission; posters {posters}")
    print(f"last create {flight.last_create_seconds:.1f} s after it")
    calls = flight.calls
    print(
        f"creates per job {calls.creates_per_job}; polls per job max {max(calls.polls)}, "
        f"mean {statistics.mean(calls.polls):.2f}; shortest gap {calls.shortest_gap:.2f} s"
    )
    print(f"lag p50 {scenarios.percentile(lags, 0.5):.2f} s, p99 {scenarios.percentile(lags, 0.99):.2f} s")
    noticed, asked = _noticed(simulator, flight.first_request)
    for what, spans in (("the poll that saw the end came after it", noticed), ("then the download was asked", asked)):
        spans = sorted(spans)
        print(f"  {what}: p50 {scenarios.percentile(spans, 0.5):.2f} s, p99 {scenarios.percentile(spans, 0.99):.2f} s")
    memory = ", ".join(f"{peak.rss / 2**20:.0f} MB" for peak in flight.worker_peaks)
    print(f"database connections {flight.database_connections}; memory {memory}")
    print(f"creates by each worker {flight.shares}; jobs the sweep put back to work {flight.swept}")


def _noticed(simulator: RunwaySimulator, first_request: int) -> tuple[list[float], list[float]]:
    """Per task, on the simulator's clock: from its end to the poll that saw it (its last), and from
    that poll to the download of its video (the rest of the lag is the worker's storing it)."""
    last_poll: dict[str, float] = {}
    download: dict[str, float] = {}
    for request in simulator.requests[first_request:]:
        if request.method == "GET" and request.path.startswith("/v1/tasks/"):
            last_poll[request.path.removeprefix("/v1/tasks/")] = request.at
        elif request.method == "GET" and request.path.startswith("/_sim/outputs/"):
            task_id = request.path.split("?")[0].removeprefix("/_sim/outputs/").removesuffix(".mp4")
            download.setdefault(task_id, request.at)
    noticed, asked = [], []
    for task_id, at in last_poll.items():
        ends_at = simulator.ends_at(task_id)
        if ends_at is not None:
            noticed.append(at - ends_at)
        if task_id in download:
            asked.append(download[task_id] - at)
    return noticed, asked


if __name__ == "__main__":
    main()
