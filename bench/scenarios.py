"""The four benchmarks of docs/PERFORMANCE.md, each a function that runs one and returns its figures.

They run in a process where Django is set up against the database the worker and gunicorn use
(`make bench` makes one; the smoke test uses the test database), with the Runway simulator in a
thread of the same process. Child processes get `Setup.env`.
"""

import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypedDict

import redis
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bench import LOG_DIR
from bench.memory import Memory, memory_of, redis_used_memory
from harness.processes import Process
from harness.stack import CeleryWorker, Gunicorn
from runway_simulator import RunwaySimulator
from videos.catalog import VideoRequest
from videos.models import ACTIVE_STATUSES, Status, VideoGeneration
from videos.services import creation


class BenchError(RuntimeError):
    """A benchmark could not run (a process did not start, or work did not finish in time)."""


@dataclass(frozen=True)
class Setup:
    """What every benchmark shares: the simulator, the broker, and the environment of child processes."""

    simulator: RunwaySimulator
    env: dict[str, str]
    broker_url: str
    queue: str
    poll_interval: int
    worker_processes: int = 2
    gunicorn_workers: int = 5


def _worker(setup: Setup, *, include: str = "") -> CeleryWorker:
    worker = CeleryWorker(setup.env, log_dir=LOG_DIR, concurrency=setup.worker_processes, include=include)
    worker.wait_until_ready()
    return worker


def _gunicorn(setup: Setup) -> Gunicorn:
    server = Gunicorn(setup.env, log_dir=LOG_DIR, workers=setup.gunicorn_workers)
    server.wait_until_ready()
    return server


# --- 1. In-flight scale, and 2. Runway calls per job ---------------------------------------


@dataclass
class InFlight:
    jobs: int
    statuses: dict[str, int]
    submit_seconds: float  # from the first job created to the last handed to the broker
    all_done_seconds: float  # from the last submission to the last job shown done
    last_create_seconds: float  # from the last submission to the last create reaching the simulator
    posters_seconds: float  # from the last submission to the last poster frame made
    lags: list[float]  # per job: from the simulator finishing it to its record showing it
    worker_peak: Memory
    redis_before: int
    redis_peak: int
    calls: "Calls"

    @property
    def throughput(self) -> float:
        return self.jobs / self.all_done_seconds


@dataclass
class Calls:
    """Requests the simulator received for a set of jobs."""

    creates_per_job: dict[int, int]  # how many jobs were created how many times
    polls: list[int]  # per job
    shortest_gap: float  # between two polls of one task, over all tasks
    downloads: int
    last_create: float  # when the last create arrived (time.time())


def in_flight(setup: Setup, *, owners: Sequence[User], jobs: int, timeout: float) -> InFlight:
    """Submit `jobs` generations at once to our worker and follow them until every one has ended."""
    first_request = len(setup.simulator.requests)
    worker = _worker(setup)
    try:
        redis_before = redis_used_memory(setup.broker_url)
        started = time.time()
        ids = _create(owners, jobs, prompt="in-flight")
        submitted = time.time()
        deadline = time.monotonic() + timeout
        worker_peak, redis_peak = _follow(ids, worker, setup.broker_url, deadline=deadline)
        # The thumbnails come after the videos show, as steps of their own.
        _wait_for(VideoGeneration.objects.filter(pk__in=ids, poster_pending=True), worker, deadline=deadline)
        posters_made = time.time()
    finally:
        worker.stop()
    rows = _ended(ids)
    calls = _calls(setup.simulator, rows, first_request)
    return InFlight(
        jobs=jobs,
        statuses=dict(Counter(row.status for row in rows)),
        submit_seconds=submitted - started,
        all_done_seconds=max(row.finished_at.timestamp() for row in rows) - submitted,
        last_create_seconds=calls.last_create - submitted,
        posters_seconds=posters_made - submitted,
        lags=_lags(setup.simulator, rows),
        worker_peak=worker_peak,
        redis_before=redis_before,
        redis_peak=redis_peak,
        calls=calls,
    )


def _create(owners: Sequence[User], jobs: int, *, prompt: str, enqueue: bool = True) -> list[int]:
    """Make `jobs` generations through the service, in one transaction: all are handed to the broker at its commit."""
    with transaction.atomic():
        made = [
            creation.generation_create(
                owner=owners[n % len(owners)], request=VideoRequest(prompt=f"{prompt} {n}"), enqueue=enqueue
            )
            for n in range(jobs)
        ]
    return [generation.pk for generation in made]


def _follow(ids: list[int], worker: Process, broker_url: str, *, deadline: float) -> tuple[Memory, int]:
    """Wait until every job has ended; return the worker's and Redis's peak memory meanwhile.

    The peaks of the worker's own processes and of the helpers it runs (ffmpeg) are each the
    largest seen, not necessarily at the same moment.
    """
    peak = Memory(rss=0, pss=0, processes=0)
    redis_peak = 0
    jobs = VideoGeneration.objects.filter(pk__in=ids)
    while jobs.active().exists():
        memory = memory_of(worker)
        if memory.rss > peak.rss:
            peak = replace(memory, helpers_rss=peak.helpers_rss, helpers=peak.helpers)
        if memory.helpers_rss > peak.helpers_rss:
            peak = replace(peak, helpers_rss=memory.helpers_rss, helpers=memory.helpers)
        redis_peak = max(redis_peak, redis_used_memory(broker_url))
        if time.monotonic() > deadline:
            left = jobs.active().count()
            raise BenchError(
                f"{left} of {len(ids)} jobs had not ended in time; the worker's log ends:\n{worker.tail()}"
            )
        time.sleep(0.5)
    return peak, redis_peak


