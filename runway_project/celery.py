import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runway_project.settings")

app = Celery("runway_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
