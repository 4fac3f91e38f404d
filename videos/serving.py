"""Serve one stored file (a video, a poster) to someone the view already let through.

Django's FileResponse answers every request with the whole file, and its static `serve` ignores
`Range`; the small packages that add ranges (django-ranged-response, django-ranged-fileresponse)
have no `If-Range`, no 416 and no release in years. So this module does it: single byte ranges
(206 + Content-Range), `If-Range`, 416 for an unsatisfiable range, ETag/Last-Modified with 304,
private caching, a download name, streamed a chunk at a time: from the local disk through the
storage's open/seek, from an S3 bucket through one HEAD and one GET of just the bytes asked for
(django-storages' own file would fetch the whole object for every request). A request for several
ranges gets the whole file (200), as HTTP allows.

In production the transfer can go elsewhere once the view has checked permission:
VIDEO_SENDFILE_HEADER hands it to the front server (nginx's X-Accel-Redirect, Apache's
X-Sendfile), VIDEO_PRESIGNED_URL_SECONDS redirects to a short-lived presigned S3 URL.
"""

import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import IO, Any
from urllib.parse import quote

from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from django.conf import settings
from django.core.files.storage import Storage
from django.db.models.fields.files import FieldFile
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotFound,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header, http_date, parse_http_date_safe
from django.utils.text import slugify
from storages.backends.s3 import S3Storage  # type: ignore[import-untyped]

CHUNK_BYTES = 64 * 1024
NAME_CHARS = 60  # of the prompt in a download name
MISSING_MESSAGE = "The stored file for this video is missing; it may have been removed from storage."

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def download_name(prompt: str, pk: int, extension: str) -> str:
    """`lighthouse-in-a-storm-12.mp4`: the prompt's first words, slugified, then the job's id."""
    words = slugify(prompt)[:NAME_CHARS].rstrip("-") or "video"
    return f"{words}-{pk}.{extension}"


def file_serve(
    request: HttpRequest, *, file: FieldFile, content_type: str, filename: str, presign: bool = True
) -> HttpResponseBase:
    """The answer to a GET for `file`, whose access the caller has already checked. `presign=False`
    streams from a bucket even with VIDEO_PRESIGNED_URL_SECONDS: for an access that can be revoked
    sooner than a presigned URL expires (a share link)."""
    if not file:
        raise Http404("There is no such file for this video.")
    disposition = content_disposition_header(as_attachment=False, filename=filename) or "inline"
    if presign and settings.VIDEO_PRESIGNED_URL_SECONDS:
        return _presigned_redirect(file, content_type, disposition)
    if settings.VIDEO_SENDFILE_HEADER:
        return _sendfile(file, content_type, disposition)
    return _streamed(request, file, content_type, disposition)


def _streamed(request: HttpRequest, file: FieldFile, content_type: str, disposition: str) -> HttpResponseBase:
    """The file's bytes from this process, with Range (206, 416) and conditional requests (304, 412)."""
    try:
        stored = _stat(file)
    except FileMissingError:
        return _missing()
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": stored.etag,
        "Last-Modified": http_date(stored.modified),
        "Cache-Control": f"private, max-age={settings.VIDEO_CACHE_SECONDS}",
    }
    not_modified = get_conditional_response(request, etag=stored.etag, last_modified=stored.modified)
    if not_modified is not None:  # 304, or 412 for a failed If-Match
        for key, value in headers.items():
            not_modified[key] = value
        return not_modified
    try:
        wanted = _wanted_range(request, stored)
    except _UnsatisfiableError:
        return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{stored.size}"})
    start, end = wanted if wanted is not None else (0, stored.size - 1)
    try:
        handle = stored.open_range(start, end - start + 1)
    except FileMissingError:  # removed since _stat looked
        return _missing()
    response = StreamingHttpResponse(
        _Slice(handle, end - start + 1),
        status=206 if wanted is not None else 200,
        content_type=content_type,
        headers={**headers, "Content-Length": str(max(end - start + 1, 0)), "Content-Disposition": disposition},
    )
    if wanted is not None:
        response["Content-Range"] = f"bytes {start}-{end}/{stored.size}"
    return response


def _missing() -> HttpResponse:
    # Said in the answer itself: the production 404 page would not show an Http404's message.
    return HttpResponseNotFound(MISSING_MESSAGE, content_type="text/plain; charset=utf-8")


class FileMissingError(Exception):
    """The job names a stored file that is no longer in storage."""


# (first byte, how many) -> the file's bytes from there, to read a chunk at a time and close.
_RangeOpener = Callable[[int, int], IO[bytes]]


@dataclass(frozen=True)
class _Stored:
    size: int
    modified: int  # seconds since the epoch
    etag: str
    open_range: _RangeOpener


