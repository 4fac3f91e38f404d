"""Sending task messages (services.queue) when the broker is down or hangs: every path that
enqueues answers quickly and without a server error, the job is saved and waits, and the sweep
sends its message once the broker is back, even to a broker that restarted empty.

The broker here is real: a redis-server of the test's own behind a TCP proxy, killed, cut or
frozen (harness/faults.py). The in-process Celery app is pointed at it for the test.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO

import pytest
import requests
import responses
from celery import current_app
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from harness.faults import RedisServer, TcpProxy, celery_broker
from harness.stack import CeleryBeat, CeleryWorker, Gunicorn, database_url
from runway_simulator import RunwaySimulator
from tests.conftest import Broker
from tests.stack import LOG_DIR, stack_environment
from videos.models import Status, VideoGeneration
from videos.services import account, queue, recovery

pytestmark = pytest.mark.django_db(transaction=True)

DASHBOARD = "/videos/"
CHANGELIST = "/admin/videos/videogeneration/"
TASK_ID = "acf9ba3d-a513-42c9-a646-96e8bc97c691"
# A refused broker answers in milliseconds (the bound leaves room for a loaded 2-core machine); a
# frozen one after the timeouts (one retry of CELERY_BROKER_TIMEOUT, 1 s, plus the reconnect's):
# nothing waits for a retry loop.
REFUSED_WITHIN = 2.0
FROZEN_WITHIN = 4.0


@dataclass
class Outage:
    """The test's broker: a private redis-server behind a proxy, to break and mend."""

    server: RedisServer
    proxy: TcpProxy
    url: str

    def messages(self) -> Broker:
        return Broker(f"redis://127.0.0.1:{self.server.port}/0", current_app.conf.task_default_queue)

    def back(self) -> None:
        """The broker answers again (a killed server restarts empty) and the pause is over."""
        if self.server.process is None:
            self.server.start()
        self.proxy.restore()
        queue._pause.end()


@pytest.fixture
def outage() -> Iterator[Outage]:
    server = RedisServer(log_dir=LOG_DIR).start()
    proxy = TcpProxy(server.port)
    url = f"redis://127.0.0.1:{proxy.port}/0"
    try:
        with celery_broker(url):
            yield Outage(server, proxy, url)
    finally:
        proxy.close()
        server.close()


@pytest.fixture(params=["killed", "frozen"])
def broken(request, outage) -> tuple[Outage, float]:
    """The broker killed (connections refused) or frozen (accepting, never answering); and how long a send may take."""
    if request.param == "killed":
        outage.server.kill()
        return outage, REFUSED_WITHIN
    outage.proxy.freeze()
    return outage, FROZEN_WITHIN


