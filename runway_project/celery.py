import os
from typing import Any

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runway_project.settings")

app = Celery("runway_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_database_connections(sender: Any = None, **kwargs: Any) -> None:
    """Around each task in a worker, what Django does around each request: keep the connection up
    to CONN_MAX_AGE, and drop it when it broke or a query failed.

    Celery's own Django support would close it after every task, and reconnecting cost more than a
    whole step (docs/PERFORMANCE.md). A task applied in the caller's process (`.apply()`) runs
    inside the caller's work, whose connection is not the task's to close.
    """
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()