def _stat(file: FieldFile) -> _Stored:
    """Size, time and ETag of the stored file, and how to read it; FileMissingError when it went missing."""
    storage, name = file.storage, file.name
    assert name is not None  # a set FieldFile has a name
    try:
        size, modified, open_range = _located(storage, name)
    except Exception:
        # The local disk raises FileNotFoundError, S3 a ClientError: ask the storage which it was.
        if not storage.exists(name):
            raise FileMissingError(name) from None
        raise
    seconds = int(modified.timestamp())
    digest = hashlib.sha256(f"{name}:{size}:{seconds}".encode()).hexdigest()[:16]
    return _Stored(size=size, modified=seconds, etag=f'"{digest}"', open_range=open_range)


def _located(storage: Storage, name: str) -> tuple[int, datetime, _RangeOpener]:
    """The stored file's size and time, asked once, and how to read a range of it."""
    if isinstance(storage, S3Storage):
        head = storage.open(name, "rb").obj  # a HEAD only: django-storages downloads on the first read
        return head.content_length, head.last_modified, partial(_bucket_range, head)
    return storage.size(name), storage.get_modified_time(name), partial(_disk_range, storage, name)


def _bucket_range(head: Any, start: int, length: int) -> IO[bytes]:
    """Those bytes of an object in the bucket, streamed by one GET with a Range."""
    if length <= 0:
        return io.BytesIO()
    try:
        body: IO[bytes] = head.get(Range=f"bytes={start}-{start + length - 1}")["Body"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            raise FileMissingError(head.key) from None
        raise
    return body


def _disk_range(storage: Storage, name: str, start: int, length: int) -> IO[bytes]:
    """The file, open at `start`."""
    try:
        handle: IO[bytes] = storage.open(name, "rb")
    except FileNotFoundError:
        raise FileMissingError(name) from None
    handle.seek(start)
    return handle


class _UnsatisfiableError(Exception):
    """The range asked for starts past the end of the file (416)."""


def _wanted_range(request: HttpRequest, stored: _Stored) -> tuple[int, int] | None:
    """(first, last) byte asked for, or None for the whole file (no Range, a Range we do not parse
    or with several ranges, or an If-Range that no longer matches); _UnsatisfiableError for 416."""
    header = request.headers.get("Range", "").replace(" ", "")
    match = _RANGE.match(header)
    if not match or not (match[1] or match[2]):
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and not _if_range_holds(if_range, stored):
        return None
    first, last = match[1], match[2]
    if not first:  # bytes=-N: the last N bytes
        return _suffix_range(int(last), stored.size)
    return _bounded_range(int(first), int(last) if last else None, stored.size)


def _suffix_range(suffix: int, size: int) -> tuple[int, int]:
    """The last `suffix` bytes of a file of `size` bytes (bytes=-N)."""
    if suffix == 0 or size == 0:
        raise _UnsatisfiableError
    return max(size - suffix, 0), size - 1


def _bounded_range(start: int, last: int | None, size: int) -> tuple[int, int] | None:
    """Bytes `start` to `last` (to the end when None) of a file of `size` bytes (bytes=N-M, bytes=N-)."""
    if last is not None and last < start:
        return None  # invalid: ignored, as RFC 9110 says
    if start >= size:
        raise _UnsatisfiableError
    return start, min(size - 1 if last is None else last, size - 1)


def _if_range_holds(value: str, stored: _Stored) -> bool:
    """If-Range names the file as it is: its (strong) ETag, or exactly its Last-Modified date."""
    if value.startswith(('"', "W/")):
        return value == stored.etag
    return parse_http_date_safe(value) == stored.modified


class _Slice:
    """`length` bytes of an open file from where it stands, read a chunk at a time; closes the file."""

    def __init__(self, handle: IO[bytes], length: int) -> None:
        self.handle, self.left = handle, length

    def __iter__(self) -> Iterator[bytes]:
        while self.left > 0:
            chunk = self.handle.read(min(CHUNK_BYTES, self.left))
            if not chunk:
                break
            self.left -= len(chunk)
            yield chunk

    def close(self) -> None:
        self.handle.close()


def _sendfile(file: FieldFile, content_type: str, disposition: str) -> HttpResponse:
    """An empty answer naming the file for the front server, which sends it (ranges included)."""
    header = settings.VIDEO_SENDFILE_HEADER
    if header == "X-Accel-Redirect":  # nginx: an `internal` location that aliases MEDIA_ROOT
        target = settings.VIDEO_SENDFILE_PREFIX.rstrip("/") + "/" + quote(str(file.name))
    else:  # X-Sendfile (Apache, lighttpd): the file's path on disk
        target = file.path
    response = HttpResponse(content_type=content_type)
    response[header] = target
    response["Content-Disposition"] = disposition
    response["Cache-Control"] = f"private, max-age={settings.VIDEO_CACHE_SECONDS}"
    return response


def _presigned_redirect(file: FieldFile, content_type: str, disposition: str) -> HttpResponseRedirect:
    """A redirect to a URL of the private bucket that works for VIDEO_PRESIGNED_URL_SECONDS."""
    url = file.storage.url(  # type: ignore[call-arg]  # S3Storage.url takes these
        file.name,
        parameters={"ResponseContentDisposition": disposition, "ResponseContentType": content_type},
        expire=settings.VIDEO_PRESIGNED_URL_SECONDS,
    )
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "private, no-store"  # never replay a URL after it expired
    return response
