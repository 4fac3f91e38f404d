"""The "done" email end to end: the form's tick, a real Celery worker that makes the video at the
Runway simulator over HTTP, and the mail it sends to a real SMTP server (aiosmtpd)."""

import time
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings

from runway_simulator import RunwaySimulator
from tests.mailserver import MailServer
from tests.stack import Worker, running_worker
from videos.models import JobEvent, Status, VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def mail() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=2.0, api_key=django_settings.RUNWAY_API_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, simulator, mail) -> Iterator[Worker]:
    with running_worker(
        django_db_blocker,
        simulator,
        max_wait=60,
        EMAIL_URL=f"smtp://127.0.0.1:{mail.port}",
        DEFAULT_FROM_EMAIL="videos@example.com",
        SITE_URL="https://videos.example.com",
    ) as worker:
        yield worker


def test_the_owner_who_ticked_the_box_is_mailed_once_when_the_video_is_done(client, user, worker, mail, settings):
    settings.EMAIL_CONFIGURED = True  # the web side: the form offers the box
    user.email = "alice@example.com"
    user.save()
    client.force_login(user)
    mail.inbox.received.clear()

    assert client.post("/videos/", {"prompt": "A quiet harbour at dawn"}).status_code == 302
    assert client.post("/videos/", {"prompt": "A fox in the snow", "notify": "on"}).status_code == 302
    quiet, told = VideoGeneration.objects.filter(owner=user).order_by("pk")
    for job in (quiet, told):
        assert worker.wait_for(job.pk, seconds=60).status == Status.SUCCEEDED
    deadline = time.monotonic() + 30
    while not JobEvent.objects.filter(generation=told, mailed_at__isnull=False).exists() or not mail.inbox.received:
        assert time.monotonic() < deadline, f"no mail within 30 s\n{worker.tail()}"
        time.sleep(0.1)

    [(recipients, message)] = mail.inbox.received
    assert recipients == ["alice@example.com"]
    assert message["Subject"] == f"Your video #{told.pk} is ready"  # type: ignore[index]
    assert message["From"] == "videos@example.com"  # type: ignore[index]
    assert f"https://videos.example.com/videos/{told.pk}/" in message.get_payload()  # type: ignore[attr-defined]
    assert JobEvent.objects.get(generation=quiet).mailed_at is None
