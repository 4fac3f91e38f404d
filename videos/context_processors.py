from django.conf import settings
from django.http import HttpRequest


def runway(request: HttpRequest) -> dict[str, object]:
    return {
        "runway_key_missing": not settings.RUNWAY_API_KEY,
        "runway_simulated": settings.RUNWAY_SIMULATED,
    }
