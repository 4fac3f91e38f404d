"""A real Prometheus (Debian's `prometheus`) scrapes a production gunicorn and a real worker, each
with METRICS_TOKEN, while a job goes through the simulator; its HTTP API is then asked for the
series, the dashboard's queries and the alert rules. promtool checks both /metrics, the rules and
the example configuration. Without Prometheus these tests skip, unless TEST_PROMETHEUS_REQUIRED is
set (CI sets it: .ci/run installs Prometheus)."""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from django.conf import settings

from harness.processes import Process, free_port, wait_for_port
from harness.stack import Gunicorn, database_url
from runway_simulator import RunwaySimulator
from tests.stack import LOG_DIR, Worker, production_environment
from videos.models import CreditBalance, SpendEntry, Status, VideoGeneration
from videos.services import account

BASE_DIR = Path(settings.BASE_DIR)
ALERTS = BASE_DIR / "deploy" / "prometheus" / "alerts.yml"
EXAMPLE_CONFIG = BASE_DIR / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = BASE_DIR / "deploy" / "grafana" / "dashboard.json"
TOKEN = "prometheus-test-token-0123456789"
DEADLINE = 90.0  # seconds for Prometheus to see a figure: scrapes every second, on a loaded machine


def required(binary: str) -> str:
    """The path of one of Prometheus' binaries; the test skips without it, or fails where it is required."""
    path = shutil.which(binary)
    if path is None:
        reason = f"`{binary}` is not installed (apt-get install prometheus)"
        if os.environ.get("TEST_PROMETHEUS_REQUIRED"):
            pytest.fail(reason + " (TEST_PROMETHEUS_REQUIRED is set)")
        pytest.skip(reason)
    return path


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [required("promtool"), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


# --- The files in deploy/ ----------------------------------------------------------------------


def shipped_rules() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_the_alert_rules_pass_promtool():
    checked = promtool("check", "rules", str(ALERTS))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(shipped_rules())} rules found" in checked.stdout


def test_the_example_scrape_configuration_passes_promtool(tmp_path):
    (tmp_path / "token").write_text(TOKEN)
    config = EXAMPLE_CONFIG.read_text().replace("/etc/prometheus/runway-metrics-token", str(tmp_path / "token"))
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(ALERTS, tmp_path / "alerts.yml")

    checked = promtool("check", "config", str(tmp_path / "prometheus.yml"))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    jobs = [job["job_name"] for job in yaml.safe_load(config)["scrape_configs"]]
    assert jobs == ["runway-web", "runway-worker"]


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_the_dashboards_queries_are_promql_that_promtool_accepts(tmp_path):
    # promtool checks expressions inside rules: each query becomes a recording rule.
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"q:{n}", "expr": e} for n, e in enumerate(dashboard_queries())]}
        ]
    }
    (tmp_path / "dashboard-rules.yml").write_text(yaml.safe_dump(rules))

    checked = promtool("check", "rules", str(tmp_path / "dashboard-rules.yml"))

    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- A real Prometheus, scraping a real gunicorn and worker ------------------------------------


