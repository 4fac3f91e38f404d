"""Pages show times in the user's time zone: the browser tells it in a `tz` cookie
(static/js/timezone.js sets it from Intl), and this middleware activates it for the request, so a
page, a reload and a fragment fetched by a script all agree. Without a cookie, or with a zone
that does not exist, times stay in UTC (settings.TIME_ZONE)."""

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

COOKIE = "tz"
# IANA names are short ("America/Argentina/ComodRivadavia" is among the longest).
MAX_LENGTH = 64


def zone_from(value: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone an IANA name names, or None for anything else (a made-up name, a path)."""
    if not value or len(value) > MAX_LENGTH:
        return None
    try:
        return zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


class TimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = zone_from(request.COOKIES.get(COOKIE))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
