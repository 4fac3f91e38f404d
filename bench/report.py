"""The benchmarks' figures as Markdown, with each target of docs/PERFORMANCE.md met or missed."""

import math
import statistics
from collections import Counter
from dataclasses import dataclass

from bench.scenarios import Baseline, InFlight, StatusLoad, Submissions, percentile

MB = 1024 * 1024


@dataclass(frozen=True)
class Results:
    task_seconds: float
    poll_interval: int
    in_flight: InFlight
    baseline: Baseline
    status: StatusLoad
    submissions: Submissions


def render(results: Results, *, machine: list[str], command: str) -> str:
    r = results
    flight, calls, base, status, posts = r.in_flight, r.in_flight.calls, r.baseline, r.status, r.submissions
    cycle = r.task_seconds + r.poll_interval
    ideal = r.task_seconds / r.poll_interval + 1
    ratio = flight.throughput / base.throughput
    lag_p50, lag_p99 = percentile(flight.lags, 0.50), percentile(flight.lags, 0.99)
    status_p50, status_p99 = percentile(status.latencies, 0.50), percentile(status.latencies, 0.99)
    post_p50, post_p99 = percentile(posts.latencies, 0.50), percentile(posts.latencies, 0.99)
    creates = ", ".join(f"{jobs} job(s) × {n}" for n, jobs in sorted(calls.creates_per_job.items()))
    over = sum(1 for polls in calls.polls if polls > ideal + 1)
    gap = f"{calls.shortest_gap:.2f} s" if math.isfinite(calls.shortest_gap) else "none (no task was polled twice)"
    lines = [
        f"Command: `{command}`",
        "",
        *[f"- {line}" for line in machine],
        "",
        "### 1. In-flight scale",
        "",
        "| | Ours (rescheduling) | Blocking baseline |",
        "|---|---|---|",
        f"| Jobs submitted at once | {flight.jobs} | {base.jobs} |",
        f"| Jobs ended | {flight.jobs} ({_statuses(flight.statuses)}) | {base.finished} (then stopped) |",
        f"| Time | all done {flight.all_done_seconds:.1f} s after the last submission | "
        f"{base.finished} done {base.seconds:.1f} s after it |",
        f"| Throughput | {flight.throughput:.2f} videos/s | {base.throughput:.4f} videos/s |",
        f"| Time for all {flight.jobs} | {flight.all_done_seconds:.1f} s | "
        f"{flight.jobs / base.throughput / 3600:.1f} h (projected) |",
        "",
        f"- Ratio: **{ratio:.0f}×** the blocking baseline's throughput.",
        f"- Handing all {flight.jobs} to the broker took {flight.submit_seconds:.2f} s (one transaction). "
        f"The last create reached Runway {flight.last_create_seconds:.1f} s after that, so the last video "
        f"showed done {flight.all_done_seconds - flight.last_create_seconds:.1f} s after its create.",
        f"- Poster frames (a step after each video shows, at a lower CPU priority): all made "
        f"{flight.posters_seconds:.1f} s after the last submission.",
        f"- Lag from the simulator finishing a video to its record showing it: p50 {lag_p50:.2f} s, "
        f"p99 {lag_p99:.2f} s, max {max(flight.lags, default=float('nan')):.2f} s.",
        f"- Worker at its peak: {flight.worker_peak.rss / MB:.0f} MB RSS over its {flight.worker_peak.processes} "
        f"processes ({flight.worker_peak.pss / MB:.0f} MB PSS, which counts the pages they share once); "
        f"the ffmpeg helpers making posters, at most {flight.worker_peak.helpers} at once, "
        f"{flight.worker_peak.helpers_rss / MB:.0f} MB RSS more while they ran.",
        f"- Redis: {flight.redis_before / MB:.1f} MB before, {flight.redis_peak / MB:.1f} MB at the peak "
        f"(+{(flight.redis_peak - flight.redis_before) / MB:.1f} MB).",
        "",
        "### 2. Runway calls per job",
        "",
        f"- Creates: {creates}.",
        f"- Polls per job: mean {statistics.fmean(calls.polls):.2f}, max {max(calls.polls)}; ideal {ideal:g} "
        f"(generation time / interval + 1); {over} job(s) over ideal + 1.",
        f"- Shortest gap between two polls of one task: {gap}.",
        f"- Video downloads: {calls.downloads} for {flight.jobs} jobs.",
        "",
        "### 3. Status endpoint under load (gunicorn)",
        "",
        f"- {status.browsers} browsers polling every {status.interval:g} s for {status.seconds:g} s, "
        f"with {status.jobs_in_flight} jobs in flight at the worker.",
        f"- {len(status.latencies)} requests, {status.requests_per_second:.1f} per second; latency p50 "
        f"{status_p50 * 1000:.1f} ms, p99 {status_p99 * 1000:.1f} ms, max {max(status.latencies) * 1000:.1f} ms.",
        f"- Errors: {len(status.errors)}{_errors(status.errors)}.",
        f"- Database queries per request: {_queries(status.queries)}.",
        "",
        "### 4. Submissions (per-user limits lifted)",
        "",
        f"- {posts.clients} clients posting the form back to back for {posts.seconds:g} s: "
        f"{len(posts.latencies)} posts, **{posts.posts_per_second:.1f} per second**; latency p50 "
        f"{post_p50 * 1000:.1f} ms, p99 {post_p99 * 1000:.1f} ms.",
        f"- Errors: {len(posts.errors)}{_errors(posts.errors)}; jobs stored for the posts answered 201: "
        f"{posts.created} of {len(posts.latencies) - len(posts.errors)}.",
        "",
        "### Targets",
        "",
        "| Target | Measured | Met |",
        "|---|---|---|",
        _target(f"All done within 1.1 × ({r.task_seconds:g} + {r.poll_interval}) s = {1.1 * cycle:.1f} s",
                f"{flight.all_done_seconds:.1f} s", flight.all_done_seconds <= 1.1 * cycle),
        _target("≥ 100× the blocking baseline", f"{ratio:.0f}×", ratio >= 100),
        _target(f"p99 lag ≤ interval + 2 s = {r.poll_interval + 2} s", f"{lag_p99:.2f} s",
                lag_p99 <= r.poll_interval + 2),
        _target("Exactly 1 create per job", creates, set(calls.creates_per_job) == {1}),
        _target(f"Polls ≤ ideal + 1 = {ideal + 1:g}", f"max {max(calls.polls)}", over == 0),
        _target("Shortest poll gap ≥ 5 s", gap, calls.shortest_gap >= 5),
        _target(f"Status p99 ≤ 50 ms at {status.browsers} browsers", f"{status_p99 * 1000:.1f} ms",
                status_p99 <= 0.050),
        _target(f"Worker RSS ≤ 300 MB at {flight.jobs} in flight",
                f"{flight.worker_peak.rss / MB:.0f} MB (+{flight.worker_peak.helpers_rss / MB:.0f} MB of ffmpeg)",
                flight.worker_peak.rss <= 300 * MB),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


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
