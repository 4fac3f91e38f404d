"""Health for operators (services.health, /healthz, `manage.py health`), against real services: the
test database and Redis when healthy; a private redis-server killed, and TCP proxies frozen or cut
in front of Redis and PostgreSQL, when not."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from harness.faults import RedisServer, TcpProxy, redis_server_available
from harness.stack import Gunicorn, database_url
from tests.stack import production_environment
from videos import tasks
from videos.models import LastSweep, Status, VideoGeneration
from videos.services import health, recovery

pytestmark = pytest.mark.django_db
LOG_DIR = Path(settings.BASE_DIR) / "var"
# The broker check gives up after CELERY_BROKER_TIMEOUT (1 s); this leaves room for the rest.
ANSWER_WITHIN = 3.0
# What a monitor shows to read /healthz's details (settings.METRICS_TOKEN, set by `monitor`).
METRICS_TOKEN = "tests-metrics-token-" + "7" * 24
MONITOR = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def swept(seconds_ago: float = 0) -> None:
    """As if beat's sweep had run to the end `seconds_ago`."""
    recovery.generation_sweep(now=timezone.now() - timedelta(seconds=seconds_ago))


def late(job: VideoGeneration, *, due_seconds_ago: float) -> VideoGeneration:
    VideoGeneration.objects.filter(pk=job.pk).update(next_check_at=timezone.now() - timedelta(seconds=due_seconds_ago))
    return job


def checks(report: health.HealthReport) -> dict[str, health.Check]:
    return {check.name: check for check in report.checks}


@pytest.fixture
def monitor(client, settings):
    """The test client, as a monitor that holds METRICS_TOKEN and shows it."""
    settings.METRICS_TOKEN = METRICS_TOKEN
    client.defaults["HTTP_AUTHORIZATION"] = MONITOR["Authorization"]
    return client


# --- The sweep notes when it ran -------------------------------------------------------------


def test_a_sweep_notes_when_it_ran_and_how_many_jobs_it_put_back_to_work(make_job, broker):
    make_job(status=Status.RUNNING, runway_task_id="t-1", step=2, next_check_at=timezone.now() - timedelta(minutes=5))
    make_job(status=Status.QUEUED, next_check_at=timezone.now() - timedelta(minutes=5))
    first = timezone.now()

    recovery.generation_sweep(now=first)
    assert (LastSweep.objects.get().ran_at, LastSweep.objects.get().recovered) == (first, 2)

    tasks.sweep_generations.apply(throw=True)  # as beat has a worker run it: nothing left to recover
    last = LastSweep.objects.get()
    assert last.ran_at > first
    assert last.recovered == 0


# --- /healthz ---------------------------------------------------------------------------------


def test_healthz_answers_200_with_every_check_when_all_is_well(monitor, make_job):
    make_job(status=Status.RUNNING, runway_task_id="t-1", next_check_at=timezone.now() + timedelta(seconds=5))
    swept(seconds_ago=30)

    response = monitor.get("/healthz")  # no login: the token

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    assert not response.cookies
    body = response.json()
    assert body["healthy"] is True
    found = body["checks"]
    assert found["database"]["ok"] is True and found["database"]["ms"] >= 0
    assert found["broker"] == {"ok": True, "transport": "redis", "ms": found["broker"]["ms"]}
    assert found["sweep"]["ok"] is True
    assert 30 <= found["sweep"]["age_seconds"] < 60
    assert found["sweep"]["recovered"] == 0
    assert found["sweep"]["stale_after_seconds"] == 3 * settings.RUNWAY_SWEEP_INTERVAL
    assert found["overdue_jobs"] == {"ok": True, "count": 0, "oldest_seconds": None, "overdue_after_seconds": 20}


