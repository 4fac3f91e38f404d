from runway_project.parent_watch import stop_with_parent

# A process that `make run` started stops when it does, even when it is killed (parent_watch.py).
stop_with_parent()

from .celery import app as celery_app  # noqa: E402

__all__ = ("celery_app",)
