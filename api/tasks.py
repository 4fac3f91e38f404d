"""The API's periodic work, run by beat: uploads past their time are deleted."""

from celery import shared_task

from api import tasks_service


@shared_task(name="api.tasks.expire_uploads", ignore_result=True)
def expire_uploads() -> int:
    return tasks_service.api_uploads_expire()
