"""A database that vanishes for a while (a restart, a failover) with jobs in flight, on the real
stack: the worker, beat and gunicorn reach PostgreSQL through a TCP proxy that the test cuts and
restores. Pages answer a clear 503 meanwhile; the worker and beat ride it out without a restart;
every job finishes, and no video is created twice.

PostgreSQL only: the SQLite default is a file beside the app, which does not go away like this.
"""

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from api.services import api_key_create
from harness.faults import TcpProxy
from harness.stack import Gunicorn, database_url
from runway_simulator import ManualClock, RunwaySimulator
from tests.stack import LOG_DIR, Beat, Worker, stack_environment
from videos.catalog import VideoRequest
from videos.models import Status, VideoGeneration
from videos.services import creation
from videos.services.steps import UNCONFIRMED_CODE

pytestmark = [
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="a database server to cut off: PostgreSQL (DATABASE_URL=postgres://...)",
    ),
]

MAX_WAIT = 300


class Outage:
    """The test's processes, whose database is PostgreSQL behind a proxy the test can cut."""

    def __init__(self, simulator: RunwaySimulator) -> None:
        self.simulator = simulator
        self.proxy = TcpProxy(int(connection.settings_dict["PORT"] or 5432))
        self.db_url = re.sub(r"@[^/]+/", f"@127.0.0.1:{self.proxy.port}/", database_url())
        self.processes: list[Worker | Beat | Gunicorn] = []

    def worker(self) -> Worker:
        worker = Worker(self.simulator, max_wait=MAX_WAIT, db_url=self.db_url)
        self.processes.append(worker)
        return worker

    def beat(self) -> Beat:
        beat = Beat(self.simulator, max_wait=MAX_WAIT, db_url=self.db_url, sweep_interval=2)
        self.processes.append(beat)
        return beat

    def web(self) -> Gunicorn:
        env = stack_environment(self.simulator, max_wait=MAX_WAIT, db_url=self.db_url)
        web = Gunicorn(env, log_dir=LOG_DIR, workers=2)
        self.processes.append(web)
        web.wait_until_ready()
        return web

    def logs(self) -> str:
        return "\n".join(f"--- {process.log.name}:\n{process.tail()}" for process in self.processes)

    def wait(self, what: str, condition: Callable[[], bool], *, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {seconds} s\n{self.logs()}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proxy.close()
        for process in reversed(self.processes):
            process.stop()
        self.simulator.stop()


@pytest.fixture
def make_outage() -> Iterator[Callable[..., Outage]]:
    """Start the simulator (with the given options) and return an Outage around it; all stopped at the end."""
    made: list[Outage] = []

    def make(**options: Any) -> Outage:
        simulator = RunwaySimulator(api_key=settings.RUNWAY_API_KEY, **options).start()
        made.append(Outage(simulator))
        return made[-1]

    yield make
    for outage in made:
        outage.stop()


def browser_headers(user: User) -> dict[str, str]:
    """What a logged-in browser sends over HTTPS behind a proxy: the session made here, in the shared database."""
    client = Client()
    client.force_login(user)
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}", "X-Forwarded-Proto": "https"}


def retries_logged(process: Worker) -> int:
    return len(re.findall(r"found no database .*; trying again in \d+ s", process.log.read_text(errors="replace")))


def test_jobs_in_flight_ride_out_a_database_outage_while_pages_answer_503(user, make_outage, settings):
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 100
    clock = ManualClock()
    outage = make_outage(task_seconds=10.0, clock=clock)
    worker, beat, web = outage.worker(), outage.beat(), outage.web()
    dashboard = f"{web.base_url}/videos/"
    headers = browser_headers(user)
    ids = [creation.generation_create(owner=user, request=VideoRequest(prompt=f"Scene {i}")).pk for i in range(10)]
    outage.wait(
        "every job made at Runway",
        lambda: VideoGeneration.objects.filter(pk__in=ids, status=Status.PENDING).count() == 10,
        seconds=60,
    )

    key = api_key_create(user=user).key
    task = f"{web.base_url}/v1/tasks/{VideoGeneration.objects.get(pk=ids[0]).public_id}"
    script = {"Authorization": f"Bearer {key}", "X-Runway-Version": "2024-11-06", "X-Forwarded-Proto": "https"}

    outage.proxy.cut()
    clock.advance(10.0)  # the videos are made at Runway while our database is away
    page = requests.get(dashboard, headers=headers, timeout=10)
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "30"
    assert "The site cannot reach its database right now" in page.text
    assert "Traceback" not in page.text
    answer = requests.get(task, headers=script, timeout=10)  # the API's own 503, in Runway's shape
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    assert "database" in answer.json()["error"] and "Traceback" not in answer.text
    # The outage is felt: polls fail on the database and are tried again later.
    outage.wait("steps retried during the outage", lambda: retries_logged(worker) >= 3, seconds=60)
    outage.proxy.restore()

    outage.wait(
        "every job done after the outage",
        lambda: VideoGeneration.objects.filter(pk__in=ids, status=Status.SUCCEEDED).count() == 10,
        seconds=120,
    )
    assert outage.simulator.creates == 10
    assert len(set(VideoGeneration.objects.filter(pk__in=ids).values_list("runway_task_id", flat=True))) == 10
    assert worker.running() and beat.running() and web.running()  # rode it out: no process restarted
    assert requests.get(dashboard, headers=headers, timeout=10).status_code == 200
    assert requests.get(task, headers=script, timeout=10).json()["status"] == "SUCCEEDED"


def test_a_create_answered_while_the_database_is_away_is_recorded_once_it_is_back(user, make_outage):
    outage = make_outage(task_seconds=2.0)
    # Runway takes two seconds to answer the create: the database goes in between.
    outage.simulator.set_network(latency=2.0)
    worker = outage.worker()
    job = creation.generation_create(owner=user, request=VideoRequest(prompt="A lighthouse in a storm"))
    outage.wait("the create sent", lambda: outage.simulator.creates == 1, seconds=30)
    outage.proxy.cut()

    outage.wait(
        "the unrecorded task handed to a message",
        lambda: "not recorded yet" in worker.log.read_text(errors="replace"),
        seconds=30,
    )
    outage.proxy.restore()
    outage.simulator.set_network(latency=0.0)

    outage.wait("the job done", lambda: VideoGeneration.objects.get(pk=job.pk).is_final, seconds=90)
    job.refresh_from_db()
    assert (job.status, job.failure_code) == (Status.SUCCEEDED, "")
    assert outage.simulator.creates == 1
    created = [r for r in list(outage.simulator.requests) if r.method == "POST"]
    assert len(created) == 1
    assert job.runway_task_id and job.video_file
    assert worker.running()
    assert UNCONFIRMED_CODE not in worker.log.read_text(errors="replace")
