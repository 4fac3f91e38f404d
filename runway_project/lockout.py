"""What django-axes calls to tell a client's address and to answer a locked-out login."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip_address(request: HttpRequest) -> str:
    """The address that the outermost of `TRUSTED_PROXY_COUNT` proxies saw the client at.

    Each proxy appends the address it was reached from to X-Forwarded-For, so with N proxies the
    client's is the Nth entry from the right; entries to the left of it are the client's own words.
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    proxies = int(settings.TRUSTED_PROXY_COUNT)
    if proxies < 1:
        return remote
    header = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    forwarded = [part.strip() for part in header.split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < proxies:
        return remote
    return forwarded[-proxies]


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """The page for a refused login: why, and for how long, in the site's own layout (429)."""
    minutes = settings.AXES_COOLOFF_MINUTES
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff": f"{minutes} minute{'s' if minutes != 1 else ''}",
    }
    return render(request, "registration/locked_out.html", context, status=429)
