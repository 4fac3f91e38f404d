"""Webhooks (api/webhooks.py): a job made through a key with a webhook URL is posted there when it
ends, signed as Standard Webhooks says (checked here with the `standardwebhooks` package), retried
with backoff for a day, never to a private address unless allowed, never following a redirect.

A real HTTP receiver on loopback (tests/receiver.py), so these allow private addresses except where
they test the refusal; attempts are made by calling the service, with the clock as an argument."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from api import delivery, services, webhooks
from api.models import DeliveryState, WebhookDelivery
from tests.receiver import Receiver
from videos.models import JobEvent, Status, VideoGeneration
from videos.services import actions

pytestmark = pytest.mark.django_db
TEXT = {"model": "gen4.5", "promptText": "A lighthouse in a storm", "ratio": "1280:720", "duration": 5}


@pytest.fixture(autouse=True)
def local_receivers(settings, monkeypatch):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    settings.RUNWAY_API_KEY = "configured"
    sent = []
    monkeypatch.setattr(webhooks, "_send", lambda found, countdown: sent.append((found.pk, countdown)))
    return sent


def api_job(client, key: str) -> VideoGeneration:
    response = client.post(
        "/v1/text_to_video",
        json.dumps(TEXT),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_X_RUNWAY_VERSION="2024-11-06",
    )
    assert response.status_code == 200, response.content
    return VideoGeneration.objects.get(public_id=response.json()["id"])


def ended(job: VideoGeneration, django_capture_on_commit_callbacks) -> WebhookDelivery:
    with django_capture_on_commit_callbacks(execute=True):
        actions.generation_cancel(generation_id=job.pk)
    return WebhookDelivery.objects.get(generation_number=job.pk)


def test_an_ending_is_delivered_once_signed_with_the_task_as_get_shows_it(
    client, user, django_capture_on_commit_callbacks, local_receivers
):
    with Receiver(204) as receiver:
        made = services.api_key_create(user=user, webhook_url=receiver.url)
        job = api_job(client, made.key)
        found = ended(job, django_capture_on_commit_callbacks)
        assert local_receivers == [(found.pk, 0.0)]  # its first attempt sent at once

        attempt = webhooks.delivery_attempt(delivery_id=str(found.pk))

        [request] = receiver.wait_for(1, seconds=5)
    payload = Webhook(made.webhook_secret).verify(request.body, request.headers)
    assert payload["type"] == "task.cancelled"
    task = client.get(
        f"/v1/tasks/{job.public_id}", HTTP_AUTHORIZATION=f"Bearer {made.key}", HTTP_X_RUNWAY_VERSION="2024-11-06"
    ).json()
    assert payload["data"] == task and payload["data"]["id"] == str(job.public_id)
    assert request.headers["webhook-id"] == found.message_id and request.path == "/hooks/runway"
    assert attempt.status_code == 204
    found.refresh_from_db()
    assert found.state == DeliveryState.DELIVERED and found.attempts == 1 and found.next_attempt_at is None
    assert webhooks.delivery_attempt(delivery_id=str(found.pk)) is None  # delivered: never again
    assert JobEvent.objects.filter(generation=job, status=Status.CANCELLED).count() == 1


def test_a_forged_or_changed_delivery_fails_verification(client, user, django_capture_on_commit_callbacks):
    with Receiver(204) as receiver:
        made = services.api_key_create(user=user, webhook_url=receiver.url)
        found = ended(api_job(client, made.key), django_capture_on_commit_callbacks)
        webhooks.delivery_attempt(delivery_id=str(found.pk))
        [request] = receiver.wait_for(1, seconds=5)
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(made.webhook_secret).verify(request.body.replace(b"CANCELLED", b"SUCCEEDED"), request.headers)
    with pytest.raises(WebhookVerificationError):
        other = services.api_key_create(user=user, webhook_url=receiver.url).webhook_secret
        Webhook(other).verify(request.body, request.headers)


def test_a_failed_delivery_is_retried_with_backoff_then_delivered(client, user, django_capture_on_commit_callbacks):
    with Receiver(500, 503, 200) as receiver:
        made = services.api_key_create(user=user, webhook_url=receiver.url)
        found = ended(api_job(client, made.key), django_capture_on_commit_callbacks)
        now = timezone.now()
        waits = []
        for _ in range(3):
            assert webhooks.delivery_attempt(delivery_id=str(found.pk), now=now) is not None
            found.refresh_from_db()
            if found.next_attempt_at:
                waits.append((found.next_attempt_at - timezone.now()).total_seconds())
                assert webhooks.delivery_attempt(delivery_id=str(found.pk), now=now) is None  # not due yet
                now = found.next_attempt_at
        receiver.wait_for(3, seconds=5)
    assert 4 <= waits[0] <= 5.6 and 29 <= waits[1] <= 33.1  # seconds, then about half a minute
    assert found.state == DeliveryState.DELIVERED and found.attempts == 3
    assert [a.status_code for a in found.attempt_log.all()] == [500, 503, 200]


def test_a_delivery_that_never_succeeds_gives_up_after_a_day(client, user, django_capture_on_commit_callbacks):
    with Receiver(500) as receiver:
        made = services.api_key_create(user=user, webhook_url=receiver.url)
        found = ended(api_job(client, made.key), django_capture_on_commit_callbacks)
        moments = []
        while found.state == DeliveryState.PENDING:
            due = found.next_attempt_at
            moments.append(due)
            webhooks.delivery_attempt(delivery_id=str(found.pk), now=due)
            found.refresh_from_db()
            # The clock as the attempt saw it: move the created time back instead of waiting.
            if found.next_attempt_at:
                shift = found.next_attempt_at - timezone.now()
                WebhookDelivery.objects.filter(pk=found.pk).update(
                    created_at=found.created_at - shift, next_attempt_at=timezone.now()
                )
                found.refresh_from_db()
    assert found.state == DeliveryState.GAVE_UP
    assert 9 <= found.attempts <= 12  # seconds, minutes, then hours apart, within the day


def test_a_redirect_is_not_followed(client, user, django_capture_on_commit_callbacks):
    with Receiver(204) as target, Receiver(302, location="") as receiver:
        receiver.location = target.url
        made = services.api_key_create(user=user, webhook_url=receiver.url)
        found = ended(api_job(client, made.key), django_capture_on_commit_callbacks)
        attempt = webhooks.delivery_attempt(delivery_id=str(found.pk))
        receiver.wait_for(1, seconds=5)
    assert attempt.status_code == 302 and "redirect" in attempt.error
    assert target.received == []
    found.refresh_from_db()
    assert found.state == DeliveryState.PENDING and found.next_attempt_at


def test_a_slow_receiver_times_out_quickly(client, user, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(delivery, "READ_SECONDS", 0.5)
    with Receiver(204, hang=5) as receiver:
        made = services.api_key_create(user=user, webhook_url=receiver.url)
        found = ended(api_job(client, made.key), django_capture_on_commit_callbacks)
        attempt = webhooks.delivery_attempt(delivery_id=str(found.pk))
    assert attempt.status_code is None and "timeout" in attempt.error and attempt.seconds < 3


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "0177.0.0.1", "2130706433", "localhost", "localhost.", "[::1]"])
def test_a_private_address_is_refused_by_the_address_connected_to(
    client, user, settings, django_capture_on_commit_callbacks, host
):
    with Receiver(204) as receiver:
        made = services.api_key_create(user=user, webhook_url=receiver.url)  # allowed when it was made
        settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
        port = receiver.server.server_address[1]
        found = ended(api_job(client, made.key), django_capture_on_commit_callbacks)
        WebhookDelivery.objects.filter(pk=found.pk).update(url=f"http://{host}:{port}/hooks/runway")

        attempt = webhooks.delivery_attempt(delivery_id=str(found.pk))

        assert "private" in attempt.error or "connect" in attempt.error.lower(), attempt.error
        assert receiver.received == []


def test_only_jobs_of_keys_with_a_webhook_are_delivered(client, user, django_capture_on_commit_callbacks):
    made = services.api_key_create(user=user)
    ended_job = api_job(client, made.key)
    with django_capture_on_commit_callbacks(execute=True):
        actions.generation_cancel(generation_id=ended_job.pk)
    assert JobEvent.objects.filter(generation=ended_job).exists()
    assert not WebhookDelivery.objects.exists()


def test_the_catch_up_makes_a_delivery_a_lost_signal_did_not_and_resends_a_lost_attempt(client, user, local_receivers):
    with Receiver(204) as receiver:
        made = services.api_key_create(user=user, webhook_url=receiver.url)
        job = api_job(client, made.key)
        actions.generation_cancel(generation_id=job.pk)  # its on_commit callbacks never run: as if lost
        assert not WebhookDelivery.objects.exists()
        later = timezone.now() + timedelta(seconds=11)

        assert webhooks.webhooks_catch_up(now=later) == 1
        found = WebhookDelivery.objects.get()
        assert webhooks.webhooks_catch_up(now=later) == 0  # made once

        local_receivers.clear()
        assert webhooks.webhooks_catch_up(now=later + timedelta(seconds=31)) == 1  # its message lost too
        assert local_receivers == [(found.pk, 0.0)]


def test_the_owner_and_staff_see_each_delivery_its_attempts_and_answers(
    client, user, other_user, admin_client, django_capture_on_commit_callbacks
):
    with Receiver(500, 204) as receiver:
        made = services.api_key_create(user=user, webhook_url=receiver.url)
        found = ended(api_job(client, made.key), django_capture_on_commit_callbacks)
        webhooks.delivery_attempt(delivery_id=str(found.pk))
        found.refresh_from_db()
        webhooks.delivery_attempt(delivery_id=str(found.pk), now=found.next_attempt_at)

    client.force_login(user)
    page = client.get("/keys/").content.decode()
    assert f"#{found.generation_number}" in page and "Delivered" in page and "500" in page and "204" in page
    assert made.webhook_secret not in page and made.key not in page
    client.force_login(other_user)
    assert f"#{found.generation_number}" not in client.get("/keys/").content.decode()

    staff = admin_client.get(f"/admin/api/webhookdelivery/{found.pk}/change/").content.decode()
    assert "500" in staff and "204" in staff and made.webhook_secret not in staff
    assert admin_client.get("/admin/api/webhookdelivery/").status_code == 200
    assert admin_client.get("/admin/api/apiupload/").status_code == 200
