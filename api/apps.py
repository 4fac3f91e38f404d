from django.apps import AppConfig


class ApiConfig(AppConfig):
    """Runway's own API, served by us to scripts: keys, their authentication, the endpoints."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
    verbose_name = "API"