class Prometheus(Process):
    """`prometheus` with its own configuration and storage, on a free loopback port."""

    def __init__(self, folder: Path, *, web: str, worker: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        shutil.copy(ALERTS, folder / "alerts.yml")
        scrape = {"metrics_path": "/metrics", "authorization": {"type": "Bearer", "credentials": TOKEN}}
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": ["alerts.yml"],
            "scrape_configs": [
                {"job_name": "runway-web", **scrape, "static_configs": [{"targets": [web]}]},
                {"job_name": "runway-worker", **scrape, "static_configs": [{"targets": [worker]}]},
            ],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        command = [
            required("prometheus"),
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        super().__init__("prometheus", command, dict(os.environ), log_dir=LOG_DIR)

    def wait_until_ready(self, *, seconds: float = 60) -> None:
        wait_for_port(self.port, self, seconds=seconds)
        self.until(lambda: requests.get(f"{self.base_url}/-/ready", timeout=5).status_code == 200, "ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result (a vector's samples), failing on a query Prometheus refuses."""
        answer = requests.get(f"{self.base_url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (expr, answer)
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The one sample of `expr` now, or None while it has none."""
        result = self.query(expr)
        assert len(result) <= 1, (expr, result)
        return float(result[0]["value"][1]) if result else None

    def until(self, holds: Callable[[], bool], what: str, *, seconds: float = DEADLINE) -> None:
        deadline = time.monotonic() + seconds
        while not holds():
            if time.monotonic() > deadline or not self.running():
                pytest.fail(f"Prometheus: {what} did not hold within {seconds} s; its log ends:\n{self.tail()}")
            time.sleep(0.25)

    def until_value(self, expr: str, expected: float) -> None:
        self.until(lambda: self.value(expr) == expected, f"{expr} == {expected} (last: {self.value(expr)})")


def scrape(url: str) -> str:
    response = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """The processes a test starts, stopped (killed: none has anything to finish) after it."""
    started: list[Process] = []
    yield started
    for process in reversed(started):
        process.kill()


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_prometheus_scrapes_the_web_and_the_worker_and_sees_the_jobs_requests_and_credits(
    client, user, make_job, tmp_path, processes
):
    required("prometheus")
    multiprocess = tmp_path / "web-metrics"
    multiprocess.mkdir()
    (multiprocess / "counter_999999.db").write_bytes(b"an earlier run's counts")
    make_job(status=Status.FAILED, model="gen4_turbo")
    make_job(status=Status.FAILED, model="gen4_turbo")

    with RunwaySimulator(task_seconds=2.0, api_key=settings.RUNWAY_API_KEY) as simulator:
        worker_port = free_port()
        worker = Worker(
            simulator,
            max_wait=60,
            db_url=database_url(),
            METRICS_TOKEN=TOKEN,
            WORKER_METRICS_PORT=str(worker_port),
            WORKER_METRICS_ADDRESS="127.0.0.1",
        )
        processes.append(worker)
        env = production_environment(
            database_url=database_url(), METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(multiprocess)
        )
        web = Gunicorn(env, log_dir=LOG_DIR, workers=2)
        processes.append(web)
        web.wait_until_ready()
        worker.wait_until_ready()
        worker.wait_for_log(r"Metrics: /metrics on 127\.0\.0\.1 port", seconds=30)
        prometheus = Prometheus(tmp_path, web=f"127.0.0.1:{web.port}", worker=f"127.0.0.1:{worker_port}")
        processes.append(prometheus)
        prometheus.wait_until_ready()

        client.force_login(user)
        assert client.post("/videos/", {"prompt": "A lighthouse in a storm", "model": "gen4.5"}).status_code == 302
        job = worker.wait_for(VideoGeneration.objects.get(owner=user, model="gen4.5").pk, seconds=60)
        assert job.status == Status.SUCCEEDED, job.message or job.last_error
        account.credit_balance_request_refresh()  # the worker reads the balance from the simulator
        balance = wait_for_balance(worker)

        for job_name in ("runway-web", "runway-worker"):
            prometheus.until_value(f'up{{job="{job_name}"}}', 1)
        prometheus.until_value('videos_jobs{status="succeeded",model="gen4.5"}', 1)
        prometheus.until_value('videos_jobs{status="failed",model="gen4_turbo"}', 2)
        prometheus.until_value('videos_runway_requests_total{endpoint="/v1/text_to_video",outcome="2xx"}', 1)
        prometheus.until(
            lambda: (
                (prometheus.value('videos_runway_requests_total{endpoint="/v1/tasks/{id}",method="GET"}') or 0) >= 1
            ),
            "a poll counted",
        )
        prometheus.until(lambda: (prometheus.value('videos_poll_lag_seconds_count{via="held"}') or 0) >= 1, "poll lag")
        # The worker pings itself every 10 s: a live one took a message within about 20 s.
        prometheus.until(
            lambda: 0 <= (prometheus.value("videos_worker_last_message_age_seconds") or -1) < 30, "a recent message"
        )
        prometheus.until_value("videos_runway_credit_balance", balance)
        spent = SpendEntry.objects.filter(generation_number=job.pk).credits()
        prometheus.until_value('videos_credits_spent_month{model="gen4.5"}', spent)
        prometheus.until_value("videos_overdue_steps", 0)
        prometheus.until_value(f'videos_queue_messages{{queue="{settings.CELERY_TASK_DEFAULT_QUEUE}"}}', 0)
        prometheus.until_value('videos_webhook_deliveries{state="pending"}', 0)
        prometheus.until_value('videos_metrics_source_up{source="database"}', 1)
        p95 = prometheus.value(
            'histogram_quantile(0.95, sum by (le) (videos_runway_request_duration_seconds_bucket{job="runway-worker"}))'
        )
        assert p95 is not None and 0 < p95 < 60

        for expr in dashboard_queries():
            prometheus.query(expr)  # each one Prometheus accepts, against real series
        prometheus.until(lambda: rules_evaluated(prometheus), "every alert rule evaluated without error")
        firing = 'ALERTS{alertstate="firing",alertname=~"WorkerMetricsDown|WebMetricsDown|WorkerNotConsuming"}'
        assert not prometheus.query(firing)

        for url in (f"{web.base_url}/metrics", f"http://127.0.0.1:{worker_port}/metrics"):
            checked = promtool("check", "metrics", stdin=scrape(url))
            assert checked.returncode == 0, (url, checked.stdout + checked.stderr)
        assert not (multiprocess / "counter_999999.db").exists()  # gunicorn.conf.py emptied the folder
        assert requests.get(f"{web.base_url}/metrics", timeout=10).status_code == 401


def wait_for_balance(worker: Worker) -> float:
    deadline = time.monotonic() + 30
    while (row := CreditBalance.objects.filter(fetched_at__isnull=False).first()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"the worker never read the credit balance; its log ends:\n{worker.tail()}")
        time.sleep(0.2)
    assert row.credits is not None and row.credits > 0
    return float(row.credits)


def rules_evaluated(prometheus: Prometheus) -> bool:
    groups = requests.get(f"{prometheus.base_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(shipped_rules())  # every rule loaded
    return all(rule["health"] == "ok" for rule in rules)
