"""Two installations on one real Redis, each with its own database and its own worker, as two
checkouts of a developer or two small teams on one broker run them.

Left to their defaults, each takes its own queue (runway_project/installation.py) and neither ever
sees the other's messages. Made to share one (the same CELERY_QUEUE in both), each worker still
touches only its own jobs: the other's messages are said loudly in its log, reported by its
installation's health check, and handed back until the right worker takes them, so every job of
both still ends, each with one create.
"""

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import environ
import psycopg
import pytest
from django.conf import settings
from django.db import connection

from harness.stack import CeleryWorker, database_url
from runway_project.installation import database_description, default_queue
from runway_simulator import RunwaySimulator
from tests.stack import LOG_DIR, RedisBroker, production_environment

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(settings.BASE_DIR)
JOBS_EACH = 3


@dataclass
class Installation:
    """One installation: its database, its settings (production's, no CELERY_QUEUE unless given) and its worker."""

    name: str
    database: str  # DATABASE_URL
    env: dict[str, str]
    worker: CeleryWorker | None = None

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def start_worker(self) -> CeleryWorker:
        self.worker = CeleryWorker(self.env, log_dir=LOG_DIR)
        self.worker.wait_until_ready(seconds=60)
        return self.worker

    @property
    def description(self) -> str:
        """Its database, as runway_project.installation names it."""
        return database_description(environ.Env.db_url_config(self.database))

    @property
    def queue(self) -> str:
        return self.env.get("CELERY_QUEUE") or default_queue(self.description)

    def health(self) -> dict[str, object]:
        report: dict[str, object] = json.loads(self.manage("health", "--json").stdout)
        return report


def installation(name: str, database: str, simulator: RunwaySimulator, *, queue: str = "") -> Installation:
    env = production_environment(database_url=database, runway_url=simulator.base_url, poll_interval=5)
    env.pop("CELERY_QUEUE")  # the default: named after the database
    if queue:
        env["CELERY_QUEUE"] = queue
    return Installation(name, database, env)


