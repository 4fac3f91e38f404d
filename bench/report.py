"""The benchmarks' figures as Markdown, with each target of docs/PERFORMANCE.md met or missed."""

import math
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from bench.scenarios import Baseline, CreateCost, InFlight, SlowRunway, StatusLoad, Submissions, percentile
from runway_project.database import POSTGRESQL
from videos import posters

MB = 1024 * 1024
# PostgreSQL's max_connections as installed, which the worker, gunicorn and beat share.
POSTGRES_MAX_CONNECTIONS = 100


@dataclass(frozen=True)
class Results:
    task_seconds: float
    poll_interval: int
    worker_concurrency: int
    in_flight: list[InFlight]  # each design at each network, loopback first
    baselines: list[Baseline]  # at each network
    status: list[StatusLoad]  # at each network
    submissions: Submissions
    slow_runway: SlowRunway
    creates: CreateCost | None = None
    seconds: float | None = None  # the whole run's


def render(
    results: Results,
    *,
    machine: list[str],
    command: str,
    before: dict[str, str] | None = None,
    last: dict[str, str] | None = None,
) -> str:
    """The report; with the headline figures of an earlier run (`before`: issue 24's, `last`: this
    machine's last full run), a table of them beside this run's first."""
    r = results
    lines = [f"Command: `{command}`", "", *[f"- {line}" for line in machine], ""]
    lines += headline_table(r, before or {}, last or {})
    lines += _in_flight(r)
    lines += _calls(r)
    lines += _status(r.status)
    lines += _submissions(r.submissions)
    lines += _slow(r.slow_runway)
    lines += _creates(r.creates)
    lines += _targets(r)
    return "\n".join(lines) + "\n"


# The headline figures, by key (bench/before.json and var/bench/last.json use the same keys).
HEADLINES = {
    "cpu": "Worker CPU per job, 1 worker (with ffmpeg's)",
    "done": "All shown done after the last submission, 1 worker",
    "calls": "Creates / most polls per job; shortest gap between two polls",
    "lag": "Lag from Runway finishing to shown, p99",
    "memory": "Worker memory, peak RSS",
    "connections": "Database connections, peak, 1 worker",
    "s3_cpu": "1 worker, S3 bucket: CPU per job",
    "two_shares": "2 workers: creates each sent",
    "two_cpu": "2 workers: CPU per job",
    "two_done": "2 workers: all shown done",
    "killed": "2 workers, one killed: jobs ended well / creates per job / all done",
    "status_p99": "Status p99, 200 browsers",
    "status_rate": "Status requests per second",
    "create_queries": "Queries per create: service / form post",
    "create_cpu": "CPU per create: service / form post",
    "bench_minutes": "make bench's own time, minutes",
}


def headlines(r: Results) -> dict[str, str]:
    """This run's headline figures, as text, by key (HEADLINES)."""
    figures = _flight_headlines(r)
    field = next((s for s in r.status if s.network != "loopback"), None)
    if field is not None:
        figures["status_p99"] = f"{_p(field.latencies, 0.99) * 1000:,.1f} ms"
        figures["status_rate"] = f"{field.requests_per_second:.1f}/s"
    if r.creates is not None:
        c = r.creates
        figures["create_queries"] = f"{c.service_queries:g} / {c.form_queries:g}"
        figures["create_cpu"] = f"{c.service_cpu_ms:.1f} / {c.form_cpu_ms:.1f} ms"
    if r.seconds is not None:
        figures["bench_minutes"] = f"{r.seconds / 60:.1f}"
    return figures