def test_anyone_is_told_only_up_or_down_with_200_or_503(client, settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    swept()
    up = client.get("/healthz")
    LastSweep.objects.all().delete()  # the sweep never ran: unhealthy
    down = client.get("/healthz")

    assert (up.status_code, up.json()) == (200, {"status": "ok"})
    assert (down.status_code, down.json()) == (503, {"status": "unhealthy"})
    for response in (up, down):
        assert response["Content-Type"] == "application/json"
        assert "no-cache" in response["Cache-Control"]
        for detail in (b"checks", b"redis", b"ms", b"database", b"broker", b"overdue", b"queue"):
            assert detail not in response.content


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer wrong-token", f"Basic {METRICS_TOKEN}", f"Bearer {METRICS_TOKEN}x"],
)
def test_a_missing_or_wrong_token_gets_only_up_or_down(client, settings, authorization):
    settings.METRICS_TOKEN = METRICS_TOKEN
    swept()
    response = client.get("/healthz", HTTP_AUTHORIZATION=authorization)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_with_no_metrics_token_set_nobody_gets_the_details(client, settings):
    settings.METRICS_TOKEN = ""
    swept()
    for authorization in ("", "Bearer ", "Bearer  "):
        response = client.get("/healthz", HTTP_AUTHORIZATION=authorization)
        assert response.json() == {"status": "ok"}


def test_healthz_shows_no_secret(monitor):
    content = monitor.get("/healthz").content.decode()
    assert '"checks"' in content
    assert settings.RUNWAY_API_KEY not in content
    assert settings.CELERY_BROKER_URL not in content
    assert settings.SECRET_KEY not in content


def test_healthz_answers_head_and_refuses_post(client):
    swept()
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_a_sweep_that_never_ran_is_unhealthy(monitor):
    response = monitor.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["healthy"] is False
    assert body["checks"]["sweep"] == {
        "ok": False,
        "last_ran_at": None,
        "age_seconds": None,
        "recovered": None,
        "stale_after_seconds": 180,
    }
    assert all(body["checks"][name]["ok"] for name in ("database", "broker", "overdue_jobs"))


def test_a_sweep_older_than_three_intervals_is_unhealthy(settings):
    settings.RUNWAY_SWEEP_INTERVAL = 60
    ran = timezone.now()
    recovery.generation_sweep(now=ran)

    at_the_limit = checks(health.health_check(now=ran + timedelta(seconds=180)))["sweep"]
    past_it = health.health_check(now=ran + timedelta(seconds=181))

    assert at_the_limit.ok
    assert not past_it.healthy
    assert checks(past_it)["sweep"].figures["age_seconds"] == 181
    assert "last ran 181 s ago" in checks(past_it)["sweep"].summary


def test_jobs_overdue_by_two_poll_intervals_are_unhealthy_with_their_count_and_age(monitor, make_job):
    now = timezone.now()
    recovery.generation_sweep(now=now)  # recovers nothing: no job is due yet
    late(make_job(status=Status.RUNNING, runway_task_id="t-1", step=3), due_seconds_ago=-5)  # not due
    # Late by one interval and a half: the sweep sends it again; not an alarm.
    late(make_job(status=Status.RUNNING, runway_task_id="t-2", step=3), due_seconds_ago=15)
    late(make_job(status=Status.QUEUED), due_seconds_ago=25)
    # A poster waits its turn after the videos: late only once a lost step would be.
    late(make_job(status=Status.SUCCEEDED, poster_pending=True, step=5), due_seconds_ago=95)
    late(make_job(status=Status.SUCCEEDED, poster_pending=True, step=5), due_seconds_ago=125)
    # Claimed three minutes ago and never finished: its worker died.
    stuck = make_job(status=Status.SUBMITTING, step=1, next_check_at=None)
    VideoGeneration.objects.filter(pk=stuck.pk).update(updated_at=now - timedelta(seconds=180))
    late(make_job(status=Status.FAILED), due_seconds_ago=600)  # ended: nothing to do

    report = health.health_check(now=now + timedelta(seconds=1))

    overdue = checks(report)["overdue_jobs"]
    assert not report.healthy
    assert (overdue.ok, overdue.figures["count"], overdue.figures["oldest_seconds"]) == (False, 3, 181)
    assert overdue.summary == "3 job(s) overdue by more than 20 s; the oldest was due 181 s ago"
    assert [check.name for check in report.checks if not check.ok] == ["overdue_jobs"]
    body = monitor.get("/healthz").json()
    assert (body["checks"]["overdue_jobs"]["count"], body["healthy"]) == (3, False)