def _wait_for(unfinished: QuerySet[VideoGeneration], worker: Process, *, deadline: float) -> None:
    while unfinished.exists():
        if time.monotonic() > deadline:
            raise BenchError(f"{unfinished.count()} jobs were still not done; the worker's log ends:\n{worker.tail()}")
        time.sleep(0.5)


@dataclass(frozen=True)
class _Ended:
    """A job that ended, as the figures need it."""

    prompt: str
    status: str
    task_id: str
    finished_at: datetime


def _ended(ids: list[int]) -> list[_Ended]:
    fields = ("prompt", "status", "runway_task_id", "finished_at")
    rows = [_Ended(*row) for row in VideoGeneration.objects.filter(pk__in=ids).values_list(*fields)]
    if any(row.finished_at is None for row in rows):
        raise BenchError("a job counted as ended has no end time")
    return rows


def _lags(simulator: RunwaySimulator, rows: list[_Ended]) -> list[float]:
    # ends_at() is on the simulator's monotonic clock; the database keeps wall time.
    wall_minus_monotonic = simulator.clock.time() - simulator.clock.monotonic()
    lags = []
    for row in rows:
        ends_at = simulator.ends_at(row.task_id)
        if ends_at is not None:
            lags.append(row.finished_at.timestamp() - (ends_at + wall_minus_monotonic))
    return lags


def _calls(simulator: RunwaySimulator, rows: list[_Ended], first_request: int) -> Calls:
    creates: dict[str, int] = defaultdict(int)
    polls: dict[str, list[float]] = defaultdict(list)
    downloads = 0
    last_create = 0.0
    for request in simulator.requests[first_request:]:
        if request.method == "POST" and isinstance(request.json, dict):
            creates[request.json.get("promptText", "")] += 1
            last_create = max(last_create, request.at)
        elif request.method == "GET" and request.path.startswith("/v1/tasks/"):
            polls[request.path.removeprefix("/v1/tasks/")].append(request.at)
        elif request.method == "GET" and request.path.startswith("/_sim/outputs/"):
            downloads += 1
    gaps = [later - earlier for times in polls.values() for earlier, later in zip(times, times[1:], strict=False)]
    return Calls(
        creates_per_job=dict(Counter(creates.get(row.prompt, 0) for row in rows)),
        polls=[len(polls.get(row.task_id, [])) for row in rows],
        shortest_gap=min(gaps, default=float("inf")),
        downloads=downloads,
        last_create=last_create + time.time() - time.monotonic(),
    )


# --- The blocking baseline ---------------------------------------------------------------------


@dataclass
class Baseline:
    jobs: int
    finished: int
    seconds: float  # from the last submission to the last of `finished` ending

    @property
    def throughput(self) -> float:
        return self.finished / self.seconds


def blocking_baseline(setup: Setup, *, owners: Sequence[User], jobs: int, finish: int, timeout: float) -> Baseline:
    """The same load through one-task-per-video workers that sleep between polls, followed until `finish` end.

    The rest would take hours; they are dropped with the worker and the queue.
    """
    from bench.baseline import blocking_generation

    worker = _worker(setup, include="bench.baseline")
    try:
        ids = _create(owners, jobs, prompt="blocking", enqueue=False)
        for pk in ids:
            blocking_generation.delay(pk)
        submitted = time.time()
        done = VideoGeneration.objects.filter(pk__in=ids).exclude(status__in=ACTIVE_STATUSES)
        deadline = time.monotonic() + timeout
        while done.count() < finish:
            if time.monotonic() > deadline:
                raise BenchError(f"the blocking baseline did not finish {finish} jobs in time:\n{worker.tail()}")
            time.sleep(0.5)
        ended = _ended(list(done.values_list("pk", flat=True)))
    finally:
        worker.kill()  # its tasks sleep; a warm shutdown would wait for them
        _forget_queue(setup.broker_url, setup.queue)
    last = sorted(row.finished_at for row in ended)[finish - 1]
    return Baseline(jobs=jobs, finished=finish, seconds=last.timestamp() - submitted)


def _forget_queue(broker_url: str, queue: str) -> None:
    """Drop this run's waiting and unacknowledged messages from Redis."""
    client = redis.Redis.from_url(broker_url)
    for key in client.scan_iter(match=f"{queue}*"):
        client.delete(key)
    for tag, raw in client.hscan_iter("unacked"):
        if json.loads(raw)[2] == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


# --- 3. The status endpoint under load -----------------------------------------------------------


