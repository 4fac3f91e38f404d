"""The links a task's `output` holds: to our stored copy, signed and expiring, minted afresh on each
GET as Runway mints its own. Anyone holding one may fetch the video until it expires (as Runway's),
without a key; deleting the job ends every link to it.

A link reads `/v1/outputs/<task id>.mp4?expires=<unix time>&signature=<HMAC>`: the HMAC (Django's
salted_hmac, keyed by SECRET_KEY) covers the task id and the expiry, so neither can be changed.
"""

import hmac
import time
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils.crypto import salted_hmac

_SALT = "api.links.output"


def _signature(public_id: uuid.UUID, expires: int) -> str:
    return salted_hmac(_SALT, f"{public_id}:{expires}", algorithm="sha256").hexdigest()


def output_path(public_id: uuid.UUID, *, now: float | None = None) -> str:
    """The path and query of a new link to the task's video, valid for API_OUTPUT_LINK_SECONDS."""
    expires = int(now if now is not None else time.time()) + settings.API_OUTPUT_LINK_SECONDS
    query = urlencode({"expires": expires, "signature": _signature(public_id, expires)})
    return f"{reverse('api_v1:output', args=[public_id])}?{query}"


def link_valid(public_id: uuid.UUID, expires: str, signature: str, *, now: float | None = None) -> bool:
    """Whether a link's query was signed by us for this task and has not expired."""
    try:
        until = int(expires)
    except ValueError:
        return False
    if until < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(_signature(public_id, until), signature)