def test_the_overdue_rule_is_the_sweeps_at_two_poll_intervals(make_job, settings):
    settings.RUNWAY_POLL_INTERVAL = 30
    now = timezone.now()
    sixty_one = late(make_job(status=Status.RUNNING, runway_task_id="t-1"), due_seconds_ago=61)
    late(make_job(status=Status.RUNNING, runway_task_id="t-2"), due_seconds_ago=59)
    assert list(VideoGeneration.objects.long_overdue(now)) == [sixty_one]
    assert VideoGeneration.objects.overdue(now).count() == 2  # the sweep's, unchanged: one interval


# --- The broker, cut and hung -----------------------------------------------------------------


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    if not redis_server_available():
        pytest.skip("needs redis-server")
    server = RedisServer(log_dir=LOG_DIR).start()
    yield server
    server.close()


def timed_report(broker_url: str) -> tuple[float, health.Check]:
    started = time.monotonic()
    report = health.health_check(broker_url=broker_url)
    return time.monotonic() - started, checks(report)["broker"]


def test_a_stopped_broker_is_unhealthy_at_once(private_redis):
    seconds, up = timed_report(private_redis.url)
    assert up.ok, up.summary

    private_redis.kill()
    seconds, down = timed_report(private_redis.url)

    assert not down.ok
    assert seconds < ANSWER_WITHIN
    assert "Connection refused" in str(down.figures["error"])
    assert down.figures["transport"] == "redis"


def test_a_hung_broker_is_unhealthy_within_the_checks_timeout(private_redis):
    proxy = TcpProxy(private_redis.port)
    url = f"redis://127.0.0.1:{proxy.port}/0"
    try:
        assert timed_report(url)[1].ok
        proxy.freeze()  # accepts connections and answers nothing, as a hung server

        seconds, hung = timed_report(url)

        assert not hung.ok
        assert settings.CELERY_BROKER_TIMEOUT <= seconds < ANSWER_WITHIN
        assert "Timeout" in str(hung.figures["error"])
        proxy.restore()
        assert timed_report(url)[1].ok
    finally:
        proxy.close()


def test_the_brokers_password_never_shows(private_redis):
    proxy = TcpProxy(private_redis.port)
    proxy.cut()
    try:
        report = health.health_check(broker_url=f"redis://:hunter2-secret@127.0.0.1:{proxy.port}/0")
    finally:
        proxy.close()
    assert not checks(report)["broker"].ok
    assert "hunter2" not in json.dumps(report.as_json())
    assert "hunter2" not in checks(report)["broker"].summary


# --- Through production's web server ----------------------------------------------------------


def production_env(*, database: str, broker: str) -> dict[str, str]:
    """Production settings (DEBUG off, so HTTPS redirects on) for gunicorn and the command."""
    return production_environment(database_url=database, broker_url=broker, METRICS_TOKEN=METRICS_TOKEN)


def get_healthz(server: Gunicorn, headers: dict[str, str] = MONITOR) -> tuple[float, requests.Response]:
    """/healthz as a monitor asks it (with the token), or as `headers` say."""
    started = time.monotonic()
    response = requests.get(f"{server.base_url}/healthz", headers=headers, timeout=30, allow_redirects=False)
    return time.monotonic() - started, response


@pytest.fixture
def gunicorn_with() -> Iterator[list[Gunicorn]]:
    """The gunicorn servers a test appends, stopped after it."""
    started: list[Gunicorn] = []
    yield started
    for server in started:
        server.stop()


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_production_answers_503_fast_while_the_broker_hangs_and_200_once_it_is_back(private_redis, gunicorn_with):
    swept()  # committed: the server's own database connection sees it
    proxy = TcpProxy(private_redis.port)
    try:
        server = Gunicorn(
            production_env(database=database_url(), broker=f"redis://127.0.0.1:{proxy.port}/0"),
            log_dir=LOG_DIR,
            workers=1,
        )
        gunicorn_with.append(server)
        server.wait_until_ready()
        # Over plain HTTP, with HTTPS redirects on: /healthz is exempt (a redirect would be a 301).
        assert get_healthz(server)[1].status_code == 200, server.tail()

        proxy.freeze()
        seconds, response = get_healthz(server)

        assert response.status_code == 503
        assert seconds < ANSWER_WITHIN
        body = response.json()
        assert body["checks"]["broker"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True
        anyone = get_healthz(server, headers={})[1]  # a load balancer, a stranger
        assert (anyone.status_code, anyone.json()) == (503, {"status": "unhealthy"})
        proxy.restore()
        assert get_healthz(server)[1].status_code == 200
        # Every other page still redirects to HTTPS.
        assert requests.get(f"{server.base_url}/videos/", timeout=10, allow_redirects=False).status_code == 301
    finally:
        proxy.close()


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a proxy in front of the database needs PostgreSQL"
)


