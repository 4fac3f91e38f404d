from django.apps import AppConfig


class VideosConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "videos"
    verbose_name = "Videos"

    def ready(self) -> None:
        # The worker's /metrics server, started and stopped by Celery's worker signals.
        from runway_project import worker_metrics  # noqa: F401
        from videos import signals  # noqa: F401 (connects the user-deletion hook)
        from videos.events import job_ended
        from videos.services import alerts

        job_ended.connect(alerts.on_job_ended, dispatch_uid="videos.alerts.on_job_ended")
