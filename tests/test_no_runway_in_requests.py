"""No web request waits on Runway: with every outgoing connection cut off, except to the database
server and the broker that the test process itself uses, every page and every action answers, and
nothing tries to reach Runway."""

import errno
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import responses
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from videos.models import CreditBalance, Status, VideoGeneration

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/videos/videogeneration/"
PASSWORD = "a-long-test-password"


class NetworkCut:
    """Every outgoing connection refused, and noted, except to the addresses allowed; and `runway`,
    a mock of Runway with no answers, which notes any request made through `requests`."""

    runway: responses.RequestsMock

    def __init__(self, allowed: list[tuple[str, int]], unix_prefix: str | None) -> None:
        self.allowed = set(allowed)
        for host, port in allowed:  # the same servers by address, resolved once here
            self.allowed.update((info[4][0], port) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        self.unix_prefix = unix_prefix
        self.refused: list[object] = []

    def check(self, address: Any) -> None:
        if isinstance(address, str | bytes):  # a Unix socket
            path = address.decode() if isinstance(address, bytes) else address
            if self.unix_prefix and path.startswith(self.unix_prefix):
                return
        elif (address[0], address[1]) in self.allowed:
            return
        self.refused.append(address)
        raise OSError(errno.ENETUNREACH, f"No network in this test: a connection to {address!r} was attempted")


def _servers_the_tests_need() -> tuple[list[tuple[str, int]], str | None]:
    """The database server (when it is one: SQLite is a file) and the broker, from the test settings."""
    allowed = []
    database = settings.DATABASES["default"]
    host, unix_prefix = str(database.get("HOST") or ""), None
    if host.startswith("/"):
        unix_prefix = host
    elif host:
        allowed.append((host, int(database.get("PORT") or 5432)))
    broker = urlsplit(settings.CELERY_BROKER_URL)
    if broker.hostname:
        allowed.append((broker.hostname, broker.port or 6379))
    return allowed, unix_prefix


@pytest.fixture
def network_cut(monkeypatch) -> Iterator[NetworkCut]:
    cut = NetworkCut(*_servers_the_tests_need())
    real_connect, real_connect_ex, real_create = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.create_connection,
    )

    def connect(sock: socket.socket, address: Any) -> None:
        cut.check(address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        cut.check(address)
        return real_connect_ex(sock, address)

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        cut.check(address)  # by name, before any lookup of it
        return real_create(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as runway:  # nothing registered: any call fails
        cut.runway = runway
        yield cut


def test_the_cut_refuses_runway_and_anything_else_and_lets_the_broker_through(network_cut, broker):
    with pytest.raises(requests.ConnectionError):
        requests.get("https://runway.test/v1/organization", timeout=1)
    assert len(network_cut.runway.calls) == 1
    with pytest.raises(OSError, match="No network in this test"):
        socket.create_connection(("api.dev.runwayml.com", 443), timeout=1)
    with pytest.raises(OSError, match="No network in this test"), socket.socket() as sock:
        sock.connect(("127.0.0.1", 9))
    with pytest.raises(OSError, match="No network in this test"), socket.socket() as sock:
        sock.connect_ex(("127.0.0.1", 9))
    assert len(network_cut.refused) == 3
    broker.redis.ping()  # the broker's own connection is allowed


@pytest.fixture
def jobs(make_job, stored_video) -> dict[str, VideoGeneration]:
    """A job in every state the pages show, with its files where it has them."""
    poster = default_storage.save("posters/test/p.jpg", ContentFile(b"\xff\xd8jpeg\xff\xd9"))
    image = default_storage.save("inputs/test/first.png", ContentFile(b"\x89PNG\r\n\x1a\n" + b"\0" * 32))
    made: dict[str, VideoGeneration] = {
        status.value: make_job(
            prompt=f"a job {status.value}",
            status=status,
            runway_task_id="" if status in (Status.QUEUED, Status.SUBMITTING) else f"task-{status.value}",
            next_check_at=timezone.now(),
        )
        for status in Status
    }
    made["done_with_files"] = make_job(
        prompt="a finished video",
        status=Status.SUCCEEDED,
        runway_task_id="task-done",
        video_file=stored_video,
        poster=poster,
        progress=100,
        finished_at=timezone.now(),
    )
    made["poster_to_come"] = make_job(status=Status.SUCCEEDED, runway_task_id="task-p", poster_pending=True)
    made["cancelling"] = make_job(status=Status.CANCELLED, runway_task_id="task-c", cancel_pending=True)
    made["timed_out_cancelling"] = make_job(status=Status.TIMED_OUT, runway_task_id="task-t", cancel_pending=True)
    made["from_an_image"] = make_job(status=Status.FAILED, endpoint="image_to_video", model="gen4_turbo", image=image)
    made["deleting"] = make_job(
        status=Status.SUCCEEDED, runway_task_id="task-d", cancel_pending=True, delete_pending=True
    )
    return made


def expect(response: Any, status: int, text: str = "") -> None:
    assert response.status_code == status, (response.status_code, getattr(response, "url", ""))
    if hasattr(response, "streaming_content"):
        assert b"".join(response.streaming_content)
    elif text:
        assert text in response.content.decode(), text


def test_every_page_and_action_answers_without_the_network(
    network_cut, jobs, user, admin_user, broker, settings, django_capture_on_commit_callbacks
):
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 100  # the walk makes new jobs beside the many it starts with
    user.set_password(PASSWORD)
    user.save()
    shown = [job for job in jobs.values() if not job.delete_pending]

    with django_capture_on_commit_callbacks(execute=True):  # what is enqueued after commit goes to the broker
        _walk_as_the_owner(Client(), shown, jobs)
        _walk_as_staff(Client(), admin_user, jobs)

    assert network_cut.refused == []
    assert len(network_cut.runway.calls) == 0
    assert broker.tasks(), "the actions enqueued their work for the worker (the broker was reachable)"


def _walk_as_the_owner(client: Client, shown: list[VideoGeneration], jobs: dict[str, VideoGeneration]) -> None:
    expect(client.get("/accounts/login/"), 200, "Log in")
    expect(client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}), 302)
    expect(client.get("/"), 302)

    expect(client.get("/videos/"), 200, "Runway credits:")  # none read yet: "checking…", and the worker is asked
    CreditBalance.objects.update_or_create(pk=CreditBalance.ONLY, defaults={"credits": 1, "fetched_at": timezone.now()})
    for query in ("", "?status=active", "?status=succeeded", "?status=failed", "?page=2", "?q=storm+lighthouse"):
        expect(client.get(f"/videos/{query}"), 200, "Generate Videos")
    expect(client.get("/videos/account/"), 200, "This month:")
    expect(client.get("/favicon.ico"), 301)
    for job in shown:
        expect(client.get(f"/videos/{job.pk}/"), 200, job.prompt)
        expect(client.get(f"/videos/{job.pk}/status/"), 200, '"status_label"')
    expect(client.get("/videos/status/", {"ids": ",".join(str(job.pk) for job in shown)}), 200, '"status_label"')
    expect(client.get(f"/videos/{jobs['deleting'].pk}/"), 404)
    done = jobs["done_with_files"]
    expect(client.get(f"/videos/{done.pk}/video.mp4"), 200)
    expect(client.get(f"/videos/{done.pk}/poster.jpg"), 200)

    expect(client.post("/videos/", {"prompt": "A new one"}), 302)
    expect(client.post("/videos/", {"prompt": "And as JSON"}, HTTP_ACCEPT="application/json"), 201)
    expect(client.post("/videos/", {"prompt": ""}), 400, "cannot be empty")
    expect(client.post(f"/videos/{done.pk}/rerun/"), 302)
    expect(client.post(f"/videos/{done.pk}/rerun/", {"seed": "new"}), 302)
    expect(client.post(f"/videos/{jobs['failed'].pk}/retry/"), 302)
    expect(client.post(f"/videos/{jobs['from_an_image'].pk}/retry/"), 302)
    for status in ("running", "queued"):
        expect(client.post(f"/videos/{jobs[status].pk}/cancel/", follow=True), 200, "cancelled")
    expect(client.post(f"/videos/{jobs['succeeded'].pk}/cancel/", follow=True), 200, "already ended")
    for name in ("done_with_files", "timed_out", "queued"):  # at Runway, or never there
        expect(client.post(f"/videos/{jobs[name].pk}/delete/", follow=True), 200, "The video was deleted.")
    expect(client.post(f"/videos/{jobs['pending'].pk}/delete/", follow=True), 200, "Cancel this video before")
    expect(client.post("/accounts/logout/"), 302)