def _flight_headlines(r: Results) -> dict[str, str]:
    figures: dict[str, str] = {}
    one = next((f for f in r.in_flight if f.network != "loopback" and f.design == "ours"), None)
    two = next((f for f in r.in_flight if f.workers == 2 and f.killed_after is None), None)
    killed = next((f for f in r.in_flight if f.killed_after is not None), None)
    bucket = next((f for f in r.in_flight if f.workers == 1 and "S3" in f.design), None)
    if bucket is not None:
        figures["s3_cpu"] = _cpu(bucket)
    if one is not None:
        most = max(one.calls.polls, default=0)
        creates = "/".join(str(n) for n in sorted(one.calls.creates_per_job))
        figures.update(
            cpu=_cpu(one),
            done=f"{one.all_done_seconds:.1f} s",
            calls=f"{creates} / {most}; {_gap(one.calls.shortest_gap)}",
            lag=f"{_p(one.lags, 0.99):.2f} s",
            memory=f"{one.worker_peak.rss / MB:.0f} MB",
            connections=str(one.database_connections),
        )
    if two is not None:
        figures.update(two_shares=" / ".join(map(str, two.shares)), two_cpu=_cpu(two), two_done=_done(two))
    if killed is not None:
        good = killed.statuses.get("succeeded", 0)
        creates = "/".join(str(n) for n in sorted(killed.calls.creates_per_job))
        figures["killed"] = f"{good} of {killed.jobs} / {creates} / {killed.all_done_seconds:.1f} s"
    return figures


def headline_table(r: Results, before: dict[str, str], last: dict[str, str]) -> list[str]:
    now = headlines(r)
    lines = [
        "### Then and now",
        "",
        "| | before issue 24 | last full run here | this run |",
        "|---|---|---|---|",
    ]
    for key, name in HEADLINES.items():
        lines.append(f"| {name} | {before.get(key, '-')} | {last.get(key, '-')} | {now.get(key, '-')} |")
    return [*lines, ""]


def _creates(creates: CreateCost | None) -> list[str]:
    if creates is None:
        return []
    return [
        "### 6. What making a job costs",
        "",
        f"- Through the service (the API's and the command's way), median of {creates.rounds}: "
        f"**{creates.service_queries:g} queries**, {creates.service_cpu_ms:.1f} ms of CPU.",
        f"- A Generate form post (session, user, form, the card's JSON answer): **{creates.form_queries:g} queries**, "
        f"{creates.form_cpu_ms:.1f} ms of CPU.",
        "",
    ]


def _in_flight(r: Results) -> list[str]:
    flights = r.in_flight
    row = _row_maker(flights)
    lines = [
        "### 1. In-flight scale",
        "",
        "| | " + " | ".join(f"{f.design}, {f.network}" for f in flights) + " |",
        "|---|" + "---|" * len(flights),
        row("Jobs submitted at once", lambda f: str(f.jobs)),
        row("Jobs ended", lambda f: f"{f.ended} ({_statuses(f.statuses)})" + ("" if f.finished else ", then stopped")),
        row("Worker processes", _processes),
        row("Creates each worker sent", lambda f: " / ".join(map(str, f.shares)) or "-"),
        row("Jobs the sweep put back to work", lambda f: str(f.swept)),
        row("All shown done after the last submission", _done),
        row("Throughput", lambda f: f"{f.throughput:.1f} videos/s"),
        row("Last create reached Runway after", lambda f: f"{f.last_create_seconds:.1f} s"),
        row("Lag, finished to shown: p50 / p99", lambda f: f"{_p(f.lags, 0.5):.2f} / {_p(f.lags, 0.99):.2f} s"),
        row("Posters all made after", lambda f: "-" if f.posters_seconds is None else f"{f.posters_seconds:.1f} s"),
        row("Worker CPU per job (with ffmpeg's posters)", _cpu),
        row("Worker peak RSS (PSS), each", _peaks),
        row("... over", lambda f: f"{f.worker_peak.processes} process(es), {f.worker_peak.threads} threads"),
        row("... plus ffmpeg helpers", lambda f: f"{f.worker_peak.helpers_rss / MB:.0f} MB"),
        row("Database connections (peak)", lambda f: str(f.database_connections)),
        row("Redis memory, peak increase", lambda f: f"+{(f.redis_peak - f.redis_before) / MB:.1f} MB"),
        "",
    ]
    for baseline in r.baselines:
        ours = next((f for f in flights if f.network == baseline.network and f.design == "ours"), None)
        if ours is None:
            continue
        lines.append(
            f"- Blocking baseline ({baseline.network}): {baseline.finished} of {baseline.jobs} done "
            f"{baseline.seconds:.1f} s after the last submission, {baseline.throughput:.4f} videos/s, so "
            f"{baseline.jobs / baseline.throughput / 3600:.1f} h for all; ours is "
            f"**{ours.throughput / baseline.throughput:.0f}×** that."
        )
    return [*lines, ""]


