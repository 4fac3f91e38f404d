"""What the API's requests cost next to the form's, and how many task GETs a server answers.

    python -m bench.api_cost      # PostgreSQL of BENCH_DATABASE_URL, Redis of BENCH_BROKER_URL

1. Per request, in this process (Django's test client, no network): wall and CPU milliseconds
   (median and 95th percentile) and database queries of a form post, an API create, an API task
   GET and the page's status GET. The creates' messages go to a Redis queue of the run's own.
2. Requests per second of GET /v1/tasks/{id} from gunicorn (the Deployment section's command),
   with CLIENTS threads: on loopback, and through a TCP proxy that adds FIELD_LATENCY each way,
   as a script on the internet would be (then more clients keep the server as busy). gunicorn's
   sync workers read each request themselves, so a client 50 ms away holds a worker 50 ms: the
   reason production puts a buffering proxy (nginx) in front.

Production settings (DEBUG off); the database is a test database made for the run and dropped.
"""

import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import django
import redis

ROUNDS = 300
CLIENTS = 16
FIELD_CLIENTS = 64
FIELD_LATENCY = 0.05  # seconds each way: a 100 ms round trip
SECONDS = 10.0
BODY = {"model": "gen4.5", "promptText": "A lighthouse in a storm", "ratio": "1280:720", "duration": 5}


def configure() -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "runway_project.settings",
            "DEBUG": "False",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://127.0.0.1:5432/postgres"),
            "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14"),
            "CELERY_QUEUE": f"bench-api-{secrets.token_hex(4)}",
            "MEDIA_ROOT": tempfile.mkdtemp(prefix="runway-bench-api-"),
            "RUNWAY_API_KEY": "key_" + secrets.token_hex(64),
            "RUNWAY_MAX_ACTIVE_PER_USER": str(10**9),
            "RUNWAY_DAILY_LIMIT_PER_USER": str(10**9),
            "RUNWAY_MONTHLY_BUDGET_PER_USER": str(10**9),
            "API_RATE_LIMIT_PER_MINUTE": str(10**9),
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "LOG_LEVEL": "WARNING",
        }
    )


def timed(action: Callable[[], Any]) -> dict[str, float]:
    """Median and 95th percentile of wall and CPU milliseconds, and queries, of `action`."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    wall, cpu, queries = [], [], []
    for _ in range(ROUNDS):
        connection.queries_log.clear()  # it keeps 9,000: past that, a count would be wrong
        with CaptureQueriesContext(connection) as captured:
            started, started_cpu = time.perf_counter(), time.process_time()
            action()
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        queries.append(len(captured))
    wall.sort()
    cpu.sort()
    return {
        "wall_ms": statistics.median(wall),
        "wall_p95_ms": wall[int(len(wall) * 0.95)],
        "cpu_ms": statistics.median(cpu),
        "cpu_p95_ms": cpu[int(len(cpu) * 0.95)],
        "queries": statistics.median(queries),
    }


def per_request(key: str, user: Any) -> tuple[dict[str, dict[str, float]], str]:
    from django.test import Client

    from videos.models import VideoGeneration

    api = {"Authorization": f"Bearer {key}", "X-Runway-Version": "2024-11-06"}
    browser = Client()
    browser.force_login(user)
    script = Client()

    def form_post() -> None:
        data = {
            "prompt": BODY["promptText"],
            "model": "gen4.5",
            "ratio": "1280:720",
            "duration": 5,
            "token": uuid.uuid4(),
        }
        assert browser.post("/videos/", data, secure=True, HTTP_ACCEPT="application/json").status_code == 201

    def api_create() -> None:
        response = script.post(
            "/v1/text_to_video", json.dumps(BODY), content_type="application/json", secure=True, headers=api
        )
        assert response.status_code == 200, response.content

    task = script.post("/v1/text_to_video", json.dumps(BODY), content_type="application/json", secure=True, headers=api)
    task_id = task.json()["id"]
    job = VideoGeneration.objects.get(public_id=task_id)

    def api_get() -> None:
        assert script.get(f"/v1/tasks/{task_id}", secure=True, headers=api).status_code == 200

    def page_status() -> None:
        assert browser.get(f"/videos/{job.pk}/status/", secure=True).status_code == 200

    figures = {"form post": timed(form_post), "API create": timed(api_create)}
    figures["API task GET"] = timed(api_get)
    figures["page status GET"] = timed(page_status)
    return figures, task_id


def hammer(url: str, headers: dict[str, str], clients: int) -> dict[str, float]:
    """GET `url` from `clients` threads, back to back, for SECONDS: requests a second and latency."""
    import requests

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    until = time.monotonic() + SECONDS

    def client() -> None:
        session = requests.Session()
        mine, failed = [], 0
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                ok = session.get(url, headers=headers, timeout=10).status_code == 200
            except requests.RequestException:
                ok = False
            mine.append((time.perf_counter() - started) * 1000)
            failed += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {
        "rps": len(latencies) / SECONDS,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "errors": errors[0],
    }


def served(key: str, task_id: str) -> dict[str, dict[str, float]]:
    from bench import LOG_DIR
    from harness.faults import TcpProxy
    from harness.stack import Gunicorn, database_url

    workers = 2 * (os.cpu_count() or 1) + 1
    server = Gunicorn({**os.environ, "DATABASE_URL": database_url()}, log_dir=LOG_DIR, workers=workers)
    server.wait_until_ready()
    headers = {"Authorization": f"Bearer {key}", "X-Runway-Version": "2024-11-06", "X-Forwarded-Proto": "https"}
    proxy = TcpProxy(server.port, latency=FIELD_LATENCY)
    try:
        path = f"/v1/tasks/{task_id}"
        hammer(server.base_url + path, headers, 2)  # each worker's connection opened
        return {
            f"loopback, {CLIENTS} clients": hammer(server.base_url + path, headers, CLIENTS),
            f"{FIELD_LATENCY * 2000:.0f} ms round trip, {FIELD_CLIENTS} clients": hammer(
                f"http://127.0.0.1:{proxy.port}{path}", headers, FIELD_CLIENTS
            ),
        }
    finally:
        proxy.close()
        server.stop()


def main() -> None:
    configure()
    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    from api.services import api_key_create

    setup_test_environment()
    names = setup_databases(verbosity=0, interactive=False)
    try:
        # The test database is the one to serve; the processes started below connect to it by name.
        user = User.objects.create_user("bench", password=secrets.token_urlsafe(20))
        key = api_key_create(user=user).key
        figures, task_id = per_request(key, user)
        print(f"Per request, in-process, {ROUNDS} rounds (median / p95):")
        for name, row in figures.items():
            print(
                f"  {name:16} {row['wall_ms']:6.2f} / {row['wall_p95_ms']:6.2f} ms wall   "
                f"{row['cpu_ms']:6.2f} / {row['cpu_p95_ms']:6.2f} ms CPU   {row['queries']:.0f} queries"
            )
        print(f"GET /v1/tasks/{{id}} from gunicorn, {SECONDS:.0f} s each:")
        for name, row in served(key, task_id).items():
            print(
                f"  {name:32} {row['rps']:7.0f} requests/s   p50 {row['p50_ms']:6.1f} ms   "
                f"p99 {row['p99_ms']:6.1f} ms   {row['errors']:.0f} errors"
            )
        sys.stdout.flush()
    finally:
        teardown_databases(names, verbosity=0)
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)


if __name__ == "__main__":
    main()
