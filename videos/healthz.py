"""`/healthz`: the health report as JSON, for monitors and load balancers; no login, no secrets.

Its own module rather than views.py: it serves machines at the project's root, not users' pages.
"""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from videos.services import health


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every check is ok, 503 when any is not; the body says which, either way."""
    report = health.health_check()
    return JsonResponse(report.as_json(), status=200 if report.healthy else 503)