@dataclass
class StatusLoad:
    browsers: int
    seconds: float
    interval: float
    jobs_in_flight: int
    latencies: list[float]
    errors: list[str]
    queries: dict[str, int] = field(default_factory=dict)  # per request, by the job's state

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.seconds


def status_under_load(
    setup: Setup, *, owners: Sequence[User], jobs: int, browsers: int, seconds: float, interval: float, timeout: float
) -> StatusLoad:
    """`browsers` users poll their job's status through gunicorn while the worker follows `jobs` in flight."""
    if browsers > min(jobs, len(owners)):
        raise ValueError("each browser needs an owner and a job of its own")
    # The tasks stay at the simulator for the whole load, so the worker polls all of them meanwhile.
    throttle = max(0.0, seconds + 5 - setup.simulator.options.task_seconds)
    worker = _worker(setup)
    server = _gunicorn(setup)
    base_url = server.base_url
    try:
        ids = _create(owners, jobs, prompt=f"[sim:throttle={throttle:.0f}] status load")
        # _create hands out jobs to owners in turn, so the first `browsers` jobs have different owners.
        targets = [
            {"cookie": _session_cookie(owner), "path": reverse("videos:status", args=[pk])}
            for owner, pk in zip(owners, ids[:browsers], strict=False)
        ]
        _warm_up(base_url, targets[0]["cookie"], targets[0]["path"], workers=setup.gunicorn_workers)
        measured = _load(
            {"mode": "poll", "base_url": base_url, "targets": targets, "seconds": seconds, "interval": interval}
        )
        _follow(ids, worker, setup.broker_url, deadline=time.monotonic() + timeout)
    finally:
        server.stop()
        worker.stop()
    return StatusLoad(
        browsers=browsers,
        seconds=seconds,
        interval=interval,
        jobs_in_flight=jobs,
        latencies=measured["latencies"],
        errors=measured["errors"],
        queries=status_queries(owners[0]),
    )


def status_queries(owner: User) -> dict[str, int]:
    """Database queries one status request makes: for a job in progress (the first time in a minute,
    when the time estimate is computed, then with it cached), and for one that ended."""
    client = Client()
    client.force_login(owner)
    job = VideoGeneration.objects.filter(owner=owner).first()
    assert job is not None
    cache.clear()
    counts = {}
    for label, state in (
        ("in progress, first in a minute", Status.RUNNING),
        ("in progress", Status.RUNNING),
        ("done", Status.SUCCEEDED),
    ):
        VideoGeneration.objects.filter(pk=job.pk).update(status=state)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("videos:status", args=[job.pk]), secure=True, headers={"host": "127.0.0.1"})
        if response.status_code != 200:
            raise BenchError(f"the status endpoint answered {response.status_code}")
        counts[label] = len(queries)
    return counts


# --- 4. Submissions ------------------------------------------------------------------------------


@dataclass
class Submissions:
    clients: int
    seconds: float
    latencies: list[float]
    errors: list[str]
    created: int  # jobs the database holds for the posts answered 201

    @property
    def posts_per_second(self) -> float:
        return len(self.latencies) / self.seconds


def submissions(setup: Setup, *, owners: Sequence[User], clients: int, seconds: float) -> Submissions:
    """`clients` users post the Generate form back to back through gunicorn; no worker takes the jobs."""
    server = _gunicorn(setup)
    base_url = server.base_url
    try:
        targets = [
            {"cookie": _session_cookie(owner), "path": reverse("videos:dashboard")} for owner in owners[:clients]
        ]
        _warm_up(base_url, targets[0]["cookie"], targets[0]["path"], workers=setup.gunicorn_workers)
        measured = _load(
            {"mode": "post", "base_url": base_url, "targets": targets, "seconds": seconds, "prompt": "submissions"}
        )
    finally:
        server.stop()
        _forget_queue(setup.broker_url, setup.queue)
    return Submissions(
        clients=clients,
        seconds=seconds,
        latencies=measured["latencies"],
        errors=measured["errors"],
        created=VideoGeneration.objects.filter(pk__in=measured["created"]).count(),
    )


# --- Helpers ---------------------------------------------------------------------------------------


def _session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _warm_up(base_url: str, cookie: str, path: str, *, workers: int) -> None:
    """A few requests per gunicorn worker first, so that the figures are of a running server, not its start."""
    session = requests.Session()
    session.cookies.set(settings.SESSION_COOKIE_NAME, cookie)
    for _ in range(4 * workers):
        session.get(base_url + path, headers={"X-Forwarded-Proto": "https"}, timeout=30).raise_for_status()


class Measured(TypedDict):
    """What bench.load reports: seconds per answered request, the failures, and the jobs made."""

    latencies: list[float]
    errors: list[str]
    created: list[int]


def _load(plan: dict[str, object]) -> Measured:
    """Run bench.load in a process of its own with `plan`; return what it measured."""
    plan = {**plan, "cookie_name": settings.SESSION_COOKIE_NAME}
    result = subprocess.run(  # noqa: S603 (our own module)
        [sys.executable, "-m", "bench.load"], input=json.dumps(plan), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BenchError(f"the load generator failed:\n{result.stderr[-3000:]}")
    measured: Measured = json.loads(result.stdout)
    return measured


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]
