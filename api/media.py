"""A media URI in an API request, as Runway takes them, turned into what a job starts from.

- `data:<type>;base64,<data>`: decoded into a file, checked afterwards as a form's upload is
  (Pillow for images, ffmpeg for clips).
- `runway://uploads/<id>`: a file sent to our POST /v1/uploads by one of the same user's keys, less
  than UPLOAD_TTL ago; a job keeps its own copy, so the upload may expire afterwards.
- `https://...`: for an image only (a first frame, a character), which Runway fetches itself, as
  the form's image URL. A clip or a last frame given by URL is refused: the product keeps every
  clip it sends (for re-runs, upscales and its price by length) and does not fetch URLs itself.
"""

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import IO

from django.core.files.base import ContentFile
from django.utils import timezone

from api.models import ApiUpload

UPLOAD_SCHEME = "runway://"
UPLOAD_TTL = timedelta(hours=24)
_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)((?:;[\w.+-]+=[\w.+-]+)*);base64,(.*)", re.DOTALL)
_UPLOAD_URI = re.compile(re.escape(UPLOAD_SCHEME) + r"uploads/([0-9a-f-]{36})")


class MediaProblem(Exception):
    """A media URI that cannot be used; the message is for the caller."""


@dataclass(frozen=True)
class Media:
    """What a media URI gave: a file to store, or a URL Runway fetches (an image's only)."""

    file: IO[bytes] | None = None
    url: str = ""


def upload_uri(upload: ApiUpload) -> str:
    return f"{UPLOAD_SCHEME}uploads/{upload.id}"


def media_from(uri: object, *, user_id: int, url_allowed: bool) -> Media:
    """The file or URL `uri` stands for; MediaProblem when it is none that may be used here."""
    if not isinstance(uri, str):
        raise MediaProblem(f"Expected string, received {json_type(uri)}")
    if uri.startswith("data:"):
        return Media(file=_decoded(uri))
    if uri.startswith(UPLOAD_SCHEME):
        return Media(file=_uploaded(uri, user_id))
    if uri.startswith("https://"):
        if not url_allowed:
            raise MediaProblem(
                "Only an image may be given by its URL here: send this file as a data URI, or upload it "
                "with POST /v1/uploads and use its runway:// URI."
            )
        return Media(url=uri)
    raise MediaProblem("Expected an https:// URL, a data URI or a runway:// URI of an upload.")


def _decoded(uri: str) -> IO[bytes]:
    match = _DATA_URI.fullmatch(uri)
    if match is None:
        raise MediaProblem("Invalid data URI: expected data:<type>;base64,<data>.")
    try:
        content = base64.b64decode(match.group(3), validate=True)
    except (binascii.Error, ValueError):
        raise MediaProblem("Invalid data URI: its data is not base64.") from None
    subtype = match.group(1).split("/", 1)[1].split("+", 1)[0]
    return ContentFile(content, name=f"input.{subtype}")


def _uploaded(uri: str, user_id: int) -> IO[bytes]:
    match = _UPLOAD_URI.fullmatch(uri)
    upload = None
    if match is not None:
        upload = (
            ApiUpload.objects.filter(
                id=uuid.UUID(match.group(1)),
                api_key__user_id=user_id,
                arrived_at__isnull=False,
                created_at__gt=timezone.now() - UPLOAD_TTL,
            )
            .exclude(file="")
            .first()
        )
    if upload is None:
        raise MediaProblem("No such upload: it is unknown, its file never arrived, or it has expired.")
    try:
        opened: IO[bytes] = upload.file.open("rb")
    except OSError:
        raise MediaProblem("This upload's file is no longer stored: upload it again.") from None
    return opened


def json_type(value: object) -> str:
    """What zod calls a JSON value's type in its messages ("string", "number", "array", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)