def _processes(flight: InFlight) -> str:
    killed = "" if flight.killed_after is None else f", one killed (-9) {flight.killed_after:g} s after"
    return f"{flight.workers}{killed}"


def _peaks(flight: InFlight) -> str:
    peaks = flight.worker_peaks or [flight.worker_peak]
    return " / ".join(f"{m.rss / MB:.0f} MB ({m.pss / MB:.0f} MB)" for m in peaks)


def _cpu(flight: InFlight) -> str:
    if flight.worker_cpu is None or flight.cpu_ms_per_job is None:
        return "-"
    with_helpers = (flight.worker_cpu.own + flight.worker_cpu.helpers) * 1000 / flight.jobs
    return f"{flight.cpu_ms_per_job:.1f} ms ({with_helpers:.1f} ms)"


def _done(flight: InFlight) -> str:
    if flight.finished:
        return f"**{flight.all_done_seconds:.1f} s**"
    return (
        f"{flight.ended} in {flight.all_done_seconds:.0f} s; all in **{flight.projected_seconds:.0f} s** "
        f"(projected from its {flight.runway_calls} Runway calls)"
    )


def _calls(r: Results) -> list[str]:
    ideal = r.task_seconds / r.poll_interval + 1
    lines = ["### 2. Runway calls per job", ""]
    for f in r.in_flight:
        calls = f.calls
        creates = ", ".join(f"{jobs} job(s) × {n}" for n, jobs in sorted(calls.creates_per_job.items()))
        over = sum(1 for polls in calls.polls if polls > ideal + 1)
        lines.append(
            f"- {f.design}, {f.network}: creates {creates}; polls per job mean "
            f"{statistics.fmean(calls.polls or [0]):.2f}, max {max(calls.polls, default=0)} (ideal {ideal:g}, "
            f"{over} over ideal + 1); shortest gap between two polls of a task {_gap(calls.shortest_gap)}; "
            f"{calls.downloads} downloads for {f.ended} jobs ended."
        )
    return [*lines, ""]


def _status(loads: list[StatusLoad]) -> list[str]:
    lines = ["### 3. Status endpoint under load (gunicorn)", ""]
    for s in loads:
        lines.append(
            f"- {s.network}: {s.browsers} browsers polling every {s.interval:g} s for {s.seconds:g} s with "
            f"{s.jobs_in_flight} jobs in flight: {len(s.latencies)} requests, {s.requests_per_second:.1f}/s; "
            f"p50 {_p(s.latencies, 0.5) * 1000:.1f} ms, **p99 {_p(s.latencies, 0.99) * 1000:.1f} ms**, max "
            f"{max(s.latencies, default=math.nan) * 1000:.1f} ms; errors {len(s.errors)}{_errors(s.errors)}; "
            f"304s {s.not_modified_share:.0%}; queries per request: {_queries(s.queries)}."
        )
        windows = ", ".join(f"{start:g}-{start + 5:g} s: {p99 * 1000:.0f}" for start, p99 in s.p99_by_window())
        if windows:
            lines.append(f"  - p99 in each 5 s of the load, ms (the worker makes its creates in the first): {windows}")
    return [*lines, ""]


def _submissions(posts: Submissions) -> list[str]:
    return [
        "### 4. Submissions (per-user limits lifted)",
        "",
        f"- {posts.clients} clients posting the form back to back for {posts.seconds:g} s: "
        f"{len(posts.latencies)} posts, **{posts.posts_per_second:.1f} per second**; latency p50 "
        f"{_p(posts.latencies, 0.5) * 1000:.1f} ms, p99 {_p(posts.latencies, 0.99) * 1000:.1f} ms.",
        f"- Errors: {len(posts.errors)}{_errors(posts.errors)}; jobs stored for the posts answered 201: "
        f"{posts.created} of {len(posts.latencies) - len(posts.errors)}.",
        "",
    ]


def _slow(slow: SlowRunway) -> list[str]:
    timings = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in slow.timings.items())
    return [
        f"### 5. Every page and action with Runway answering in {slow.latency:g} s",
        "",
        f"- {timings}.",
        f"- Requests Runway received meanwhile: {slow.runway_calls}.",
        "",
    ]


