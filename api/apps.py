from django.apps import AppConfig


class ApiConfig(AppConfig):
    """Runway's own API, served by us to scripts: keys, their authentication, the endpoints, webhooks."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
    verbose_name = "API"

    def ready(self) -> None:
        from api import webhooks
        from videos.events import job_ended

        job_ended.connect(webhooks.on_job_ended, dispatch_uid="api.webhooks.on_job_ended")
