"""Webhooks end to end: Runway's SDK makes a video through our live server, a real worker (one
slot only, so that anything holding it shows) sends it to the simulator and polls it, and the job's
ending reaches a real receiver signed as Standard Webhooks says, while a receiver that never
answers holds none of the worker's slots."""

import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.utils import timezone
from runwayml import RunwayML
from runwayml.lib import polling
from standardwebhooks.webhooks import Webhook

from api import services
from api.models import DeliveryState, WebhookDelivery
from runway_simulator import RunwaySimulator
from tests.receiver import Receiver
from tests.stack import Worker, running_worker, wait_until_idle
from videos.models import VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]
TEXT = {"model": "gen4.5", "ratio": "1280:720", "duration": 5}


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunwaySimulator]:
    with RunwaySimulator(task_seconds=1.0, api_key=settings.RUNWAY_API_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, simulator) -> Iterator[Worker]:
    # One slot: a webhook attempt that held it would hold up every other job's steps.
    with running_worker(
        django_db_blocker,
        simulator,
        max_wait=60,
        CELERY_WORKER_CONCURRENCY="1",
        WEBHOOKS_ALLOW_PRIVATE_ADDRESSES="True",
    ) as worker:
        yield worker


@pytest.fixture(autouse=True)
def idle_at_the_end(worker):
    """Each test ends once the worker has finished with its jobs and no webhook attempt is out."""
    yield
    wait_until_idle(worker)
    deadline = time.monotonic() + 30
    while WebhookDelivery.objects.filter(claimed_until__gt=timezone.now()).exists():
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def quick(monkeypatch, settings):
    monkeypatch.setattr(polling, "POLL_TIME", 0.5)
    monkeypatch.setattr(polling, "POLL_JITTER", 0.0)
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True  # the live server's: the receiver is on loopback


def sdk(live_server, key: str) -> RunwayML:
    return RunwayML(api_key=key, base_url=live_server.url, _strict_response_validation=True)


def test_a_videos_ending_reaches_its_webhook_signed_with_the_task(live_server, user, worker):
    with Receiver(204) as receiver:
        made = services.api_key_create(user=user, name="hooked", webhook_url=receiver.url)
        runway = sdk(live_server, made.key)

        task = runway.text_to_video.create(prompt_text="A lighthouse in a storm", **TEXT)
        done = task.wait_for_task_output(timeout=60)
        [request] = receiver.wait_for(1, seconds=30)

    event = Webhook(made.webhook_secret).verify(request.body, request.headers)
    assert event["type"] == "task.succeeded"
    assert event["data"]["id"] == done.id and event["data"]["status"] == "SUCCEEDED"
    assert event["data"]["cost"] == {"credits": done.cost.credits}
    assert event["data"]["output"][0].startswith(live_server.url + "/v1/outputs/")
    found = WebhookDelivery.objects.get(generation_number=VideoGeneration.objects.get(public_id=done.id).pk)
    deadline = time.monotonic() + 10
    while found.state != DeliveryState.DELIVERED:  # the worker notes the answer after the receiver has it
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.1)
        found.refresh_from_db()
    assert found.attempts == 1


def test_a_receiver_that_never_answers_holds_no_slot_of_the_worker(live_server, user, worker, simulator):
    with Receiver(204, hang=30) as receiver:
        hooked = services.api_key_create(user=user, webhook_url=receiver.url)
        plain = services.api_key_create(user=user).key
        first = sdk(live_server, hooked.key).text_to_video.create(prompt_text="Ends first", **TEXT)
        first.wait_for_task_output(timeout=60)
        receiver.wait_for(1, seconds=30)  # its delivery is out, and the receiver holds it

        started = time.monotonic()
        second = sdk(live_server, plain).text_to_video.create(prompt_text="Made while it hangs", **TEXT)
        job = VideoGeneration.objects.get(public_id=second.id)
        while not VideoGeneration.objects.get(pk=job.pk).runway_task_id:
            assert time.monotonic() - started < 3, worker.tail()  # a held slot would make it wait 5 s
            time.sleep(0.05)
        assert second.wait_for_task_output(timeout=60).status == "SUCCEEDED"
