"""The metrics: /metrics (the token, the format), the figures it reads from the database and the
broker, the worker's own server, and what the Runway client and the poller count.
tests/test_prometheus.py has a real Prometheus scrape a real gunicorn and worker."""

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
import responses
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api.models import ApiKey, DeliveryState, WebhookDelivery
from runway_project import liveness, metrics, worker_metrics
from runway_project.celery import app as celery_app
from tests.conftest import run_next_step
from videos import catalog, runway
from videos.models import CreditBalance, SpendEntry, SpendKind, Status, UserBudget
from videos.services import ledger, polling
from videos.services import metrics as installation

pytestmark = pytest.mark.django_db

TOKEN = "a-metrics-token-for-the-tests"
BASE = "https://runway.test"
TASK_ID = "acf9ba3d-a513-42c9-a646-96e8bc97c691"


@pytest.fixture
def token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics with the token, parsed: each sample's value by its name and labels."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


# --- /metrics: on, off, and who may read it ---------------------------------------------------


def test_metrics_are_off_with_404_while_the_token_is_empty(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"])
def test_metrics_without_the_token_answer_401_with_a_bearer_challenge(client, token, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    response = client.get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"videos_" not in response.content


def test_metrics_answer_prometheus_text_or_openmetrics_as_asked_and_never_cache(client, token):
    plain = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    open_metrics = client.get(
        "/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0"
    )

    assert plain["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-cache" in plain["Cache-Control"]
    assert b"# TYPE videos_jobs gauge" in plain.content
    assert open_metrics["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert open_metrics.content.endswith(b"# EOF\n")
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


# --- The installation's figures ---------------------------------------------------------------


def test_jobs_are_counted_by_status_and_model(client, token, make_job):
    for status in (Status.QUEUED, Status.RUNNING, Status.RUNNING, Status.SUCCEEDED):
        make_job(status=status)
    make_job(status=Status.RUNNING, model="gen4_turbo", endpoint=catalog.IMAGE_TO_VIDEO)

    found = scrape(client)

    assert value(found, "videos_jobs", status="running", model="gen4.5") == 2
    assert value(found, "videos_jobs", status="queued", model="gen4.5") == 1
    assert value(found, "videos_jobs", status="succeeded", model="gen4.5") == 1
    assert value(found, "videos_jobs", status="running", model="gen4_turbo") == 1
    assert sum(v for (name, _), v in found.items() if name == "videos_jobs") == 5


def test_overdue_steps_are_what_healthz_counts_with_the_oldest_age(client, token, make_job, settings):
    now = timezone.now()
    interval = settings.RUNWAY_POLL_INTERVAL
    make_job(status=Status.RUNNING, next_check_at=now - timedelta(seconds=3 * interval))  # long overdue
    make_job(status=Status.RUNNING, next_check_at=now - timedelta(seconds=5 * interval))  # the oldest
    make_job(status=Status.RUNNING, next_check_at=now - timedelta(seconds=interval / 2))  # the sweep's business
    make_job(status=Status.RUNNING, next_check_at=now + timedelta(seconds=interval))

    found = scrape(client)

    assert value(found, "videos_overdue_steps") == 2
    assert 5 * interval <= value(found, "videos_overdue_step_oldest_seconds") < 5 * interval + 30


def spend(user, model: str, credits: int, *, created_at=None) -> None:
    number = SpendEntry.objects.count() + 1
    SpendEntry.objects.create(
        user=user,
        username=user.username if user else "",
        generation_number=number,
        job_created_at=created_at or timezone.now(),
        model=model,
        kind=SpendKind.RESERVED,
        credits=credits,
    )


def test_this_months_spend_is_by_model_and_budgets_are_totals_never_per_user(client, token, settings):
    settings.RUNWAY_MONTHLY_BUDGET_PER_USER = 1000
    users = get_user_model().objects
    light, near, over, _idle = (users.create_user(username=name) for name in ("light", "near", "over", "idle"))
    users.create_user(username="gone", is_active=False)
    UserBudget.objects.create(user=over, monthly_credits=100)
    spend(light, "gen4.5", 100)
    spend(near, "gen4.5", 850)
    spend(over, "gen4_turbo", 120)
    spend(light, "gen4.5", 5000, created_at=ledger.month_start(timezone.now()) - timedelta(days=1))  # last month

    found = scrape(client)

    assert value(found, "videos_credits_spent_month", model="gen4.5") == 950
    assert value(found, "videos_credits_spent_month", model="gen4_turbo") == 120
    # Left: light 900, near 150, over 0 (not below), idle 1000; the inactive user not at all.
    assert value(found, "videos_budget_left_credits") == 900 + 150 + 0 + 1000
    assert value(found, "videos_users_at_budget", threshold="0.8") == 2  # near and over
    assert value(found, "videos_users_at_budget", threshold="1") == 1  # over
    assert not [labels for (_, labels) in found if any(name in ("user", "username") for name, _ in labels)]


def test_runways_credit_balance_shows_once_read_with_its_age(client, token):
    assert value(scrape(client), "videos_runway_credit_balance") is None  # never read yet

    fetched = timezone.now() - timedelta(seconds=90)
    CreditBalance.objects.create(credits=12345, fetched_at=fetched, checked_at=fetched)
    found = scrape(client)

    assert value(found, "videos_runway_credit_balance") == 12345
    assert 90 <= value(found, "videos_runway_credit_balance_age_seconds") < 120


def test_webhook_deliveries_are_counted_by_state_with_the_oldest_pending(client, token, user):
    key = ApiKey.objects.create(user=user, prefix="metrics", hashed="0" * 64, webhook_url="https://hooks.example.com/")
    an_hour_ago = timezone.now() - timedelta(hours=1)
    for state, made in [
        (DeliveryState.PENDING, an_hour_ago),
        (DeliveryState.PENDING, timezone.now()),
        (DeliveryState.DELIVERED, an_hour_ago),
    ]:
        WebhookDelivery.objects.create(
            api_key=key, generation_number=1, url=key.webhook_url, body="{}", state=state, created_at=made
        )

    found = scrape(client)

    assert value(found, "videos_webhook_deliveries", state="pending") == 2
    assert value(found, "videos_webhook_deliveries", state="delivered") == 1
    assert value(found, "videos_webhook_deliveries", state="gave_up") == 0
    assert 3600 <= value(found, "videos_webhook_oldest_pending_seconds") < 3700


def test_the_queue_depth_is_the_messages_waiting_in_the_installations_queue(client, token, broker, settings):
    assert value(scrape(client), "videos_queue_messages", queue=settings.CELERY_TASK_DEFAULT_QUEUE) == 0

    for pk in (1, 2, 3):
        broker.redis.lpush(settings.CELERY_TASK_DEFAULT_QUEUE, f'{{"body": "{pk}"}}')

    found = scrape(client)
    assert value(found, "videos_queue_messages", queue=settings.CELERY_TASK_DEFAULT_QUEUE) == 3
    assert value(found, "videos_metrics_source_up", source="broker") == 1


def test_a_broker_that_does_not_answer_leaves_the_queue_out_and_says_so(token):
    collector = installation.InstallationCollector(broker_url="redis://127.0.0.1:1/0")  # nothing listens there

    found = samples(metrics.exposition(metrics.scrape_registry([collector]), "")[0].decode())

    assert value(found, "videos_metrics_source_up", source="broker") == 0
    assert not [name for name, _ in found if name == "videos_queue_messages"]
    assert value(found, "videos_metrics_source_up", source="database") == 1


def test_a_database_that_fails_leaves_its_figures_out_and_says_so(client, token, monkeypatch, make_job):
    make_job(status=Status.RUNNING)

    def fails(now):
        raise DatabaseError("the database went away")

    monkeypatch.setattr(installation, "budgets", fails)
    found = scrape(client)

    assert value(found, "videos_metrics_source_up", source="database") == 0
    assert not [name for name, _ in found if name == "videos_jobs"]  # none of a half-read database
    assert value(found, "videos_metrics_source_up", source="broker") == 1


# --- What the Runway client counts ------------------------------------------------------------


def counted(endpoint: str, method: str, outcome: str) -> float:
    labels = {"endpoint": endpoint, "method": method, "outcome": outcome}
    return REGISTRY.get_sample_value("videos_runway_requests_total", labels) or 0.0


def timed(endpoint: str, method: str) -> float:
    labels = {"endpoint": endpoint, "method": method}
    return REGISTRY.get_sample_value("videos_runway_request_duration_seconds_count", labels) or 0.0


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


TASK = "/v1/tasks/{id}"


def test_each_runway_request_is_counted_by_route_never_by_task_id(mocked):
    before, before_timed = counted(TASK, "GET", "2xx"), timed(TASK, "GET")
    mocked.get(f"{BASE}/v1/tasks/{TASK_ID}", json={"id": TASK_ID, "status": "RUNNING", "progress": 0.5})

    runway.get_client().get_task(TASK_ID)

    assert counted(TASK, "GET", "2xx") == before + 1
    assert timed(TASK, "GET") == before_timed + 1
    exposed = metrics.exposition(metrics.scrape_registry(), "")[0].decode()
    assert TASK_ID not in exposed


@pytest.mark.parametrize(("status", "outcome"), [(400, "4xx"), (404, "4xx"), (429, "429"), (500, "5xx"), (503, "5xx")])
def test_a_runway_answer_is_counted_by_its_status_class_and_429_apart(mocked, status, outcome):
    before = counted(TASK, "DELETE", outcome)
    mocked.delete(f"{BASE}/v1/tasks/{TASK_ID}", status=status, json={"error": "no"})

    # A 404 to a DELETE is a task already gone: done, not an error, but counted as Runway answered.
    with pytest.raises(runway.RunwayError) if status != 404 else contextlib.nullcontext():
        runway.get_client().delete_task(TASK_ID)

    assert counted(TASK, "DELETE", outcome) == before + 1


@pytest.mark.parametrize(
    ("error", "outcome"),
    [(requests.ConnectTimeout(), "timeout"), (requests.ConnectionError(), "connection_error")],
)
def test_a_runway_request_without_an_answer_is_counted_by_why(mocked, error, outcome):
    before = counted("/v1/text_to_video", "POST", outcome)
    mocked.post(f"{BASE}/v1/text_to_video", body=error)

    with pytest.raises(runway.RunwayError):
        runway.get_client().create_video(endpoint=catalog.TEXT_TO_VIDEO, payload={"model": "gen4.5"})

    assert counted("/v1/text_to_video", "POST", outcome) == before + 1


def test_the_organizations_routes_are_counted_as_they_are(mocked):
    before = counted("/v1/organization", "GET", "2xx")
    mocked.get(f"{BASE}/v1/organization", json={"creditBalance": 100})

    runway.get_client().get_organization()

    assert counted("/v1/organization", "GET", "2xx") == before + 1


def test_a_held_poll_says_how_late_it_went_out():
    def lag_count() -> float:
        return REGISTRY.get_sample_value("videos_poll_lag_seconds_count", {"via": "held"}) or 0.0

    def lag_sum() -> float:
        return REGISTRY.get_sample_value("videos_poll_lag_seconds_sum", {"via": "held"}) or 0.0

    count, total = lag_count(), lag_sum()
    poller = polling.Poller(threads=1, clock=lambda: 100.25)
    poller._running = True
    deadline = timezone.now() + timedelta(minutes=5)
    poller._push(polling.Held(1, 3, TASK_ID, Status.RUNNING, deadline, due=100.0))

    assert [held.generation_id for held in poller._due_now() or []] == [1]
    assert lag_count() == count + 1
    assert lag_sum() - total == pytest.approx(0.25)


def test_a_poll_through_the_broker_says_how_late_its_step_ran(make_job, broker, mocked):
    def lag(sample: str) -> float:
        return REGISTRY.get_sample_value(f"videos_poll_lag_seconds_{sample}", {"via": "broker"}) or 0.0

    count, total = lag("count"), lag("sum")
    due = timezone.now() - timedelta(seconds=3)
    job = make_job(status=Status.RUNNING, runway_task_id=TASK_ID, submitted_at=due, step=2, next_check_at=due)
    mocked.get(f"{BASE}/v1/tasks/{TASK_ID}", json={"id": TASK_ID, "status": "RUNNING", "progress": 0.5})

    assert run_next_step(job).poll_count == 1

    assert lag("count") == count + 1
    assert 3 <= lag("sum") - total < 30


# --- The worker's server ----------------------------------------------------------------------


@pytest.fixture
def worker_server(settings, token) -> Iterator[worker_metrics.MetricsServer]:
    settings.WORKER_METRICS_PORT, settings.WORKER_METRICS_ADDRESS = 0, "127.0.0.1"
    server = worker_metrics.MetricsServer("127.0.0.1", 0)
    yield server
    server.stop()


def test_the_workers_metrics_need_the_token_and_show_its_own_counts(worker_server, mocked):
    url = f"http://127.0.0.1:{worker_server.port}/metrics"
    mocked.add_passthru(url)
    mocked.get(f"{BASE}/v1/tasks/{TASK_ID}", json={"id": TASK_ID, "status": "PENDING"})
    runway.get_client().get_task(TASK_ID)

    missing = requests.get(url, timeout=5)
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    elsewhere = requests.get(url + "/x", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    right = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)

    assert (missing.status_code, wrong.status_code, elsewhere.status_code) == (401, 401, 404)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert right.status_code == 200
    assert right.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = samples(right.text)
    assert value(found, "videos_runway_requests_total", endpoint=TASK, method="GET", outcome="2xx") >= 1
    assert value(found, "videos_polls_held") == 0
    assert value(found, "process_resident_memory_bytes") > 0
    assert not [name for name, _ in found if name == "videos_jobs"]  # the web's, not each worker's


def test_the_workers_metrics_say_how_long_since_it_took_a_message(worker_server, tmp_path, settings):
    settings.WORKER_HEARTBEAT_FILE = str(tmp_path / "heartbeat")
    url = f"http://127.0.0.1:{worker_server.port}/metrics"
    heartbeat = liveness.Heartbeat(celery_app, hostname="w1@host", path=tmp_path / "heartbeat")
    heartbeat.taken_at = time.time() - 42
    liveness._heartbeat = heartbeat
    try:
        scraped = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    finally:
        liveness._heartbeat = None

    assert 42 <= value(samples(scraped.text), "videos_worker_last_message_age_seconds") < 60


def test_the_worker_serves_no_metrics_without_a_port_or_a_token(settings):
    settings.METRICS_TOKEN, settings.WORKER_METRICS_PORT = TOKEN, 0
    assert worker_metrics.metrics_server_start() is None
    settings.METRICS_TOKEN, settings.WORKER_METRICS_PORT = "", 9809
    assert worker_metrics.metrics_server_start() is None


@pytest.mark.parametrize("port", ["70000", "-1", "nine"])
def test_a_worker_metrics_port_that_is_no_port_stops_the_start_up(port):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "runway_project.settings", "DEBUG": "True"}
    command = [sys.executable, "-c", "import django; django.setup()"]

    done = subprocess.run(command, env={**env, "WORKER_METRICS_PORT": port}, capture_output=True, text=True, timeout=60)

    assert done.returncode != 0
    assert "WORKER_METRICS_PORT" in done.stderr


def test_a_port_in_use_leaves_the_worker_running_without_metrics(worker_server, settings, caplog):
    settings.WORKER_METRICS_PORT = worker_server.port

    assert worker_metrics.metrics_server_start() is None
    assert "could not listen" in caplog.text


COUNT_IN_A_PROCESS = """
import sys
from runway_project import metrics
for _ in range(int(sys.argv[1])):
    metrics.runway_request_observe(endpoint="/v1/tasks/{id}", method="GET", outcome="2xx", seconds=0.2)
print(metrics.exposition(metrics.scrape_registry(), "")[0].decode())
"""


def test_in_multiprocess_mode_a_scrape_adds_up_every_processs_counts(tmp_path):
    """As gunicorn's processes do with PROMETHEUS_MULTIPROC_DIR: each counts in its own files, and
    whichever answers the scrape shows the sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "tests.settings"}

    def process(count: int) -> str:
        command = [sys.executable, "-c", COUNT_IN_A_PROCESS, str(count)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True)
        return done.stdout

    process(3)
    found = samples(process(2))

    labels = {"endpoint": TASK, "method": "GET"}
    assert value(found, "videos_runway_requests_total", **labels, outcome="2xx") == 5
    assert value(found, "videos_runway_request_duration_seconds_count", **labels) == 5
    assert value(found, "videos_runway_request_duration_seconds_sum", **labels) == pytest.approx(1.0)
    assert len(list(tmp_path.glob("*.db"))) == 4  # a counter's and a histogram's file for each process


def test_the_multiprocess_folder_loses_only_prometheus_files(tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"old counts")
    (tmp_path / "histogram_456.db").write_bytes(b"old counts")
    (tmp_path / "notes.txt").write_text("not ours")

    assert metrics.multiprocess_files_clear(str(tmp_path)) == 2
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
    assert metrics.multiprocess_files_clear(str(tmp_path / "missing")) == 0


def test_an_outcome_is_a_status_class():
    assert [metrics.outcome_of(s) for s in (200, 204, 301, 400, 429, 499, 500, 504)] == [
        "2xx",
        "2xx",
        "3xx",
        "4xx",
        "429",
        "4xx",
        "5xx",
        "5xx",
    ]
    assert set(metrics.OUTCOMES) >= {"timeout", "connection_error"}