def _targets(r: Results) -> list[str]:
    header = ["### Targets", "", "| Target | Measured | Met |", "|---|---|---|"]
    rows = _field_targets(r) + _resource_targets(r) + _workers_targets(r) + _page_targets(r) + _create_targets(r)
    return header + rows + _loopback_targets(r)


def _field_targets(r: Results) -> list[str]:
    """What one job costs at Runway, across the internet's latency."""
    ours = next(f for f in r.in_flight if f.network != "loopback" and f.design == "ours")
    # The target: a job's time, one poll interval and a second of calls at 250 ms, plus 10 %.
    done_within = 1.1 * (r.task_seconds + r.poll_interval + 1)
    most_polls = r.task_seconds / r.poll_interval + 2
    creates = ", ".join(f"{jobs} × {n}" for n, jobs in sorted(ours.calls.creates_per_job.items()))
    most = max(ours.calls.polls, default=0)
    return [
        _target(f"{ours.network}: all done within 1.1 × ({r.task_seconds:g} + {r.poll_interval} + 1) s = "
                f"{done_within:.1f} s", _done(ours), ours.finished and ours.all_done_seconds <= done_within),
        _target(f"{ours.network}: exactly 1 create per job", creates, set(ours.calls.creates_per_job) == {1}),
        _target(f"{ours.network}: polls per job ≤ T/interval + 2 = {most_polls:g}", f"max {most}", most <= most_polls),
        _target(f"{ours.network}: no two polls of a task < 5 s apart", _gap(ours.calls.shortest_gap),
                ours.calls.shortest_gap >= 5),
        _target(f"{ours.network}: worker CPU per job ≤ 30 ms (ffmpeg's posters apart)", _cpu(ours),
                ours.cpu_ms_per_job is not None and ours.cpu_ms_per_job <= 30),
    ]  # fmt: skip


def _resource_targets(r: Results) -> list[str]:
    """What each worker holds: memory and database connections."""
    ours = [f for f in r.in_flight if f.design == "ours"]
    peak = max(f.worker_peak.rss for f in r.in_flight if f.finished)
    connections = max(f.database_connections for f in ours)
    budget, rule = connection_budget(r.worker_concurrency)
    return [
        _target("Worker memory ≤ 300 MB each (all its processes and threads)", f"{peak / MB:.0f} MB", peak <= 300 * MB),
        _target(f"Worker database connections ≤ {rule} = {budget}, of PostgreSQL's {POSTGRES_MAX_CONNECTIONS}",
                str(connections), connections <= budget),
    ]  # fmt: skip


def connection_budget(concurrency: int) -> tuple[int, str]:
    """The most database connections one worker may hold, and the rule that says so."""
    if settings.DATABASES["default"]["ENGINE"] == POSTGRESQL and settings.DATABASE_POOL_SIZE > 0:
        return settings.DATABASE_POOL_SIZE, "DATABASE_POOL_SIZE"
    # Its pool's threads, the poller's finishers and poster threads, the main thread and the poller's writer.
    budget = concurrency + settings.WORKER_FINISH_THREADS + posters.AT_ONCE + 2
    return budget, "CELERY_WORKER_CONCURRENCY + WORKER_FINISH_THREADS + cores + 2"


def _workers_targets(r: Results) -> list[str]:
    """Two workers as on two machines: the load shared, nothing made twice, nothing lost when one dies."""
    two = next((f for f in r.in_flight if f.workers > 1 and f.killed_after is None), None)
    # Held against one worker of the same design but for the number (both with the bucket, or neither).
    one = next((f for f in r.in_flight if two and f.workers == 1 and f.network == two.network and
                ("S3" in f.design) == ("S3" in two.design)), None)  # fmt: skip
    killed = next((f for f in r.in_flight if f.killed_after is not None), None)
    rows = []
    if two is not None and one is not None and two.cpu_ms_per_job is not None and one.cpu_ms_per_job is not None:
        shared = len(two.shares) == two.workers and min(two.shares) >= 0.25 * two.jobs
        rows += [
            _target("2 workers: each sends a quarter of the creates or more", " / ".join(map(str, two.shares)),
                    shared),
            _target("2 workers: exactly 1 create per job", _creates_per_job(two),
                    set(two.calls.creates_per_job) == {1}),
            _target(f"2 workers: CPU per job ≤ {one.design}'s ({one.cpu_ms_per_job:.1f} ms)", _cpu(two),
                    two.cpu_ms_per_job <= one.cpu_ms_per_job),
        ]  # fmt: skip
    if killed is not None:
        good = killed.statuses == {"succeeded": killed.jobs}
        rows += [
            _target("One of 2 killed: every job succeeds", _statuses(killed.statuses), good),
            _target("One of 2 killed: exactly 1 create per job", _creates_per_job(killed),
                    set(killed.calls.creates_per_job) == {1}),
        ]  # fmt: skip
    return rows


