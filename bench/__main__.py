"""`make bench`: run the benchmarks of docs/PERFORMANCE.md and print their report.

The Runway simulator runs on loopback in this process; a Celery worker and gunicorn run as
production would run them (DEBUG off), against a database made for the run and dropped after it
(`bench_runway` on the PostgreSQL server of BENCH_DATABASE_URL) and a queue of the run's own on
the Redis server of BENCH_BROKER_URL. `--small` runs a quick version of each.
"""

import argparse
import json
import logging
import math
import os
import platform
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import django
import redis

from bench import LOG_DIR
from runway_simulator import RunwaySimulator

if TYPE_CHECKING:  # Django is set up only once the settings are: these are imported after
    from django.contrib.auth.models import User

    from bench import scenarios

# The headline figures before issue 24 (committed), and this machine's last full run's (saved by it).
BEFORE = Path(__file__).resolve().parent / "before.json"
LAST = LOG_DIR / "last.json"
FULL = {
    "jobs": 1000,
    "task_seconds": 30.0,
    "baseline_finish": 6,
    "browsers": 200,
    "browser_seconds": 30.0,
    "post_clients": 10,
    "post_seconds": 10.0,
    "create_rounds": 200,
    "kill_after": 15.0,
}
SMALL = {
    "jobs": 20,
    "task_seconds": 3.0,
    "baseline_finish": 2,
    "browsers": 10,
    "browser_seconds": 5.0,
    "post_clients": 2,
    "post_seconds": 3.0,
    "create_rounds": 10,
    "kill_after": 2.0,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick version of each benchmark")
    parser.add_argument(
        "--compare", action="store_true", help="also the designs before: prefork and the blocking baseline (+5 min)"
    )
    for name, value in FULL.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=None)
    parser.add_argument("--poll-interval", type=int, default=5)
    parser.add_argument(
        "--latency", type=float, default=0.25, help="seconds per Runway answer in the field runs (%(default)s)"
    )
    parser.add_argument(
        "--download-latency", type=float, default=0.25, help="seconds to a video's first byte there (%(default)s)"
    )
    parser.add_argument(
        "--download-rate", type=float, default=2e6, help="bytes per second of a video there (%(default)g)"
    )
    parser.add_argument(
        "--slow-latency", type=float, default=6.0, help="seconds per Runway answer in benchmark 5 (%(default)s)"
    )
    parser.add_argument("--gunicorn-workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://127.0.0.1:5432/postgres")
    )
    parser.add_argument("--broker-url", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    args.started = time.monotonic()
    args.reference_loop = _reference_loop_seconds()  # again at the end: how much the machine's speed moved
    for name, value in (SMALL if args.small else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    media = tempfile.mkdtemp(prefix="runway-bench-media-")
    with RunwaySimulator(task_seconds=args.task_seconds, daily_limit=10**9) as simulator:
        _configure(args, simulator.base_url, media)
        django.setup()
        # The worker and gunicorn log to their files under var/bench/; this process only reports.
        logging.getLogger("videos").setLevel(logging.WARNING)
        from django.db import connection
        from django.test.utils import setup_databases, teardown_databases

        connection.settings_dict["TEST"]["NAME"] = (
            str(LOG_DIR / "bench.sqlite3") if connection.vendor == "sqlite" else "bench_runway"
        )
        databases = setup_databases(verbosity=0, interactive=False)
        try:
            report = _run(args, simulator)
        finally:
            teardown_databases(databases, verbosity=0)
            shutil.rmtree(media, ignore_errors=True)  # a thousand videos and posters
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    saved = LOG_DIR / f"report-{time.strftime('%Y%m%d-%H%M%S')}.md"
    saved.write_text(report)
    print(report)
    print(f"(saved to {saved.relative_to(Path.cwd()) if saved.is_relative_to(Path.cwd()) else saved})")


def _configure(args: argparse.Namespace, simulator_url: str, media: str) -> None:
    """Production's settings, read from the environment by this process and the ones it starts."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "runway_project.settings",
            "DEBUG": "False",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": args.database_url,
            "CELERY_BROKER_URL": args.broker_url,
            "CELERY_QUEUE": f"bench-{secrets.token_hex(4)}",
            "MEDIA_ROOT": media,
            "RUNWAY_API_KEY": "key_" + secrets.token_hex(64),
            "RUNWAY_API_BASE_URL": simulator_url,
            "RUNWAY_POLL_INTERVAL": str(args.poll_interval),
            "RUNWAY_MAX_ACTIVE_PER_USER": str(10**9),
            "RUNWAY_DAILY_LIMIT_PER_USER": str(10**9),
            "RUNWAY_MONTHLY_BUDGET_PER_USER": str(10**9),
            "LOG_LEVEL": "INFO",
        }
    )
    # Production's pages name hashed static files, which only `collectstatic` makes: benchmark 5
    # renders them in this process, and gunicorn in the others, from the same folder.
    from harness.stack import collected_static

    os.environ["STATIC_ROOT"] = collected_static(dict(os.environ))


def _run(args: argparse.Namespace, simulator: RunwaySimulator) -> str:
    from django.conf import settings
    from django.contrib.auth.models import User

    from bench import report, scenarios

    setup = scenarios.Setup.here(simulator, poll_interval=args.poll_interval, gunicorn_workers=args.gunicorn_workers)
    owners = User.objects.bulk_create(
        User(username=f"bench{n}") for n in range(max(args.browsers, args.post_clients, 1))
    )
    field = scenarios.Network(f"{args.latency * 1000:g} ms", args.latency, args.download_latency, args.download_rate)
    flights = _flights(args, setup, owners, field)
    baselines = _designs_before(args, setup, owners, field, flights) if args.compare else []
    loads = []
    for network in (field, scenarios.LOOPBACK):
        _say(f"3. status of each page's jobs: {args.browsers} browsers for {args.browser_seconds:g} s, {network.name}")
        loads.append(
            scenarios.status_under_load(
                setup,
                owners=owners,
                jobs=args.jobs,
                browsers=args.browsers,
                seconds=args.browser_seconds,
                interval=2.0,
                network=network,
            )
        )
    _say(f"4. submissions: {args.post_clients} clients for {args.post_seconds:g} s")
    posts = scenarios.submissions(setup, owners=owners, clients=args.post_clients, seconds=args.post_seconds)
    _say(f"5. every page and action with Runway answering in {args.slow_latency:g} s")
    slow = scenarios.slow_runway(setup, owner=owners[0], latency=args.slow_latency)
    _say(f"6. what making a job costs: {args.create_rounds} of each")
    creates = scenarios.create_cost(owners[0], rounds=args.create_rounds)
    results = report.Results(
        task_seconds=args.task_seconds,
        poll_interval=args.poll_interval,
        worker_concurrency=settings.CELERY_WORKER_CONCURRENCY,
        in_flight=flights,
        baselines=baselines,
        status=loads,
        submissions=posts,
        slow_runway=slow,
        creates=creates,
        seconds=time.monotonic() - args.started,
    )
    before = json.loads(BEFORE.read_text())["figures"]
    last = json.loads(LAST.read_text()) if LAST.exists() else {}
    command = shlex.join(["python", "-m", "bench", *sys.argv[1:]])
    text = report.render(results, machine=_machine(args.reference_loop), command=command, before=before, last=last)
    if not args.small:  # a quick run's figures are not comparable to a full run's
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        LAST.write_text(json.dumps(report.headlines(results), indent=2))
    return text


def _flights(
    args: argparse.Namespace, setup: "scenarios.Setup", owners: list["User"], field: "scenarios.Network"
) -> list["scenarios.InFlight"]:
    """Benchmark 1: the README's worker in the field and on loopback; then, with the media in an S3
    bucket (moto's server), one worker, two sharing the bucket and no disk as on two machines, and
    the same two with one of them killed."""
    from bench import scenarios
    from harness.s3 import s3_bucket

    timeout = 10 * (args.task_seconds + args.poll_interval) + 120
    flights = []

    def run(design: "scenarios.Design", network: "scenarios.Network") -> None:
        _say(f"1-2. {args.jobs} jobs in flight: {design.name}, {network.name}")
        flights.append(
            scenarios.in_flight(setup, owners=owners, jobs=args.jobs, timeout=timeout, design=design, network=network)
        )

    run(scenarios.OURS, field)
    run(scenarios.OURS, scenarios.LOOPBACK)
    with s3_bucket(log_dir=LOG_DIR) as bucket:
        run(scenarios.Design("1 worker, S3 bucket", env=bucket.env), field)  # what 2 workers are held against
        run(scenarios.Design("2 workers, S3 bucket", env=bucket.env, workers=2), field)
        killed = scenarios.Design(
            f"2 workers, S3 bucket, one killed at {args.kill_after:g} s",
            env=bucket.env,
            workers=2,
            kill_one_after=args.kill_after,
        )
        run(killed, field)
    return flights


def _designs_before(
    args: argparse.Namespace,
    setup: "scenarios.Setup",
    owners: list["User"],
    field: "scenarios.Network",
    flights: list["scenarios.InFlight"],
) -> list["scenarios.Baseline"]:
    """With --compare: the deployment before (prefork, two processes) and the blocking baseline of
    the original guide, at each distance. The prefork worker in the field is followed for two
    cycles and its time projected; the baseline until a few jobs end."""
    from bench import scenarios

    cycle = args.task_seconds + args.poll_interval
    baselines = []
    for network in (field, scenarios.LOOPBACK):
        _say(f"1-2. {args.jobs} jobs in flight: {scenarios.PREFORK.name}, {network.name}")
        flights.append(
            scenarios.in_flight(
                setup,
                owners=owners,
                jobs=args.jobs,
                timeout=10 * cycle + 120,
                design=scenarios.PREFORK,
                network=network,
                give_up_after=2 * cycle + 30 if network is field else None,
            )
        )
        _say(f"     blocking baseline, {network.name}, until {args.baseline_finish} end")
        rounds = -(-args.baseline_finish // 2)
        baselines.append(
            scenarios.blocking_baseline(
                setup,
                owners=owners,
                jobs=args.jobs,
                finish=args.baseline_finish,
                timeout=3 * rounds * cycle + 120,
                network=network,
            )
        )
    return baselines


def _machine(reference_loop_at_start: float) -> list[str]:
    from django.conf import settings
    from django.db import connection

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        database = str(cursor.fetchone()[0]).split(" on ")[0]
    redis_version = redis.Redis.from_url(settings.CELERY_BROKER_URL).info("server")["redis_version"]
    return [
        f"Machine: {os.cpu_count()} cores ({cpu}), {memory_kib / 1024 / 1024:.0f} GiB RAM, {platform.platform()}",
        f"Python {platform.python_version()}, {database}, Redis {redis_version}, Django {django.get_version()}",
        f"Run at {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"This machine's Python: {reference_loop_at_start:.2f} s of CPU at the start, {_reference_loop_seconds():.2f} s"
        f" at the end, for {REFERENCE_LOOP:,} additions in a loop (the best of 3 each): machines of one kind, and one"
        " machine within an hour, have differed by half; set CPU figures side by side with it",
    ]


REFERENCE_LOOP = 5_000_000


def _reference_loop_seconds() -> float:
    """The CPU time of a fixed piece of pure Python, the best of three: how fast this machine is today."""
    best = math.inf
    for _ in range(3):
        started, total = time.process_time(), 0
        for number in range(REFERENCE_LOOP):
            total += number
        best = min(best, time.process_time() - started)
    return best


def _say(text: str) -> None:
    print(f"== {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
