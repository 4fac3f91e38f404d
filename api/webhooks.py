"""Webhooks: every job made through a key with a webhook URL is posted there when it ends, as a
JSON event whose `data` is the task as GET /v1/tasks/{id} shows it, signed as Standard Webhooks
says (`webhook-id`, `webhook-timestamp`, `webhook-signature`, with the key's `whsec_` secret).

- The job's ending is its JobEvent (videos/models.py), written with its final status; once that
  commits, `job_ended` makes the delivery's row here (deliveries_for_event) and sends its task.
- A delivery's attempts run in a small thread pool of the worker's own (WEBHOOK_THREADS), never
  in the pool's slots that poll Runway: the Celery task only hands the attempt over and returns.
- A failed attempt (no connection, a timeout, a redirect, an answer that is not 2xx) is tried
  again after RETRY_SCHEDULE (5 s, 30 s, 2 min, 10 min, 30 min, then hours), for a day
  (DELIVERY_WINDOW); then the delivery gives up.
- Nothing is lost with a process: webhooks_catch_up (beat, every CATCH_UP_SECONDS) makes the
  deliveries a lost signal did not and sends the attempts whose message was lost.
"""

import json
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from api import answers, delivery
from api.models import ApiCreate, DeliveryState, WebhookAttempt, WebhookDelivery
from videos.models import JobEvent, Origin, VideoGeneration
from videos.services.bookkeeping import connection_release
from videos.services.queue import task_send

logger = logging.getLogger(__name__)

RETRY_SCHEDULE = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800)  # seconds after each failed attempt
DELIVERY_WINDOW = timedelta(days=1)
CLAIM_SECONDS = 60  # an attempt takes at most CONNECT + READ seconds; one claimed longer ago was lost
CATCH_UP_SECONDS = 30
DELIVER_TASK = "api.tasks.deliver_webhook"

_pool: ThreadPoolExecutor | None = None


def event_type(status: str) -> str:
    """`task.succeeded`, `task.failed` or `task.cancelled`: the task's Runway status, as the event's type."""
    return f"task.{status.lower()}"


