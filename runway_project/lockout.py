"""What django-axes calls to tell a client's address, to count failed logins and to answer a
locked-out login."""

from typing import Any

from axes.attempts import get_cool_off_threshold  # type: ignore[import-untyped]
from axes.handlers.database import AxesDatabaseHandler  # type: ignore[import-untyped]
from axes.helpers import (  # type: ignore[import-untyped]
    get_client_parameters,
    get_client_username,
    get_failure_limit,
    get_lockout_parameters,
)
from axes.models import AccessAttempt  # type: ignore[import-untyped]
from django.conf import settings
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# The AXES_LOCKOUT_PARAMETERS item that counts an address's failures whatever the user names,
# up to AXES_ADDRESS_FAILURE_LIMIT rather than AXES_FAILURE_LIMIT.
ADDRESS_ALONE = "ip_address"


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


def _failures(attempts: QuerySet[Any]) -> int:
    total: int | None = attempts.aggregate(total=Sum("failures_since_start"))["total"]
    return total or 0


def address_locked(request: HttpRequest) -> bool:
    """Whether the request's address has used up AXES_ADDRESS_FAILURE_LIMIT in the cool-off, whatever
    the user names (when the lockout parameters count an address alone at all)."""
    if ADDRESS_ALONE not in get_lockout_parameters(request):
        return False
    since = get_cool_off_threshold(request)
    address = request.axes_ip_address  # type: ignore[attr-defined]
    failures = _failures(AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=since))
    return failures >= int(settings.AXES_ADDRESS_FAILURE_LIMIT)


class LockoutHandler(AxesDatabaseHandler):
    """django-axes' database handler, with two changes.

    - An address alone (the `ip_address` item of AXES_LOCKOUT_PARAMETERS) is locked out at
      AXES_ADDRESS_FAILURE_LIMIT failures, not AXES_FAILURE_LIMIT: a whole office behind one
      router shares it. axes compares the most failures of any item with one limit, so the
      address's count is told in that limit's terms: the limit once it reaches its own, below it
      until then.
    - A successful login forgets that user's failures (AXES_RESET_ON_SUCCESS), not every failure
      from the address: otherwise anyone holding one account could log in between guesses at
      others' and never reach the address's limit.
    """

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        limit = int(get_failure_limit(request, credentials))
        items = get_lockout_parameters(request, credentials)
        counts = [0]
        for item, attempts in zip(items, self.get_user_attempts(request, credentials), strict=True):
            failures = _failures(attempts)
            if item == ADDRESS_ALONE:
                failures = limit if failures >= settings.AXES_ADDRESS_FAILURE_LIMIT else min(failures, limit - 1)
            counts.append(failures)
        return max(counts)

    def reset_user_attempts(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        username = get_client_username(request, credentials)
        address, agent = request.axes_ip_address, request.axes_user_agent  # type: ignore[attr-defined]
        filters = get_client_parameters(username, address, agent, request, credentials)
        count = 0
        for item in filters:
            if "username" in item:
                deleted, _ = AccessAttempt.objects.filter(**item).delete()
                count += deleted
        return count


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """The page for a refused login: why, and for how long, in the site's own layout (429)."""
    minutes = settings.AXES_COOLOFF_MINUTES
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "address_limit": settings.AXES_ADDRESS_FAILURE_LIMIT,
        "by_address": address_locked(request),
        "cooloff": f"{minutes} minute{'s' if minutes != 1 else ''}",
    }
    return render(request, "registration/locked_out.html", context, status=429)
