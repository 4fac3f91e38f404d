"""A fixed-window rate limit per minute, counted in Django's cache (CACHE_URL): the API's per key
(api/v1.py) and the share links' per client address (sharing/services.py)."""

import math

from django.core.cache import cache


def minute_wait(counter: str, *, limit: int, now: float) -> int | None:
    """Count one request against `counter` (a key of the caller's own, without the minute) for the
    minute of `now` (seconds since the epoch); the seconds until that minute ends when this request
    is over `limit`, None while it is not."""
    key = f"{counter}:{int(now // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between the two calls
        return None
    if count <= limit:
        return None
    return max(1, math.ceil(60 - now % 60))
