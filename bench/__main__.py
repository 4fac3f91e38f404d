"""`make bench`: run the benchmarks of docs/PERFORMANCE.md and print their report.

The Runway simulator runs on loopback in this process; a Celery worker and gunicorn run as
production would run them (DEBUG off), against a database made for the run and dropped after it
(`bench_runway` on the PostgreSQL server of BENCH_DATABASE_URL) and a queue of the run's own on
the Redis server of BENCH_BROKER_URL. `--small` runs a quick version of each.
"""

import argparse
import logging
import os
import platform
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import django
import redis

from bench import LOG_DIR
from runway_simulator import RunwaySimulator

FULL = {
    "jobs": 1000,
    "task_seconds": 30.0,
    "baseline_finish": 6,
    "browsers": 200,
    "browser_seconds": 60.0,
    "post_clients": 10,
    "post_seconds": 20.0,
}
SMALL = {
    "jobs": 20,
    "task_seconds": 3.0,
    "baseline_finish": 2,
    "browsers": 10,
    "browser_seconds": 5.0,
    "post_clients": 2,
    "post_seconds": 3.0,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick version of each benchmark")
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
    from harness.stack import database_url

    env = {**os.environ, "DATABASE_URL": database_url()}
    setup = scenarios.Setup(
        simulator=simulator,
        env=env,
        broker_url=settings.CELERY_BROKER_URL,
        queue=settings.CELERY_TASK_DEFAULT_QUEUE,
        poll_interval=args.poll_interval,
        gunicorn_workers=args.gunicorn_workers,
    )
    owners = User.objects.bulk_create(
        User(username=f"bench{n}") for n in range(max(args.browsers, args.post_clients, 1))
    )
    field = scenarios.Network(f"{args.latency * 1000:g} ms", args.latency, args.download_latency, args.download_rate)
    cycle = args.task_seconds + args.poll_interval
    flights, baselines, loads = [], [], []
    for network in (scenarios.LOOPBACK, field):
        for design in (scenarios.OURS, scenarios.PREFORK):
            _say(f"1-2. {args.jobs} jobs in flight: {design.name}, {network.name}")
            # The design before, in the field, would take many minutes: it is followed for two cycles.
            give_up = 2 * cycle + 30 if design is scenarios.PREFORK and network is field else None
            flights.append(
                scenarios.in_flight(
                    setup,
                    owners=owners,
                    jobs=args.jobs,
                    timeout=10 * cycle + 120,
                    design=design,
                    network=network,
                    give_up_after=give_up,
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
        _say(f"3. status endpoint: {args.browsers} browsers for {args.browser_seconds:g} s, {network.name}")
        loads.append(
            scenarios.status_under_load(
                setup,
                owners=owners,
                jobs=args.jobs,
                browsers=args.browsers,
                seconds=args.browser_seconds,
                interval=2.0,
                timeout=10 * cycle + 120,
                network=network,
            )
        )
    _say(f"4. submissions: {args.post_clients} clients for {args.post_seconds:g} s")
    posts = scenarios.submissions(setup, owners=owners, clients=args.post_clients, seconds=args.post_seconds)
    _say(f"5. every page and action with Runway answering in {args.slow_latency:g} s")
    slow = scenarios.slow_runway(setup, owner=owners[0], latency=args.slow_latency)
    results = report.Results(
        task_seconds=args.task_seconds,
        poll_interval=args.poll_interval,
        worker_concurrency=settings.CELERY_WORKER_CONCURRENCY,
        in_flight=flights,
        baselines=baselines,
        status=loads,
        submissions=posts,
        slow_runway=slow,
    )
    return report.render(results, machine=_machine(), command=shlex.join(["python", "-m", "bench", *sys.argv[1:]]))


def _machine() -> list[str]:
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
    ]


def _say(text: str) -> None:
    print(f"== {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
