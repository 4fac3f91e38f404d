"""The API's Celery tasks: a webhook attempt handed to the webhook threads, and beat's periodic
work (uploads past their time deleted; webhooks a lost signal or message missed made up for)."""

from celery import shared_task

from api import tasks_service, webhooks


@shared_task(name=webhooks.DELIVER_TASK, ignore_result=True)
def deliver_webhook(delivery_id: str) -> None:
    webhooks.delivery_hand_over(delivery_id=delivery_id)


@shared_task(name="api.tasks.webhooks_catch_up", ignore_result=True)
def webhooks_catch_up() -> int:
    return webhooks.webhooks_catch_up()


@shared_task(name="api.tasks.expire_uploads", ignore_result=True)
def expire_uploads() -> int:
    return tasks_service.api_uploads_expire()
