"""What a process counts for Prometheus, and how a scrape reads it.

The series a process keeps itself are the Runway requests it made (videos/runway.py) and how late
its polls went out (videos/services/polling.py, steps.py): counters and histograms of
prometheus-client's default registry. Under gunicorn, each web process counts on its own: with
PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py empties it as gunicorn starts), prometheus-client
keeps the counts in files there and a scrape adds every process's up, whichever process answers.

Everything else (jobs, overdue steps, the queue, credits, webhooks) is read from the database and
the broker when a scrape asks (videos/services/metrics.py): never kept in a process, so it is the
same whichever process answers, and nothing is lost when one restarts.

Labels are bounded: a Runway endpoint is its route (`/v1/tasks/{id}`, never the task's id), an
outcome one of OUTCOMES, a model one of the model table's.
"""

import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

NAMESPACE = "videos"

# No `_created` series beside each counter and histogram: a series more for each, that no query here reads.
disable_created_metrics()  # type: ignore[no-untyped-call]

# A Runway request's outcome: its status class (429, Runway's "slow down", apart from other 4xx),
# or why no answer came.
OUTCOMES = ("2xx", "3xx", "429", "4xx", "5xx", "timeout", "connection_error", "error")

RUNWAY_REQUESTS = Counter(
    "runway_requests",
    "Requests to Runway's API, by route, method and outcome (status class, timeout, connection_error).",
    ["endpoint", "method", "outcome"],
    namespace=NAMESPACE,
)
# Runway answers a poll in a quarter second, a create in about as long; a request gives up after
# 5 s to connect and 30 s to answer.
RUNWAY_SECONDS = Histogram(
    "runway_request_duration_seconds",
    "Seconds a request to Runway's API took, answered or not, by route and method.",
    ["endpoint", "method"],
    namespace=NAMESPACE,
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
# A poll is due every RUNWAY_POLL_INTERVAL (5 s at least); a second late is a busy worker, an
# interval late the sweep's business (`held`: the worker's poller sent it; `broker`: a poll step
# that came through the broker).
POLL_LAG = Histogram(
    "poll_lag_seconds",
    "Seconds between when a job's poll was due and when the worker sent it, by how it came (held, broker).",
    ["via"],
    namespace=NAMESPACE,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


def outcome_of(status: int) -> str:
    """The outcome label of an HTTP status."""
    return "429" if status == 429 else f"{min(max(status // 100, 2), 5)}xx"


# Each route's children, found once: `labels()` costs more than the count itself, on every poll.
_runway_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def runway_request_observe(*, endpoint: str, method: str, outcome: str, seconds: float) -> None:
    key = (endpoint, method, outcome)
    children = _runway_children.get(key)
    if children is None:
        counter = RUNWAY_REQUESTS.labels(endpoint=endpoint, method=method, outcome=outcome)
        children = _runway_children[key] = (counter, RUNWAY_SECONDS.labels(endpoint=endpoint, method=method))
    children[0].inc()
    children[1].observe(seconds)


def poll_lag_observe(*, via: str, seconds: float) -> None:
    POLL_LAG.labels(via=via).observe(max(0.0, seconds))


def multiprocess_dir() -> str:
    """PROMETHEUS_MULTIPROC_DIR (prometheus-client reads it as it starts), or empty."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class _ThisProcess(Collector):
    """The default registry's series (this process's own counts, and its CPU, memory and file
    descriptors), read into a scrape's registry beside the collectors made for that scrape."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_registry(collectors: Iterable[Collector] = ()) -> CollectorRegistry:
    """A registry for one scrape: what this process (or, in multiprocess mode, every process
    writing to PROMETHEUS_MULTIPROC_DIR) counted, and `collectors`, read at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    for collector in collectors:
        registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The registry's series in the format the scraper asked for (`Accept`: OpenMetrics, or
    Prometheus' text format by default), and its content type."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def multiprocess_files_clear(directory: str) -> int:
    """Remove prometheus-client's files (`*.db`) from a multiprocess directory, as its processes
    start: counts of an earlier run would otherwise be added to this run's. Returns how many."""
    removed = 0
    for name in _db_files(directory):
        os.remove(os.path.join(directory, name))
        removed += 1
    return removed


def _db_files(directory: str) -> Iterator[str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    yield from (name for name in names if name.endswith(".db"))