def deliveries_for_event(*, event: JobEvent) -> WebhookDelivery | None:
    """The delivery of a job's ending to its key's webhook, made once (None when there is none to
    make), and its first attempt sent once this commits."""
    made = (
        ApiCreate.objects.select_related("api_key")
        .filter(generation_id=event.generation_id, api_key__revoked_at__isnull=True)
        .exclude(api_key__webhook_url="")
        .first()
    )
    if made is None or event.generation_id is None:
        return None
    job = VideoGeneration.objects.with_cost().get(pk=event.generation_id)
    data = answers.task(job, base_url=made.base_url)
    body = json.dumps({"type": event_type(data["status"]), "timestamp": answers.iso(event.created_at), "data": data})
    try:
        with transaction.atomic():
            found = WebhookDelivery.objects.create(
                api_key=made.api_key,
                event=event,
                generation_number=event.generation_number,
                url=made.api_key.webhook_url,
                body=body,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return None  # made already (the catch-up and the signal met)
    transaction.on_commit(lambda: _send(found, 0.0), robust=True)
    return found


def on_job_ended(sender: object, event: JobEvent, origin: str = Origin.API, **kwargs: object) -> None:
    """The `job_ended` receiver (connected in ApiConfig.ready): only a job made through the API
    can have a webhook, so the others cost no query."""
    if origin == Origin.API:
        deliveries_for_event(event=event)


def _send(found: WebhookDelivery, countdown: float) -> None:
    task_send(DELIVER_TASK, args=(str(found.pk),), countdown=countdown)


def delivery_hand_over(*, delivery_id: str) -> None:
    """The Celery task's work: hand the attempt to the webhook threads, and return at once."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=settings.WEBHOOK_THREADS, thread_name_prefix="webhook")
    _pool.submit(_attempt_in_thread, delivery_id)


def _attempt_in_thread(delivery_id: str) -> None:
    try:
        delivery_attempt(delivery_id=delivery_id)
    except Exception:
        logger.exception("Webhook delivery %s: attempt failed unexpectedly", delivery_id)
    finally:
        close_old_connections()


def delivery_attempt(*, delivery_id: str, now: datetime | None = None) -> WebhookAttempt | None:
    """Make one attempt of a due delivery, if no other process holds it; note what the receiver said
    and schedule the next attempt, or end the delivery."""
    now = now or timezone.now()
    claim = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    due = WebhookDelivery.objects.filter(pk=delivery_id, state=DeliveryState.PENDING, next_attempt_at__lte=now)
    if not due.filter(claim).update(claimed_until=now + timedelta(seconds=CLAIM_SECONDS)):
        return None  # not due, ended, or another thread holds it
    found = WebhookDelivery.objects.select_related("api_key").get(pk=delivery_id)
    connection_release()  # while the receiver answers (up to its timeouts)
    answer = delivery.post(
        found.url,
        found.body,
        signed_headers(found, now),
        allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES,
    )
    attempt = WebhookAttempt.objects.create(
        delivery=found,
        at=now,
        status_code=answer.status_code,
        answer=answer.answer,
        error=answer.error[:300],
        seconds=answer.seconds,
    )
    _after_attempt(found, answer.delivered, timezone.now())
    return attempt


def signed_headers(found: WebhookDelivery, now: datetime) -> dict[str, str]:
    """Standard Webhooks' three headers for this attempt (the id the same on each attempt)."""
    moment = now.astimezone(UTC)
    signature = Webhook(found.api_key.webhook_secret).sign(found.message_id, moment, found.body)
    return {
        "webhook-id": found.message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }


def _after_attempt(found: WebhookDelivery, delivered: bool, now: datetime) -> None:
    found.attempts += 1
    found.claimed_until = None
    if delivered:
        found.state, found.delivered_at, found.next_attempt_at = DeliveryState.DELIVERED, now, None
    else:
        wait = RETRY_SCHEDULE[min(found.attempts - 1, len(RETRY_SCHEDULE) - 1)] * random.uniform(1.0, 1.1)
        due = now + timedelta(seconds=wait)
        if due > found.created_at + DELIVERY_WINDOW:
            found.state, found.next_attempt_at = DeliveryState.GAVE_UP, None
            logger.warning("Webhook delivery %s gave up after %s attempts", found.pk, found.attempts)
        else:
            found.next_attempt_at = due
    found.save(update_fields=["attempts", "claimed_until", "state", "delivered_at", "next_attempt_at"])
    if found.state == DeliveryState.PENDING and found.next_attempt_at is not None:
        _send(found, (found.next_attempt_at - now).total_seconds())


def webhooks_catch_up(*, now: datetime | None = None) -> int:
    """Make what a lost signal or message did not: deliveries for the last day's endings of jobs of
    keys with a webhook, and attempts overdue by more than a minute. Return how many were sent."""
    now = now or timezone.now()
    with_webhook = ApiCreate.objects.filter(
        generation_id=OuterRef("generation_id"), api_key__revoked_at__isnull=True
    ).exclude(api_key__webhook_url="")
    missing = (
        JobEvent.objects.filter(created_at__gte=now - DELIVERY_WINDOW, created_at__lte=now - timedelta(seconds=10))
        .filter(Exists(with_webhook))
        .exclude(Exists(WebhookDelivery.objects.filter(event_id=OuterRef("pk"))))
    )
    sent = 0
    for event in missing[:500]:
        sent += deliveries_for_event(event=event) is not None
    overdue = WebhookDelivery.objects.filter(
        state=DeliveryState.PENDING, next_attempt_at__lte=now - timedelta(seconds=CATCH_UP_SECONDS)
    ).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    for found in overdue[:500]:
        _send(found, 0.0)
        sent += 1
    return sent
