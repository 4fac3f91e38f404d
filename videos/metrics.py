"""`/metrics`: the installation's figures and this server's counts in Prometheus' format, for the
holder of METRICS_TOKEN only (runway_project/monitoring.py).

Its own module rather than views.py: it serves a monitor at the project's root, not users' pages.
"""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from runway_project import metrics
from runway_project.monitoring import presents_metrics_token
from videos.services.metrics import InstallationCollector


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """404 while METRICS_TOKEN is empty (the endpoint is off); 401 without the token."""
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are off: METRICS_TOKEN is empty.")
    if not presents_metrics_token(request):
        response = HttpResponse("A bearer token is needed.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = metrics.scrape_registry([InstallationCollector()])
    body, content_type = metrics.exposition(registry, request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
