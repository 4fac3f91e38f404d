"""The five benchmarks of docs/PERFORMANCE.md, each a function that runs one and returns its figures.

They run in a process where Django is set up against the database the worker and gunicorn use
(`make bench` makes one; the smoke test uses the test database), with the Runway simulator in a
thread of the same process. Child processes get `Setup.env`.
"""

import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
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
from bench.memory import CpuTime, Memory, cpu_time_of, memory_of, redis_used_memory
from harness.stack import CeleryBeat, CeleryWorker, Gunicorn, database_url
from runway_simulator import RunwaySimulator
from videos.catalog import VideoRequest
from videos.models import ACTIVE_STATUSES, Status, VideoGeneration
from videos.services import creation
from videos.views import HISTORY_PAGE_SIZE


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
    gunicorn_workers: int = 5

    @classmethod
    def here(cls, simulator: RunwaySimulator, *, poll_interval: int, gunicorn_workers: int) -> "Setup":
        """This process's: its settings' broker and queue, and its environment pointed at the run's database."""
        return cls(
            simulator=simulator,
            env={**os.environ, "DATABASE_URL": database_url()},
            broker_url=settings.CELERY_BROKER_URL,
            queue=settings.CELERY_TASK_DEFAULT_QUEUE,
            poll_interval=poll_interval,
            gunicorn_workers=gunicorn_workers,
        )


@dataclass(frozen=True)
class Design:
    """A way to run the workers: the settings their environment overrides, how many worker processes
    (each started with the README's command, as on that many machines), and whether one of them is
    killed (-9) that many seconds after the last submission (beat then runs too, to sweep up)."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    kill_one_after: float | None = None


# The worker as the README's command starts it: the pool and concurrency of the settings.
OURS = Design("ours")
# The deployment before: one process per core, each waiting on its socket in turn.
PREFORK = Design("prefork, 2 processes", {"CELERY_WORKER_POOL": "prefork", "CELERY_WORKER_CONCURRENCY": "2"})


@dataclass(frozen=True)
class Network:
    """How far away Runway is: the simulator's latency options."""

    name: str
    latency: float = 0.0
    download_latency: float = 0.0
    download_rate: float | None = None

    def apply(self, simulator: RunwaySimulator) -> None:
        simulator.set_network(
            latency=self.latency, download_latency=self.download_latency, download_rate=self.download_rate
        )


LOOPBACK = Network("loopback")


def _worker(setup: Setup, design: Design = OURS, *, include: str = "") -> CeleryWorker:
    worker = CeleryWorker({**setup.env, **design.env}, log_dir=LOG_DIR, include=include)
    worker.wait_until_ready()
    return worker


# How often beat sweeps for lost work in a run that kills a worker (production's default is 60 s).
SWEEP_SECONDS = 10


class Workers:
    """The worker processes of a design, beat when one of them is to be killed, and what they cost."""

    def __init__(self, setup: Setup, design: Design) -> None:
        env = {**setup.env, **design.env}
        self.all = [CeleryWorker(env, log_dir=LOG_DIR) for _ in range(design.workers)]
        for worker in self.all:
            worker.wait_until_ready()
        self.beat = (
            CeleryBeat({**env, "RUNWAY_SWEEP_INTERVAL": str(SWEEP_SECONDS)}, log_dir=LOG_DIR)
            if (design.kill_one_after is not None)
            else None
        )
        self.killed: CeleryWorker | None = None
        self._killed_cpu = CpuTime(own=0.0, helpers=0.0)

    @property
    def alive(self) -> list[CeleryWorker]:
        return [worker for worker in self.all if worker is not self.killed]

    def cpu(self) -> CpuTime:
        """CPU time so far, over every worker (a killed one's until it was killed)."""
        times = [cpu_time_of(worker) for worker in self.alive] + [self._killed_cpu]
        return CpuTime(own=sum(t.own for t in times), helpers=sum(t.helpers for t in times))

    def kill_one(self) -> None:
        worker = self.all[0]
        self._killed_cpu = cpu_time_of(worker)
        worker.kill()
        self.killed = worker

    def memory(self) -> list[Memory]:
        return [memory_of(worker) for worker in self.alive]

    def tail(self) -> str:
        return "\n".join(f"{worker.log.name}:\n{worker.tail()}" for worker in self.alive)

    def shares(self) -> list[int]:
        """Creates each worker sent, from its log (one line per job it submitted)."""
        return [worker.log.read_text(errors="replace").count(" submitted as Runway task ") for worker in self.all]

    def swept(self) -> int:
        """Jobs the sweep put back to work (a killed worker's), from the survivors' logs."""
        lines = "".join(worker.log.read_text(errors="replace") for worker in self.alive)
        return sum(int(n) for n in re.findall(r"Sweep: (\d+) job\(s\) had lost their task message", lines))

    def stop(self) -> None:
        for process in (*self.alive, *([self.beat] if self.beat else [])):
            process.stop()

    def kill(self) -> None:
        for process in (*self.alive, *([self.beat] if self.beat else [])):
            process.kill()