@pytest.fixture
def second_database(tmp_path) -> Iterator[str]:
    """The database of a second installation, migrated: a SQLite file of its own, or a database of
    its own on the same PostgreSQL server as the tests'."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        url = f"sqlite:///{tmp_path / 'second.sqlite3'}"
        name = None
    else:
        name = f"{db['NAME']}_second_{uuid.uuid4().hex[:8]}"
        server = {"host": db["HOST"] or "localhost", "port": db["PORT"] or 5432, "user": db["USER"]}
        with psycopg.connect(dbname="postgres", password=db["PASSWORD"] or None, autocommit=True, **server) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgres://{db['USER']}:{db['PASSWORD']}@{server['host']}:{server['port']}/{name}"
    env = production_environment(database_url=url)
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    try:
        yield url
    finally:
        if name is not None:
            with psycopg.connect(
                dbname="postgres", password=db["PASSWORD"] or None, autocommit=True, **server
            ) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def simulator() -> Iterator[RunwaySimulator]:
    """One Runway account for both installations (its own clock: its tasks end by themselves)."""
    with RunwaySimulator(task_seconds=2.0, api_key=settings.RUNWAY_API_KEY) as sim:
        yield sim


def make_owners(first: Installation, second: Installation) -> None:
    for each in (first, second):
        code = f"from django.contrib.auth.models import User; User.objects.create_user({each.name!r})"
        made = each.manage("shell", "--no-imports", "-c", code)
        assert made.returncode == 0, made.stderr


def make_jobs(each: Installation) -> list[int]:
    """JOBS_EACH videos made with the README's command, owned by the installation's user."""
    ids = []
    for number in range(JOBS_EACH):
        made = each.manage("generate_video", f"A lighthouse for {each.name}, take {number}", "--user", each.name)
        assert made.returncode == 0, made.stdout + made.stderr
        ids.append(int(made.stdout.split()[0]))
    return ids


def statuses(each: Installation, ids: list[int]) -> dict[int, tuple[str, str]]:
    code = (
        "import json; from videos.models import VideoGeneration as V; "
        f"print(json.dumps({{v.pk: [v.status, v.runway_task_id] for v in V.objects.filter(pk__in={ids})}}))"
    )
    found = each.manage("shell", "--no-imports", "-c", code)
    assert found.returncode == 0, found.stderr
    return {int(pk): (status, task) for pk, (status, task) in json.loads(found.stdout).items()}


def wait_until_ended(installations: list[Installation], ids: dict[str, list[int]], seconds: float) -> dict[str, dict]:
    deadline = time.monotonic() + seconds
    while True:
        seen = {each.name: statuses(each, ids[each.name]) for each in installations}
        ended = ("succeeded", "failed", "cancelled", "timed_out")
        if all(status in ended for jobs in seen.values() for status, _ in jobs.values()):
            return seen
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {each.name}:\n{each.worker.tail() if each.worker else ''}" for each in installations)
            pytest.fail(f"not every job ended in {seconds} s: {seen}\n{logs}")
        time.sleep(0.5)


def run_both(first: Installation, second: Installation, simulator: RunwaySimulator) -> dict[str, dict]:
    broker = {each.name: RedisBroker(settings.CELERY_BROKER_URL, each.queue) for each in (first, second)}
    with ExitStack() as cleanup:
        for each in (first, second):
            broker[each.name].forget()  # an earlier run's leftovers
            cleanup.callback(broker[each.name].forget)
            cleanup.callback(lambda each=each: each.worker.kill() if each.worker else None)
            each.start_worker()
        ids = {each.name: make_jobs(each) for each in (first, second)}
        return wait_until_ended([first, second], ids, seconds=120)


def test_two_installations_on_one_redis_each_take_their_own_queue_and_only_their_own_jobs(second_database, simulator):
    first = installation("ana", database_url(), simulator)
    second = installation("bob", second_database, simulator)
    make_owners(first, second)
    assert first.queue != second.queue
    creates_before = simulator.creates

    ended = run_both(first, second, simulator)

    assert {status for jobs in ended.values() for status, _ in jobs.values()} == {"succeeded"}, ended
    assert simulator.creates - creates_before == 2 * JOBS_EACH  # one create each
    for each in (first, second):
        log = each.worker.log.read_text(errors="replace")
        said = re.search(
            r"Taking work from queue '([^']+)' \(this installation's own, named after its database \((.+)\)\)$",
            log,
            re.M,
        )
        assert said and said.group(1) == each.queue, log[-3000:]
        assert said.group(2) == each.description
        assert "from another installation" not in log
        assert each.health()["checks"]["queue"]["ok"] is True


def test_two_installations_made_to_share_a_queue_say_so_and_still_finish_every_job(second_database, simulator):
    shared = f"shared-{uuid.uuid4().hex[:8]}"
    first = installation("ana", database_url(), simulator, queue=shared)
    second = installation("bob", second_database, simulator, queue=shared)
    make_owners(first, second)
    creates_before = simulator.creates

    ended = run_both(first, second, simulator)

    # Nothing lost and nothing paid twice: each worker touched only its own installation's jobs.
    assert {status for jobs in ended.values() for status, _ in jobs.values()} == {"succeeded"}, ended
    assert simulator.creates - creates_before == 2 * JOBS_EACH
    tasks = [task for jobs in ended.values() for _, task in jobs.values()]
    assert len(set(tasks)) == 2 * JOBS_EACH
    logs = {each.name: each.worker.log.read_text(errors="replace") for each in (first, second)}
    stray = r"Received videos\.tasks\.\w+\(.*?\) from another installation \(its database: (.+?)\) on queue"
    told = {name: re.findall(stray, log) for name, log in logs.items()}
    assert any(told.values()), "with one queue between them, some messages reached the wrong worker"
    for each, other in ((first, second), (second, first)):
        assert set(told[each.name]) <= {other.description}
        queue_check = each.health()["checks"]["queue"]
        if told[each.name]:
            assert queue_check["ok"] is False and queue_check["strays"] >= len(told[each.name]), queue_check
            assert queue_check["strays_from"] == other.description
