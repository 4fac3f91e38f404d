"""Who may read what a monitor reads: the holder of METRICS_TOKEN, shown as a bearer token."""

import hmac

from django.conf import settings
from django.http import HttpRequest


def presents_metrics_token(request: HttpRequest) -> bool:
    """Whether the request carries `Authorization: Bearer <METRICS_TOKEN>`; never with no token set."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
