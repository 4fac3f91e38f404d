"""Ephemeral uploads, as Runway takes them (runwayml 5.24's `uploads.create_ephemeral`).

``POST /v1/uploads`` with ``{"filename": ..., "type": "ephemeral"}`` answers where to send the file
and what with: ``{"uploadUrl", "fields", "runwayUri"}``. The file goes in a multipart/form-data POST
of those `fields` and a `file` part to `uploadUrl`, as to an S3 presigned POST: here a URL on the
simulator itself, ``/_sim/uploads/<id>``, that needs no key (the fields are the credential) and
answers 204, as S3 does. A wrong or missing field is 403 (S3's "Invalid according to Policy"), an
unknown upload 404, one whose file already came 409, a file outside 512 bytes to 200 MB 400.

The ``runway://`` URI then works wherever a media URI does, for 24 hours on the simulator's clock
from its file's arrival; before that it is refused, as after.

The store keeps no file, only what it knew of it (size, SHA-256, the type its form part declared),
so tests can check what arrived; a state file keeps the uploads too (state.py).
"""

import hashlib
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, replace
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

from runway_simulator.media import UPLOAD_SCHEME

TTL = 24 * 3600.0
MIN_FILE_BYTES = 512
MAX_FILE_BYTES = 200 * 1024 * 1024
# A form field the SDK adds beside those handed out, when given `file_metadata`.
OPTIONAL_FIELDS = ("metadata",)

_UPLOAD_PATH = re.compile(r"/_sim/uploads/([0-9a-f-]{36})")
_URI = re.compile(re.escape(UPLOAD_SCHEME) + r"uploads/([0-9a-f-]{36})")


def upload_id(path: str) -> str | None:
    """The upload an upload URL's path is for; None if the path is not an upload URL's."""
    match = _UPLOAD_PATH.fullmatch(path)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Upload:
    """One upload: handed out by POST /v1/uploads, then (once) given its file."""

    id: str
    filename: str
    fields: dict[str, str]
    created: float  # on the simulator's clock (its monotonic())
    arrived: float | None = None  # when its file came; None until then
    size: int | None = None
    sha256: str | None = None
    content_type: str | None = None  # as the file's form part declared it

    @property
    def runway_uri(self) -> str:
        return f"{UPLOAD_SCHEME}uploads/{self.id}"

    @property
    def path(self) -> str:
        return f"/_sim/uploads/{self.id}"


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


class UploadStore:
    """Every upload handed out, by id. Not thread-safe: the simulator calls it with its lock held."""

    def __init__(self) -> None:
        self._uploads: dict[str, Upload] = {}

    def all(self) -> list[Upload]:
        """Every upload, in the order they were handed out."""
        return list(self._uploads.values())

    def start(self, filename: str, *, now: float) -> Upload:
        upload_id = str(uuid.uuid4())
        fields = {"key": f"uploads/{upload_id}/{filename}", "policy": secrets.token_urlsafe(24)}
        upload = Upload(upload_id, filename, fields, now)
        self._uploads[upload_id] = upload
        return upload

    def receive(self, upload_id: str, content_type: str, body: bytes, *, now: float) -> Refusal | None:
        """Take the multipart body POSTed to an upload URL; the refusal, if it is not taken."""
        upload = self._uploads.get(upload_id)
        if upload is None:
            return Refusal(404, "No such upload.")
        if upload.arrived is not None:
            return Refusal(409, "This upload already has its file.")
        form = _form(content_type, body)
        if form is None:
            return Refusal(400, "Expected a multipart/form-data body.")
        refusal = _form_refusal(upload, form)
        if refusal is not None:
            return refusal
        file = form["file"]
        data = file.get_payload(decode=True)
        assert isinstance(data, bytes)  # _form_refusal checked it
        self._uploads[upload_id] = replace(
            upload,
            arrived=now,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content_type=file.get_content_type(),
        )
        return None

    def uri_problem(self, uri: str, *, now: float) -> str | None:
        """Why a runway:// URI cannot be used at `now`; None if it can."""
        match = _URI.fullmatch(uri)
        upload = self._uploads.get(match.group(1)) if match else None
        if upload is None:
            return "Unknown runway:// URI: it is not one that POST /v1/uploads handed out."
        if upload.arrived is None:
            return "This runway:// URI has no file yet: POST the file to its uploadUrl first."
        if now >= upload.arrived + TTL:
            return "This runway:// URI has expired: uploads last 24 hours."
        return None

    # -- keeping them across a restart ------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        return [asdict(upload) for upload in self._uploads.values()]

    def restore(self, rows: list[dict[str, Any]], *, shift: float) -> None:
        """Take back a snapshot, with `shift` seconds added to every time in it (the clock's change since)."""
        self._uploads = {}
        for row in rows:
            arrived = row.get("arrived")
            upload = Upload(**{**row, "created": row["created"] + shift})
            if arrived is not None:
                upload = replace(upload, arrived=arrived + shift)
            self._uploads[upload.id] = upload


def _form(content_type: str, body: bytes) -> dict[str, Message] | None:
    """The parts of a multipart/form-data body by name; None if it is not one (or a name repeats)."""
    header = EmailMessage()
    header["Content-Type"] = content_type
    if header.get_content_type() != "multipart/form-data" or not header.get_param("boundary"):
        return None
    message = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if message.defects or not message.is_multipart():
        return None
    parts: dict[str, Message] = {}
    for part in message.get_payload():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in parts:
            return None
        parts[name] = part
    return parts


def _form_refusal(upload: Upload, form: dict[str, Message]) -> Refusal | None:
    """Whether the form carries exactly the fields handed out (and maybe the SDK's metadata) and a file of
    a size Runway takes."""
    expected = set(upload.fields) | {"file"}
    unexpected = sorted(set(form) - expected - set(OPTIONAL_FIELDS))
    missing = sorted(expected - set(form))
    if unexpected or missing:
        return Refusal(403, f"Invalid according to policy: missing {missing}, unexpected {unexpected}.")
    for name, value in upload.fields.items():
        if _text(form[name]) != value:
            return Refusal(403, f"Invalid according to policy: field {name!r} is not the one handed out.")
    data = form["file"].get_payload(decode=True)
    if not isinstance(data, bytes) or form["file"].get_filename() is None:
        return Refusal(400, "The `file` part must be a file.")
    if not MIN_FILE_BYTES <= len(data) <= MAX_FILE_BYTES:
        return Refusal(
            400, f"A file must be {MIN_FILE_BYTES} bytes to {MAX_FILE_BYTES} bytes; this one is {len(data)}."
        )
    return None


def _text(part: Message) -> str | None:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None
