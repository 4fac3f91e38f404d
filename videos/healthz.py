"""`/healthz`: up or down for anyone (load balancers, uptime probes), and the health report as JSON
for a monitor that shows METRICS_TOKEN; no login, no secrets.

Its own module rather than views.py: it serves machines at the project's root, not users' pages.
"""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from runway_project.monitoring import presents_metrics_token
from videos.services import health


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every check is ok, 503 when any is not. The body says only that, unless the request
    carries `Authorization: Bearer <METRICS_TOKEN>`: then it is the whole report, which check failed
    and its figures (the broker's type, the database's latency, the backlog), none of a stranger's
    business."""
    report = health.health_check()
    status = 200 if report.healthy else 503
    if presents_metrics_token(request):
        return JsonResponse(report.as_json(), status=status)
    return JsonResponse({"status": "ok" if report.healthy else "unhealthy"}, status=status)
