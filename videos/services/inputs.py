"""A job's inputs as its create request carries them: an image URL as it was given; a stored image
or clip as a data URI while it fits Runway's limit (5 MiB), else uploaded to Runway's ephemeral
storage first and sent as its runway:// URI.

The job keeps its files, not the URI: an upload lasts 24 hours at Runway, and each submit (a
re-run next month included) uploads afresh what it sends. An upload is not billed, so one that
fails is retried with the submit (services/steps.py), never with a create.
"""

import base64
from typing import Any

from videos import catalog
from videos.models import VideoGeneration
from videos.runway import RunwayClient


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def fits_in_a_data_uri(size: int) -> bool:
    """Whether a file of `size` bytes fits in a data URI Runway takes once base64 has grown it."""
    return 4 * ((size + 2) // 3) + 64 <= catalog.DATA_URI_MAX_LENGTH


def media_uri(client: RunwayClient, *, data: bytes, content_type: str, filename: str) -> str:
    """How a create carries a file: inline, or by the URI of its upload (RunwayError if that fails)."""
    if fits_in_a_data_uri(len(data)):
        return data_uri(data, content_type)
    return client.upload_ephemeral(filename=filename, data=data, content_type=content_type)


def generation_media(generation: VideoGeneration, client: RunwayClient) -> dict[str, Any]:
    """The media fields of a job's create: promptImage, or the clip under its model's field name,
    or (Act-Two) the character and the performance that drives it.

    Reads the stored files (OSError when one is gone); RunwayError when an upload fails.
    """
    if generation.endpoint == catalog.CHARACTER_PERFORMANCE:
        return _performance_media(generation, client)
    if generation.image_url or generation.image:
        return {"promptImage": _frames(generation, client)}
    if generation.clip:
        offer = catalog.offer_for(model=generation.model, endpoint=generation.endpoint)
        field = offer.video_field if offer is not None else "videoUri"
        return {field: _stored_uri(client, generation.clip, image=False)}
    return {}


def _frames(generation: VideoGeneration, client: RunwayClient) -> str | list[dict[str, str]]:
    """promptImage: the first frame (a URL as given, or the stored image), or it and the last frame."""
    first = generation.image_url or _stored_uri(client, generation.image, image=True)
    if not generation.last_image:
        return first
    last = _stored_uri(client, generation.last_image, image=True)
    return [{"uri": first, "position": "first"}, {"uri": last, "position": "last"}]


def _performance_media(generation: VideoGeneration, client: RunwayClient) -> dict[str, Any]:
    """Act-Two's character (an image, by URL or stored, or a clip) and its reference performance."""
    if generation.image_url:
        character = {"type": "image", "uri": generation.image_url}
    elif generation.image:
        character = {"type": "image", "uri": _stored_uri(client, generation.image, image=True)}
    else:
        character = {"type": "video", "uri": _stored_uri(client, generation.clip, image=False)}
    reference = {"type": "video", "uri": _stored_uri(client, generation.performance, image=False)}
    return {"character": character, "reference": reference}


def _stored_uri(client: RunwayClient, stored: Any, *, image: bool) -> str:
    with stored.open("rb") as f:
        data = f.read()
    kind = (catalog.image_type(data[:16]) or "application/octet-stream") if image else _clip_type(stored.name)
    return media_uri(client, data=data, content_type=kind, filename=_name(stored))


def _name(file: Any) -> str:
    return str(file.name).rsplit("/", 1)[-1]


def _clip_type(name: str) -> str:
    return {"mov": "video/quicktime", "webm": "video/webm"}.get(name.rsplit(".", 1)[-1].lower(), "video/mp4")
