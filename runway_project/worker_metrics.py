"""The worker's `/metrics`, on WORKER_METRICS_PORT, behind the same bearer token as the web's.

A Celery worker serves no HTTP, so it gets a small server of its own, started when the worker is
ready and stopped when it shuts down (Celery's signals; videos/apps.py imports this module). It
shows what this worker counted (runway_project/metrics.py: its Runway requests, its polls' lag),
the polls it holds, and its process's CPU and memory. prometheus-client's own server has no
authentication: this one is its WSGI exposition behind presents_metrics_token, which compares in
constant time.

With CELERY_WORKER_POOL=prefork the tasks run in child processes: set PROMETHEUS_MULTIPROC_DIR
for the worker (a directory of its own, not the web tier's), which it empties as it starts, and
the scrape adds the children's counts up.
"""

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery import signals
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runway_project import liveness, metrics
from runway_project.monitoring import presents_metrics_token

logger = logging.getLogger("videos.worker")

StartResponse = Callable[..., Any]


class HeldPolls(Collector):
    """How many jobs' polls this worker's poller keeps (videos/services/polling.py), and how long
    since it last took a message (runway_project/liveness.py)."""

    def collect(self) -> Iterable[Metric]:
        from videos.services import polling

        held = GaugeMetricFamily(f"{metrics.NAMESPACE}_polls_held", "Jobs whose next poll this worker holds.")
        held.add_metric([], polling.polls_held())
        yield held
        taken_at = liveness.last_message_at()
        if taken_at is not None:
            age = GaugeMetricFamily(
                f"{metrics.NAMESPACE}_worker_last_message_age_seconds",
                "Seconds since this worker last took a message from the broker (it pings itself every 10 s).",
            )
            age.add_metric([], max(0.0, time.time() - taken_at))
            yield age


def metrics_app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """GET /metrics with `Authorization: Bearer <METRICS_TOKEN>`; 401 without it, 404 elsewhere."""
    if environ.get("PATH_INFO") != "/metrics":
        return _plain(start_response, "404 Not Found", "Not found: the metrics are at /metrics.\n")
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return _plain(start_response, "405 Method Not Allowed", "GET only.\n", [("Allow", "GET, HEAD")])
    if not presents_metrics_token(WSGIRequest(environ)):
        challenge = [("WWW-Authenticate", 'Bearer realm="metrics"')]
        return _plain(start_response, "401 Unauthorized", "A bearer token is needed.\n", challenge)
    body, content_type = metrics.exposition(metrics.scrape_registry([HeldPolls()]), environ.get("HTTP_ACCEPT", ""))
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body] if environ["REQUEST_METHOD"] == "GET" else []


def _plain(
    start_response: StartResponse, status: str, text: str, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *(headers or [])]
    )
    return [body]


class _Quiet(WSGIRequestHandler):
    """No line on stderr per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress never holds the worker's exit


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """The HTTP server in a thread of its own; `port` is the one it listens on."""

    def __init__(self, address: str, port: int) -> None:
        server_class = _Server6 if ":" in address else _Server
        self.server = make_server(address, port, metrics_app, server_class=server_class, handler_class=_Quiet)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics-http", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


_server: MetricsServer | None = None


def metrics_server_start() -> MetricsServer | None:
    """Serve /metrics on WORKER_METRICS_PORT, unless it or METRICS_TOKEN is unset; a port that
    cannot be had is logged, and the worker goes on without metrics rather than not at all."""
    global _server
    port, address = settings.WORKER_METRICS_PORT, settings.WORKER_METRICS_ADDRESS
    if not port or not settings.METRICS_TOKEN:
        logger.info("Metrics: none served (WORKER_METRICS_PORT and METRICS_TOKEN open them)")
        return None
    try:
        _server = MetricsServer(address, port)
    except OSError as exc:
        logger.error("Metrics: could not listen on %s port %s (%s); this worker serves none", address, port, exc)
        return None
    logger.info("Metrics: /metrics on %s port %s, for the bearer of METRICS_TOKEN", address, _server.port)
    return _server


def metrics_server_stop() -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None


@signals.worker_init.connect
def clear_multiprocess_files(**kwargs: Any) -> None:
    """A prefork worker's children count in PROMETHEUS_MULTIPROC_DIR: emptied before they start."""
    directory = metrics.multiprocess_dir()
    if directory:
        metrics.multiprocess_files_clear(directory)


@signals.worker_ready.connect
def start_serving_metrics(**kwargs: Any) -> None:
    metrics_server_start()


@signals.worker_shutdown.connect
def stop_serving_metrics(**kwargs: Any) -> None:
    metrics_server_stop()