def _gunicorn(setup: Setup) -> Gunicorn:
    server = Gunicorn(setup.env, log_dir=LOG_DIR, workers=setup.gunicorn_workers)
    server.wait_until_ready()
    return server


# --- 1. In-flight scale, and 2. Runway calls per job ---------------------------------------


@dataclass
class InFlight:
    design: str
    network: str
    jobs: int
    statuses: dict[str, int]
    submit_seconds: float  # from the first job created to the last handed to the broker
    # From the last submission to the last job shown done; for a run given up on, to when it was.
    all_done_seconds: float
    ended: int  # jobs that ended: all of them unless the run was given up on
    last_create_seconds: float  # from the last submission to the last create reaching the simulator
    posters_seconds: float | None  # from the last submission to the last poster frame made
    lags: list[float]  # per job: from the simulator finishing it to its record showing it
    worker_peak: Memory
    database_connections: int  # the most the worker held at once
    runway_calls: int  # requests the simulator received for the run (creates, polls, downloads, ...)
    calls_per_job: float  # what one job needs at least: a create, its polls, a download
    redis_before: int
    redis_peak: int
    calls: "Calls"
    worker_cpu: CpuTime | None = None  # from ready to the last poster made; None for a run given up on
    first_request: int = 0  # the simulator's first request of the run
    workers: int = 1
    shares: list[int] = field(default_factory=list)  # creates each worker sent
    killed_after: float | None = None  # one worker was killed this long after the last submission
    swept: int = 0  # jobs the sweep put back to work
    worker_peaks: list[Memory] = field(default_factory=list)  # each worker's

    @property
    def cpu_ms_per_job(self) -> float | None:
        """The worker's own CPU time per job, ffmpeg's posters left out."""
        return None if self.worker_cpu is None else self.worker_cpu.own * 1000 / self.jobs

    @property
    def throughput(self) -> float:
        return self.ended / self.all_done_seconds

    @property
    def finished(self) -> bool:
        return self.ended == self.jobs

    @property
    def projected_seconds(self) -> float:
        """How long all the jobs would take: for a run given up on, the calls they need at the rate
        the worker made calls (a blocked worker makes every create first, so few jobs end early)."""
        if self.finished:
            return self.all_done_seconds
        if not self.runway_calls:
            return math.inf
        return self.jobs * self.calls_per_job / (self.runway_calls / self.all_done_seconds)


@dataclass
class Calls:
    """Requests the simulator received for a set of jobs."""

    creates_per_job: dict[int, int]  # how many jobs were created how many times
    polls: list[int]  # per job
    shortest_gap: float  # between two polls of one task, over all tasks
    downloads: int
    last_create: float  # when the last create arrived (time.time())