@contextmanager
def within(seconds: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    took = time.monotonic() - started
    assert took < seconds, f"took {took:.2f} s, more than {seconds} s"


def sweep_later() -> int:
    """The sweep as beat runs it once the broker is back: every job overdue by then is sent again."""
    return recovery.generation_sweep(now=timezone.now() + timedelta(minutes=3))


# --- The form, the page's script, and the command ---------------------------------------------------


def test_the_form_saves_the_job_and_says_it_waits_when_the_broker_is_down(alice, broken):
    outage, bound = broken
    with within(bound):
        response = alice.post(DASHBOARD, {"prompt": "A lighthouse in a storm"})

    assert response.status_code == 302
    job = VideoGeneration.objects.get()
    assert (job.status, job.prompt) == (Status.QUEUED, "A lighthouse in a storm")
    page = alice.get(DASHBOARD).content.decode()
    assert queue.QUEUE_DOWN_MESSAGE in page
    assert "Queued" in page

    outage.back()
    assert sweep_later() == 1
    assert [(m.name, m.args) for m in outage.messages().tasks()] == [("videos.tasks.submit", [job.pk, 0])]


def test_the_page_script_gets_its_card_and_a_notice_when_the_broker_is_down(alice, outage):
    outage.server.kill()
    response = alice.post(DASHBOARD, {"prompt": "A lighthouse in a storm"}, headers={"accept": "application/json"})

    assert response.status_code == 201
    answer = response.json()
    assert answer["notice"] == queue.QUEUE_DOWN_MESSAGE
    assert "Queued" in answer["html"]


def test_a_healthy_broker_gets_the_message_at_once_and_no_notice(alice, outage):
    response = alice.post(DASHBOARD, {"prompt": "A lighthouse in a storm"}, headers={"accept": "application/json"})

    assert "notice" not in response.json()
    job = VideoGeneration.objects.get()
    assert [(m.name, m.args) for m in outage.messages().tasks()] == [("videos.tasks.submit", [job.pk, 0])]


def test_after_one_failed_send_the_next_requests_do_not_wait_on_a_hanging_broker(alice, outage):
    outage.proxy.freeze()
    alice.post(DASHBOARD, {"prompt": "First"})  # pays the timeouts once

    with within(0.5):
        for prompt in ("Second", "Third"):
            assert alice.post(DASHBOARD, {"prompt": prompt}).status_code == 302
    assert VideoGeneration.objects.filter(status=Status.QUEUED).count() == 3

    outage.back()
    assert sweep_later() == 3  # an empty broker after the outage: the rows say what is due


def test_the_command_saves_the_job_and_says_it_waits_when_the_broker_is_down(outage, admin_user):
    outage.server.kill()
    out, err = StringIO(), StringIO()
    with within(REFUSED_WITHIN):
        call_command("generate_video", "A lighthouse in a storm", stdout=out, stderr=err)

    job = VideoGeneration.objects.get()
    assert out.getvalue().strip() == str(job.pk)
    assert queue.QUEUE_DOWN_MESSAGE in err.getvalue()
    assert job.status == Status.QUEUED


# --- What users do to a job ----------------------------------------------------------------------


@pytest.fixture
def running(make_job):
    return make_job(status=Status.RUNNING, runway_task_id=TASK_ID, progress=40, step=3, next_check_at=timezone.now())


def test_cancel_is_done_and_the_delete_at_runway_waits_for_the_broker(alice, running, broken):
    outage, bound = broken
    with within(bound), responses.RequestsMock():  # and not one call to Runway
        response = alice.post(f"/videos/{running.pk}/cancel/", follow=True)

    assert response.status_code == 200
    assert queue.QUEUE_DOWN_MESSAGE in response.content.decode()
    job = VideoGeneration.objects.get(pk=running.pk)
    assert (job.status, job.cancel_pending) == (Status.CANCELLED, True)

    outage.back()
    assert sweep_later() == 1
    assert [m.name for m in outage.messages().tasks()] == ["videos.tasks.cancel_at_runway"]


def test_delete_hides_the_job_and_its_cleanup_waits_for_the_broker(alice, make_job, broken):
    outage, bound = broken
    done = make_job(status=Status.SUCCEEDED, runway_task_id=TASK_ID, progress=100, step=5)
    with within(bound):
        response = alice.post(f"/videos/{done.pk}/delete/", follow=True)

    assert response.status_code == 200
    assert queue.QUEUE_DOWN_MESSAGE in response.content.decode()
    assert VideoGeneration.objects.get(pk=done.pk).delete_pending
    assert not VideoGeneration.objects.visible().filter(pk=done.pk).exists()

    outage.back()
    assert sweep_later() == 1
    assert [m.name for m in outage.messages().tasks()] == ["videos.tasks.cancel_at_runway"]


@pytest.mark.parametrize("action", ["retry", "rerun"])
def test_try_again_and_rerun_make_the_new_job_and_it_waits_for_the_broker(alice, make_job, outage, action):
    failed = make_job(status=Status.FAILED, step=2)
    outage.server.kill()
    with within(REFUSED_WITHIN):
        response = alice.post(f"/videos/{failed.pk}/{action}/", follow=True)

    assert response.status_code == 200
    assert queue.QUEUE_DOWN_MESSAGE in response.content.decode()
    new = VideoGeneration.objects.exclude(pk=failed.pk).get()
    assert (new.status, new.seed) == (Status.QUEUED, failed.seed)

    outage.back()
    assert sweep_later() == 1
    assert [(m.name, m.args) for m in outage.messages().tasks()] == [("videos.tasks.submit", [new.pk, 0])]


# --- Staff --------------------------------------------------------------------------------------


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize("action", ["cancel", "poll_now", "delete_selected"])
def test_admin_actions_are_done_and_their_steps_wait_for_the_broker(staff, running, broken, action):
    outage, bound = broken
    data = {"action": action, "_selected_action": [running.pk]}
    if action == "delete_selected":
        running.status = Status.FAILED
        running.save()
        data["post"] = "yes"  # the confirmation page's answer
    with within(bound):
        response = staff.post(CHANGELIST, data, follow=True)

    assert response.status_code == 200
    assert queue.QUEUE_DOWN_MESSAGE in response.content.decode()
    outage.back()
    assert sweep_later() == 1
    expected = "videos.tasks.poll" if action == "poll_now" else "videos.tasks.cancel_at_runway"
    assert [m.name for m in outage.messages().tasks()] == [expected]


# --- The sweep and the credit balance ------------------------------------------------------------


def test_the_sweep_tries_the_broker_once_and_leaves_every_job_overdue_while_it_is_down(make_job, outage):
    jobs = [make_job(next_check_at=timezone.now() - timedelta(minutes=5)) for _ in range(5)]
    outage.proxy.freeze()

    with within(FROZEN_WITHIN):
        assert sweep_later() == 0
    later = timezone.now() + timedelta(minutes=3)
    assert set(VideoGeneration.objects.overdue(later)) == set(jobs)  # still due, for the next sweep

    outage.back()
    assert sweep_later() == 5


def test_the_sweep_tries_the_broker_even_right_after_a_failed_send(make_job, outage):
    job = make_job(next_check_at=timezone.now() - timedelta(minutes=5))
    outage.server.kill()
    assert sweep_later() == 0
    outage.server.start()  # back, but this process's pause is still on
    assert queue.queue_unreachable()

    assert sweep_later() == 1
    assert [m.args for m in outage.messages().tasks()] == [[job.pk, 0]]
    assert not queue.queue_unreachable()


def test_a_stale_credit_balance_does_not_fail_the_page_when_the_broker_hangs(alice, outage, settings):
    outage.proxy.freeze()
    with within(FROZEN_WITHIN):
        assert alice.get(DASHBOARD).status_code == 200
        assert account.credit_balance_request_refresh() is False


# --- The real stack: gunicorn, a worker and beat, with the broker killed and started again -------


@pytest.mark.stack
def test_a_job_posted_while_redis_is_down_is_made_once_redis_is_back(user, outage, settings):
    simulator = RunwaySimulator(task_seconds=0.0, api_key=settings.RUNWAY_API_KEY).start()
    env = stack_environment(simulator, max_wait=300, db_url=database_url())
    env.update(CELERY_BROKER_URL=outage.url, RUNWAY_SWEEP_INTERVAL="2")
    processes = [
        CeleryWorker(env, log_dir=LOG_DIR),
        CeleryBeat(env, log_dir=LOG_DIR),
        Gunicorn(env, log_dir=LOG_DIR, workers=1),
    ]
    worker, beat, web = processes
    try:
        web.wait_until_ready()
        worker.wait_until_ready()
        browser = HttpsBrowser(web, user)
        # The web worker's first page (imports, templates, its database connection) is not the broker's time.
        assert browser.get("/videos/").status_code == 200
        outage.server.kill()

        with within(REFUSED_WITHIN):
            answer = browser.post("/videos/", {"prompt": "A lighthouse in a storm"})
        assert answer.status_code == 302, answer.text[:500]
        job = VideoGeneration.objects.get()
        assert job.status == Status.QUEUED
        assert queue.QUEUE_DOWN_MESSAGE in browser.get("/videos/").text

        outage.server.start()  # empty: the message was never sent
        deadline = time.monotonic() + 60
        while not VideoGeneration.objects.get(pk=job.pk).is_final:
            assert time.monotonic() < deadline, "\n".join(p.tail() for p in processes)
            time.sleep(0.2)
        job.refresh_from_db()
        assert job.status == Status.SUCCEEDED, job.message
        assert simulator.creates == 1
        assert all(process.running() for process in processes)  # nobody restarted
    finally:
        for process in processes:
            process.stop()
        simulator.stop()


class HttpsBrowser:
    """A logged-in browser talking to gunicorn as if through an HTTPS proxy (the session made here)."""

    def __init__(self, web: Gunicorn, user: User) -> None:
        client = Client()
        client.force_login(user)
        self.base = web.base_url
        self.cookies = {"sessionid": client.cookies["sessionid"].value}
        self.headers = {"X-Forwarded-Proto": "https", "Referer": f"https://{web.base_url.split('//')[1]}/videos/"}

    def get(self, path: str) -> requests.Response:
        answer = requests.get(self.base + path, headers=self._headers(), allow_redirects=False, timeout=10)
        self.cookies.update(answer.cookies.get_dict())
        return answer

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        if "csrftoken" not in self.cookies:
            self.get(path)
        data = {**data, "csrfmiddlewaretoken": self.cookies["csrftoken"]}
        answer = requests.post(self.base + path, data, headers=self._headers(), allow_redirects=False, timeout=10)
        self.cookies.update(answer.cookies.get_dict())
        return answer

    def _headers(self) -> dict[str, str]:
        return {**self.headers, "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
