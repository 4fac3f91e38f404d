"""What a page says when the database is gone for a while (a restart, a failover): a 503 with a
clear page and Retry-After, never a traceback. Jobs are not affected: the worker rides it out.
And what a form refused by Django's CSRF check says (csrf_failure)."""

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.defaults import server_error as django_server_error

logger = logging.getLogger(__name__)

# The errors of a database that cannot be reached, or dropped the connection: a moment's outage,
# not a bug in the request.
DATABASE_DOWN = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30


def one_line(exc: Exception) -> str:
    """The first line of an error's message, for a log line (psycopg adds hints on more lines)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def database_unavailable(request: HttpRequest | None = None) -> HttpResponse:
    """The 503 page (for the API under /v1/, Runway's JSON error). Rendered without the request's
    user or session, so it needs nothing from the database."""
    if request is not None and request.path.startswith("/v1/"):
        response: HttpResponse = JsonResponse(
            {"error": "The service is unavailable for a moment (its database cannot be reached). Try again shortly."},
            status=503,
        )
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """A view that meets an unreachable database answers the 503 page."""

    def __init__(self, get_response):  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = self.get_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_DOWN):
            return None
        logger.error("Database unavailable during %s %s: %s", request.method, request.path, one_line(exception))
        return database_unavailable(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the 503 page for a database outage met outside a view (e.g. in a middleware), else Django's 500."""
    if isinstance(sys.exc_info()[1], DATABASE_DOWN):
        return database_unavailable(request)
    response: HttpResponseServerError = django_server_error(request)
    return response


# What the page's scripts show when a form they send is refused by the CSRF check.
CSRF_FAILURE_MESSAGE = (
    "This page had expired, so nothing was sent: reload the page and try again. "
    "(This site needs cookies: if it keeps happening, allow them for it.)"
)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form whose security token was missing or out of date, refused (403).

    Django's own page has an inline style, which the site's Content-Security-Policy blocks: this one
    is in the site's layout, with no inline code, and says what to do. The page's scripts, which ask
    for JSON, get the message in the shapes they show (`errors` for the form, `error` for a card).
    """
    if "application/json" in request.headers.get("Accept", ""):
        problem = {"message": CSRF_FAILURE_MESSAGE, "code": "csrf"}
        return JsonResponse({"error": CSRF_FAILURE_MESSAGE, "errors": {"__all__": [problem]}}, status=403)
    context = {"reason": reason, "no_cookie": reason == REASON_NO_CSRF_COOKIE}
    return render(request, "403_csrf.html", context, status=403)