def _walk_as_staff(client: Client, admin_user: Any, jobs: dict[str, VideoGeneration]) -> None:
    client.force_login(admin_user)
    expect(client.get("/admin/"), 200, "Videos")
    expect(client.get(CHANGELIST), 200, "Deleting…")  # staff still see the job being deleted
    for query in ("?status__exact=running", "?work=waiting", "?work=due", "?work=overdue", "?work=none", "?q=task"):
        expect(client.get(f"{CHANGELIST}{query}"), 200, "Select video generation to view")
    for job in VideoGeneration.objects.all():
        expect(client.get(f"{CHANGELIST}{job.pk}/change/"), 200, "Bookkeeping")
    expect(client.get(f"/videos/{jobs['deleting'].pk}/video.mp4"), 404)  # it has no file; staff may still ask

    everyone = list(VideoGeneration.objects.values_list("pk", flat=True))
    expect(client.post(CHANGELIST, {"action": "poll_now", "_selected_action": everyone}, follow=True), 200, "queued")
    expect(client.post(CHANGELIST, {"action": "cancel", "_selected_action": everyone}, follow=True), 200, "cancelled")
    expect(client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": everyone}), 200, "Are you sure")
    expect(client.get("/admin/videos/usageday/"), 200, "Check against Runway now")
    expect(client.post("/admin/videos/usageday/check/", follow=True), 200, "reading Runway")
    one = VideoGeneration.objects.filter(delete_pending=False).first()
    assert one is not None
    expect(client.get(f"{CHANGELIST}{one.pk}/delete/"), 200, "Are you sure")
    expect(client.post(f"{CHANGELIST}{one.pk}/delete/", {"post": "yes"}, follow=True), 200)
    form = {"action": "delete_selected", "_selected_action": everyone, "post": "yes"}
    expect(client.post(CHANGELIST, form, follow=True), 200, "deleted")
    assert not VideoGeneration.objects.visible().exists()  # all cancelled above, so all deleted now