def in_flight(
    setup: Setup,
    *,
    owners: Sequence[User],
    jobs: int,
    timeout: float,
    design: Design = OURS,
    network: Network = LOOPBACK,
    give_up_after: float | None = None,
) -> InFlight:
    """Submit `jobs` generations at once to the workers of `design`, with Runway as far away as
    `network` says, and follow them until every one has ended, or for `give_up_after` seconds."""
    network.apply(setup.simulator)
    first_request = len(setup.simulator.requests)
    workers = Workers(setup, design)
    gave_up = False
    cpu = None
    try:
        cpu_before = workers.cpu()
        redis_before = redis_used_memory(setup.broker_url)
        started = time.time()
        ids = _create(owners, jobs, prompt=f"in-flight {design.name} {network.name}")
        submitted = time.time()
        deadline = time.monotonic() + timeout
        followed = _follow(
            ids,
            workers,
            setup.broker_url,
            deadline=deadline,
            give_up=None if give_up_after is None else time.monotonic() + give_up_after,
            kill_at=None if design.kill_one_after is None else time.monotonic() + design.kill_one_after,
        )
        gave_up = followed.gave_up
        posters_made = None
        if not gave_up:
            # The thumbnails come after the videos show, as steps of their own.
            _wait_for(VideoGeneration.objects.filter(pk__in=ids, poster_pending=True), workers, deadline=deadline)
            posters_made = time.time() - submitted
            cpu_after = workers.cpu()
            cpu = CpuTime(own=cpu_after.own - cpu_before.own, helpers=cpu_after.helpers - cpu_before.helpers)
        stopped = time.time()
    finally:
        if gave_up:
            workers.kill()  # a warm shutdown would finish what it holds; the rest is dropped
            _forget_queue(setup.broker_url, setup.queue)
        else:
            workers.stop()
        LOOPBACK.apply(setup.simulator)
    rows = _ended(ids)
    calls = _calls(setup.simulator, rows, first_request)
    return InFlight(
        design=design.name,
        network=network.name,
        jobs=jobs,
        statuses=dict(Counter(row.status for row in rows)),
        submit_seconds=submitted - started,
        all_done_seconds=(stopped if gave_up else max(row.finished_at.timestamp() for row in rows)) - submitted,
        ended=len(rows),
        last_create_seconds=calls.last_create - submitted,
        posters_seconds=posters_made,
        lags=_lags(setup.simulator, rows),
        worker_peak=max(followed.worker_peaks, key=lambda memory: memory.rss),
        database_connections=followed.database_connections,
        runway_calls=len(setup.simulator.requests) - first_request,
        calls_per_job=1 + setup.simulator.options.task_seconds / setup.poll_interval + 1,
        redis_before=redis_before,
        redis_peak=followed.redis_peak,
        calls=calls,
        worker_cpu=cpu,
        first_request=first_request,
        workers=design.workers,
        shares=workers.shares(),
        killed_after=design.kill_one_after,
        swept=workers.swept(),
        worker_peaks=followed.worker_peaks,
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


@dataclass(frozen=True)
class _Followed:
    worker_peaks: list[Memory]  # each worker's (the survivors' of a run that killed one)
    database_connections: int
    redis_peak: int
    gave_up: bool


def _follow(
    ids: list[int],
    workers: Workers,
    broker_url: str,
    *,
    deadline: float,
    give_up: float | None = None,
    kill_at: float | None = None,
) -> _Followed:
    """Wait until every job has ended (or until `give_up`, on time.monotonic()), killing one worker
    at `kill_at`; note the peaks meanwhile."""
    peaks: dict[int, Memory] = {}
    redis_peak = connections = 0
    jobs = VideoGeneration.objects.filter(pk__in=ids)
    while jobs.active().exists():
        if kill_at is not None and workers.killed is None and time.monotonic() >= kill_at:
            workers.kill_one()
        for worker, memory in zip(workers.alive, workers.memory(), strict=True):
            peaks[worker.pid] = _peak(peaks.get(worker.pid), memory)
        redis_peak = max(redis_peak, redis_used_memory(broker_url))
        connections = max(connections, database_connections())
        if give_up is not None and time.monotonic() > give_up:
            return _Followed(list(peaks.values()), connections, redis_peak, gave_up=True)
        if time.monotonic() > deadline:
            left = jobs.active().count()
            raise BenchError(
                f"{left} of {len(ids)} jobs had not ended in time; the workers' logs end:\n{workers.tail()}"
            )
        time.sleep(0.5)
    return _Followed(
        list(peaks.values()) or [Memory(rss=0, pss=0, processes=0)], connections, redis_peak, gave_up=False
    )


def _peak(peak: Memory | None, memory: Memory) -> Memory:
    """The largest of a worker's own processes, and of the helpers it runs (ffmpeg), each the largest
    seen, not necessarily at the same moment."""
    if peak is None:
        return memory
    if memory.rss > peak.rss:
        peak = replace(memory, helpers_rss=peak.helpers_rss, helpers=peak.helpers)
    if memory.helpers_rss > peak.helpers_rss:
        peak = replace(peak, helpers_rss=memory.helpers_rss, helpers=memory.helpers)
    return peak


def database_connections() -> int:
    """Connections to this database other than this process's own: the worker's and gunicorn's."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _wait_for(unfinished: QuerySet[VideoGeneration], workers: "Workers", *, deadline: float) -> None:
    while unfinished.exists():
        if time.monotonic() > deadline:
            raise BenchError(f"{unfinished.count()} jobs were still not done; the workers' logs end:\n{workers.tail()}")
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
    ended = VideoGeneration.objects.filter(pk__in=ids).exclude(status__in=ACTIVE_STATUSES)
    rows = [_Ended(*row) for row in ended.values_list(*fields)]
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
    network: str
    jobs: int
    finished: int
    seconds: float  # from the last submission to the last of `finished` ending

    @property
    def throughput(self) -> float:
        return self.finished / self.seconds


def blocking_baseline(
    setup: Setup, *, owners: Sequence[User], jobs: int, finish: int, timeout: float, network: Network = LOOPBACK
) -> Baseline:
    """The same load through one-task-per-video workers that sleep between polls, followed until `finish` end.

    The rest would take hours; they are dropped with the worker and the queue.
    """
    from bench.baseline import blocking_generation

    network.apply(setup.simulator)
    worker = _worker(setup, PREFORK, include="bench.baseline")
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
        LOOPBACK.apply(setup.simulator)
    last = sorted(row.finished_at for row in ended)[finish - 1]
    return Baseline(network=network.name, jobs=jobs, finished=finish, seconds=last.timestamp() - submitted)


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
    network: str
    browsers: int
    seconds: float
    interval: float
    jobs_in_flight: int
    latencies: list[float]
    errors: list[str]
    queries: dict[str, int] = field(default_factory=dict)  # per request, by the jobs' state
    not_modified: int = 0  # answers 304: nothing but the clock changed since the browser's last answer
    at: list[float] = field(default_factory=list)  # when each request was asked, from the load's start

    def p99_by_window(self, seconds: float = 5.0) -> list[tuple[float, float]]:
        """The p99 latency of the requests asked in each window of `seconds`, by the window's start."""
        windows: dict[float, list[float]] = defaultdict(list)
        for at, latency in zip(self.at, self.latencies, strict=True):
            windows[at // seconds * seconds].append(latency)
        return [(start, percentile(sorted(values), 0.99)) for start, values in sorted(windows.items())]

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def not_modified_share(self) -> float:
        return self.not_modified / len(self.latencies) if self.latencies else math.nan


def status_under_load(
    setup: Setup,
    *,
    owners: Sequence[User],
    jobs: int,
    browsers: int,
    seconds: float,
    interval: float,
    network: Network = LOOPBACK,
) -> StatusLoad:
    """`browsers` users poll their page's status through gunicorn, as the page does (one request for
    its live jobs, with the last answer's ETag), while the worker follows `jobs` in flight. Once
    the load is over the worker is killed and the rest of the jobs dropped: what it would have
    done next (their ends, their posters) belongs to no measure, and would land on the next."""
    if browsers > min(jobs, len(owners)):
        raise ValueError("each browser needs an owner and a job of its own")
    network.apply(setup.simulator)
    # The tasks stay at the simulator for the whole load, so the worker polls all of them meanwhile.
    throttle = max(0.0, seconds + 5 - setup.simulator.options.task_seconds)
    workers = Workers(setup, OURS)
    server = _gunicorn(setup)
    base_url = server.base_url
    try:
        ids = _create(owners, jobs, prompt=f"[sim:throttle={throttle:.0f}] status load")
        # _create hands out jobs to owners in turn: the nth owner's page is every len(owners)th job.
        targets = [
            {"cookie": _session_cookie(owner), "path": _status_path(ids[n :: len(owners)])}
            for n, owner in enumerate(owners[:browsers])
        ]
        _warm_up(base_url, targets[0]["cookie"], targets[0]["path"], workers=setup.gunicorn_workers)
        measured = _load(
            {"mode": "poll", "base_url": base_url, "targets": targets, "seconds": seconds, "interval": interval}
        )
    finally:
        server.stop()
        workers.kill()
        _forget_queue(setup.broker_url, setup.queue)
        LOOPBACK.apply(setup.simulator)
    return StatusLoad(
        network=network.name,
        browsers=browsers,
        seconds=seconds,
        interval=interval,
        jobs_in_flight=jobs,
        latencies=measured["latencies"],
        errors=measured["errors"],
        queries=status_queries(owners[0]),
        not_modified=measured["not_modified"],
        at=measured["at"],
    )


def _status_path(page: list[int]) -> str:
    """The page's one status request for the live jobs of a history page (views.HISTORY_PAGE_SIZE)."""
    return reverse("videos:statuses") + "?ids=" + ",".join(str(pk) for pk in page[:HISTORY_PAGE_SIZE])


def status_queries(owner: User) -> dict[str, int]:
    """Database queries one status request of the owner's page makes: for jobs in progress (the first
    time in a minute, when the time estimate is computed, then with it cached), and for ended ones."""
    client = Client()
    client.force_login(owner)
    page = list(VideoGeneration.objects.filter(owner=owner).values_list("pk", flat=True)[:HISTORY_PAGE_SIZE])
    assert page
    cache.clear()
    counts = {}
    for label, state in (
        ("in progress, first in a minute", Status.RUNNING),
        ("in progress", Status.RUNNING),
        ("done", Status.SUCCEEDED),
    ):
        VideoGeneration.objects.filter(pk__in=page).update(status=state)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(_status_path(page), secure=True, headers={"host": "127.0.0.1"})
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


# --- 6. What making a job costs ----------------------------------------------------------------


@dataclass
class CreateCost:
    """Per job made, median over the rounds: database statements (BEGIN and COMMIT left out, as
    PostgreSQL sends none for them) and CPU milliseconds of this process."""

    rounds: int
    service_queries: float
    service_cpu_ms: float
    form_queries: float
    form_cpu_ms: float


TRANSACTION_CONTROL = re.compile(r"^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b", re.IGNORECASE)


def create_cost(owner: User, *, rounds: int) -> CreateCost:
    """A job made `rounds` times through the service (as the API and the command make one) and
    through the Generate form's post (Django's test client: session, user, form, the card's JSON);
    their messages go to the run's queue, which nothing consumes here."""
    client = Client()
    client.force_login(owner)

    def service() -> None:
        creation.generation_create(owner=owner, request=VideoRequest(prompt="create cost"))

    def form_post() -> None:
        data = {"prompt": "create cost", "token": str(uuid.uuid4())}
        response = client.post(
            reverse("videos:dashboard"), data, secure=True, headers={"host": "127.0.0.1", "accept": "application/json"}
        )
        if response.status_code != 201:
            raise BenchError(f"the form post answered {response.status_code}")

    service_queries, service_cpu = _per_round(service, rounds)
    form_queries, form_cpu = _per_round(form_post, rounds)
    return CreateCost(rounds, service_queries, service_cpu, form_queries, form_cpu)


def _per_round(action: Callable[[], object], rounds: int) -> tuple[float, float]:
    queries, cpu = [], []
    for _ in range(rounds):
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as captured:
            started = time.thread_time()
            action()
            cpu.append((time.thread_time() - started) * 1000)
        queries.append(sum(1 for q in captured.captured_queries if not TRANSACTION_CONTROL.match(q["sql"])))
    return statistics.median(queries), statistics.median(cpu)


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
    not_modified: int  # answers 304
    at: list[float]  # when each answered request was asked, in seconds from the load's start


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


# --- 5. Every page and action while Runway answers slowly --------------------------------------------


@dataclass
class SlowRunway:
    latency: float
    timings: dict[str, float]  # seconds per page or action
    runway_calls: int  # requests the simulator received during the walk: none, if no page waits on Runway

    @property
    def slowest(self) -> tuple[str, float]:
        return max(self.timings.items(), key=lambda item: item[1])


def slow_runway(setup: Setup, *, owner: User, latency: float) -> SlowRunway:
    """Time every page and action, as the owner and as staff, while each Runway answer takes `latency` s.

    Through Django's test client in this process (the same settings and database as gunicorn), so
    that each figure is the view's own time; a view that asked Runway would take `latency` or more.
    """
    staff = User.objects.create_superuser(f"bench-staff-{time.monotonic_ns()}", password=None)
    jobs = {status: _job_for_the_walk(owner, status) for status in (Status.RUNNING, Status.SUCCEEDED, Status.FAILED)}
    running, done, failed = jobs[Status.RUNNING], jobs[Status.SUCCEEDED], jobs[Status.FAILED]
    extra_running, extra_done = _job_for_the_walk(owner, Status.RUNNING), _job_for_the_walk(owner, Status.SUCCEEDED)
    user, admin = Client(), Client()
    user.force_login(owner)
    admin.force_login(staff)
    changelist = reverse("admin:videos_videogeneration_changelist")
    walk: list[tuple[str, Client, str, str, dict[str, object]]] = [
        ("dashboard", user, "get", reverse("videos:dashboard"), {}),
        ("detail", user, "get", reverse("videos:detail", args=[running.pk]), {}),
        ("status", user, "get", reverse("videos:status", args=[running.pk]), {}),
        ("cancel", user, "post", reverse("videos:cancel", args=[running.pk]), {}),
        ("re-run", user, "post", reverse("videos:rerun", args=[done.pk]), {}),
        ("try again", user, "post", reverse("videos:retry", args=[failed.pk]), {}),
        ("delete", user, "post", reverse("videos:delete", args=[done.pk]), {}),
        ("admin list", admin, "get", changelist, {}),
        ("admin change page", admin, "get", reverse("admin:videos_videogeneration_change", args=[failed.pk]), {}),
        ("admin: poll now", admin, "post", changelist, {"action": "poll_now", "_selected_action": [extra_running.pk]}),
        ("admin: cancel", admin, "post", changelist, {"action": "cancel", "_selected_action": [extra_running.pk]}),
        (
            "admin: delete",
            admin,
            "post",
            reverse("admin:videos_videogeneration_delete", args=[extra_done.pk]),
            {"post": "yes"},
        ),
    ]
    # Each page once before timing, as a server that has been running has: the first request of a
    # process loads and compiles templates, which says nothing of Runway.
    for _, client, method, path, _ in walk:
        if method == "get":
            client.get(path, secure=True, headers={"host": "127.0.0.1"})
    setup.simulator.set_network(latency=latency)
    first_request = len(setup.simulator.requests)
    timings = {}
    try:
        for name, client, method, path, data in walk:
            started = time.perf_counter()
            response = getattr(client, method)(path, data, secure=True, headers={"host": "127.0.0.1"})
            timings[name] = time.perf_counter() - started
            if response.status_code >= 400:
                raise BenchError(f"{name} answered {response.status_code}")
        runway_calls = len(setup.simulator.requests) - first_request
    finally:
        LOOPBACK.apply(setup.simulator)
        _forget_queue(setup.broker_url, setup.queue)
    return SlowRunway(latency=latency, timings=timings, runway_calls=runway_calls)


def _job_for_the_walk(owner: User, status: Status) -> VideoGeneration:
    generation = creation.generation_create(owner=owner, request=VideoRequest(prompt=f"walk {status}"), enqueue=False)
    ended = status not in ACTIVE_STATUSES
    VideoGeneration.objects.filter(pk=generation.pk).update(
        status=status,
        runway_task_id=str(uuid.uuid4()),
        step=generation.step + 1,
        finished_at=generation.created_at if ended else None,
    )
    generation.refresh_from_db()
    return generation
