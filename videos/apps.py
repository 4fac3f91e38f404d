from django.apps import AppConfig


class VideosConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "videos"
    verbose_name = "Videos"

    def ready(self) -> None:
        from videos import signals  # noqa: F401 (connects the user-deletion hook)