@pytest.mark.stack
@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_production_answers_503_json_while_the_database_is_cut_and_the_command_exits_1(gunicorn_with):
    swept()
    db = connection.settings_dict
    proxy = TcpProxy(int(db["PORT"] or 5432), upstream_host=db["HOST"] or "127.0.0.1")
    try:
        env = production_env(
            database=f"postgres://{db['USER']}:{db['PASSWORD']}@127.0.0.1:{proxy.port}/{db['NAME']}",
            broker=settings.CELERY_BROKER_URL,
        )
        server = Gunicorn(env, log_dir=LOG_DIR, workers=1)
        gunicorn_with.append(server)
        server.wait_until_ready()
        assert get_healthz(server)[1].status_code == 200, server.tail()

        proxy.cut()
        seconds, response = get_healthz(server)
        command = subprocess.run(  # noqa: S603 (our own command)
            [sys.executable, "manage.py", "health"], env=env, capture_output=True, text=True, timeout=60
        )

        assert response.status_code == 503, server.tail()
        assert response.headers["Content-Type"] == "application/json"
        body = response.json()
        assert body["checks"]["database"]["ok"] is False
        assert body["checks"]["broker"]["ok"] is True
        assert body["checks"]["sweep"] == {"ok": False, "error": "unknown: the database did not answer"}
        assert seconds < ANSWER_WITHIN
        assert command.returncode == 1, command.stderr
        assert command.stdout.splitlines()[0].startswith("FAIL  database      no answer after")
        assert "ok    broker" in command.stdout
        assert "Traceback" not in command.stderr

        proxy.restore()
        assert get_healthz(server)[1].status_code == 200
    finally:
        proxy.close()


# --- The command ------------------------------------------------------------------------------


def run_health(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("health", *args, stdout=out)
    except SystemExit as exit:
        return int(exit.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_the_command_prints_a_line_per_check_and_exits_0_when_healthy():
    swept(seconds_ago=12)

    code, output = run_health()

    assert code == 0
    lines = output.splitlines()
    assert [line[:20] for line in lines] == [
        "ok    database      ",
        "ok    broker        ",
        "ok    queue         ",
        "ok    sweep         ",
        "ok    overdue_jobs  ",
    ]
    assert lines[2].endswith(
        f"{settings.CELERY_TASK_DEFAULT_QUEUE!r} (CELERY_QUEUE); no message from another installation"
    )
    assert "last ran 12 s ago and recovered 0 job(s); stale after 180 s" in lines[3]
    assert lines[4].endswith("no job overdue by more than 20 s")


def test_the_command_exits_1_and_says_what_failed(make_job):
    late(make_job(status=Status.QUEUED), due_seconds_ago=300)

    code, output = run_health()

    assert code == 1
    assert "FAIL  sweep         never ran" in output
    assert "FAIL  overdue_jobs  1 job(s) overdue by more than 20 s; the oldest was due 300 s ago" in output


def test_the_command_prints_the_same_json_as_healthz_for_machines(monitor):
    swept()

    code, output = run_health("--json")

    assert code == 0
    printed, served = json.loads(output), monitor.get("/healthz").json()
    assert printed["healthy"] is served["healthy"] is True
    assert printed["checks"].keys() == served["checks"].keys()
    assert printed["checks"]["overdue_jobs"] == served["checks"]["overdue_jobs"]