def _create_targets(r: Results) -> list[str]:
    rows = []
    if r.creates is not None:
        c = r.creates
        queries = max(c.service_queries, c.form_queries)
        cpu = max(c.service_cpu_ms, c.form_cpu_ms)
        rows += [
            _target("A create (service or form post) ≤ 6 queries", f"{c.service_queries:g} / {c.form_queries:g}",
                    queries <= 6),
            _target("A create ≤ 10 ms of CPU", f"{c.service_cpu_ms:.1f} / {c.form_cpu_ms:.1f} ms", cpu <= 10),
        ]  # fmt: skip
    if r.seconds is not None:
        rows.append(_target("make bench in under 10 minutes", f"{r.seconds / 60:.1f} min", r.seconds < 600))
    return rows


def _creates_per_job(flight: InFlight) -> str:
    return ", ".join(f"{jobs} × {n}" for n, jobs in sorted(flight.calls.creates_per_job.items()))


def _page_targets(r: Results) -> list[str]:
    """What the pages cost while Runway is far away or slow."""
    status_field = next(s for s in r.status if s.network != "loopback")
    status_p99 = _p(status_field.latencies, 0.99)
    slowest, slowest_seconds = r.slow_runway.slowest
    quiet = slowest_seconds <= 0.100 and r.slow_runway.runway_calls == 0
    calls = f"{r.slow_runway.runway_calls} Runway calls"
    return [
        _target(f"{status_field.network}: status p99 ≤ 50 ms at {status_field.browsers} browsers",
                f"{status_p99 * 1000:.1f} ms", status_p99 <= 0.050),
        _target(f"Runway at {r.slow_runway.latency:g} s: every page and action ≤ 100 ms",
                f"slowest: {slowest} {slowest_seconds * 1000:.0f} ms; {calls}", quiet),
    ]  # fmt: skip


def _loopback_targets(r: Results) -> list[str]:
    """On loopback, against the design before (when the run measured it)."""
    ours = next((f for f in r.in_flight if f.network == "loopback" and f.design == "ours"), None)
    before = next((f for f in r.in_flight if f.network == "loopback" and f.design != "ours"), None)
    if ours is None or before is None:
        return []
    met = ours.finished and ours.all_done_seconds <= 1.1 * before.all_done_seconds
    name = f"Loopback: all done within 10 % of the design before, in the same run ({before.all_done_seconds:.1f} s)"
    return [_target(name, _done(ours), met)]


def _row_maker(flights: list[InFlight]) -> Callable[[str, Callable[[InFlight], str]], str]:
    def row(name: str, cell: Callable[[InFlight], str]) -> str:
        return f"| {name} | " + " | ".join(cell(f) for f in flights) + " |"

    return row


def _p(values: list[float], fraction: float) -> float:
    return percentile(values, fraction)


def _gap(seconds: float) -> str:
    return f"{seconds:.2f} s" if math.isfinite(seconds) else "none (no task was polled twice)"


def _statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))


def _errors(errors: list[str]) -> str:
    if not errors:
        return ""
    kinds = Counter(errors)
    return " (" + ", ".join(f"{count} × {kind}" for kind, count in sorted(kinds.items())) + ")"


def _queries(queries: dict[str, int]) -> str:
    return ", ".join(f"{count} for a job {state}" for state, count in queries.items())


def _target(name: str, measured: str, met: bool) -> str:
    return f"| {name} | {measured} | {'yes' if met else '**no**'} |"
