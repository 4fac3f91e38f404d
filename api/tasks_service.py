"""What the API's endpoints do, over the same services as the form: make a task (one job per
request, however often it is sent), read one, delete one, take an upload.

One create per request: a create is answered with the job an earlier one made, rather than a new
job, when it repeats
- the same `Idempotency-Key` from the same key within IDEMPOTENCY_WINDOW (whatever its retry count;
  a different body with that key is refused), or
- without one, when the official SDK marks it as its own retry (`x-stainless-retry-count` of 1 or
  more) of the same body from the same key within RETRY_WINDOW. The SDK retries a create that
  timed out, met a 429 or 5xx, or lost its connection: the first two made no job (an answer of ours
  that is not 200 made nothing), the last may have, and this finds it. A first attempt (retry count
  0) always makes a job: two identical scripts' requests are two videos.
Both lookups and the create run with the key's row locked, so a retry that arrives while the
first attempt is still being made waits for it, and finds it.
"""

import contextlib
import hashlib
import logging
import uuid
from datetime import datetime, timedelta

from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from api import wire
from api.media import UPLOAD_TTL
from api.models import ApiCreate, ApiKey, ApiUpload
from videos.models import Origin, VideoGeneration
from videos.services import actions, creation

logger = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(days=1)
RETRY_WINDOW = timedelta(minutes=10)
IDEMPOTENCY_KEY_MAX = 255
UPLOAD_TOKEN_SECONDS = 3600
_UPLOAD_SALT = "api.uploads.token"


class InvalidRequest(Exception):
    """A request that makes no job: its issues, at the body's paths."""

    def __init__(self, issues: list[wire.Issue], message: str = "Validation of body failed") -> None:
        super().__init__(message)
        self.issues = issues


def fingerprint(endpoint: str, body: bytes) -> str:
    return hashlib.sha256(endpoint.encode() + b"\n" + body).hexdigest()


def api_task_create(
    *,
    api_key: ApiKey,
    endpoint: str,
    body: object,
    raw_body: bytes,
    idempotency_key: str = "",
    retry_count: int = 0,
    base_url: str = "",
) -> VideoGeneration:
    """The job a create asks for (made now, or the one this request repeats).

    Raises InvalidRequest (nothing made, nothing sent) or creation.LimitReached.
    """
    if len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidRequest([], f"The Idempotency-Key header is longer than {IDEMPOTENCY_KEY_MAX} characters.")
    digest = fingerprint(endpoint, raw_body)
    with transaction.atomic():
        ApiKey.objects.select_for_update().only("pk").get(pk=api_key.pk)
        earlier = _repeated(api_key, digest, idempotency_key, retry_count)
        if earlier is not None:
            logger.info("API create through %s repeats video #%s: answered with it", api_key.prefix, earlier.pk)
            return earlier
        generation = _made(api_key, endpoint, body)
        ApiCreate.objects.create(
            api_key=api_key,
            generation=generation,
            idempotency_key=idempotency_key,
            fingerprint=digest,
            base_url=base_url[:300],
        )
    logger.info("API create through %s made video #%s", api_key.prefix, generation.pk)
    return generation


def _repeated(api_key: ApiKey, digest: str, idempotency_key: str, retry_count: int) -> VideoGeneration | None:
    """The job an earlier create made that this one repeats, if any (see the module's docstring)."""
    now = timezone.now()
    mine = ApiCreate.objects.filter(api_key=api_key).select_related("generation").order_by("-created_at")
    if idempotency_key:
        earlier = mine.filter(idempotency_key=idempotency_key, created_at__gte=now - IDEMPOTENCY_WINDOW).first()
        if earlier is not None and earlier.fingerprint != digest:
            raise InvalidRequest(
                [], "This Idempotency-Key was used in the last 24 hours for a different request: use a new key."
            )
        return earlier.generation if earlier is not None else None
    if retry_count < 1:
        return None
    earlier = mine.filter(fingerprint=digest, idempotency_key="", created_at__gte=now - RETRY_WINDOW).first()
    return earlier.generation if earlier is not None else None


def _made(api_key: ApiKey, endpoint: str, body: object) -> VideoGeneration:
    parsed = wire.request_from(endpoint, body, user_id=api_key.user_id)
    try:
        if parsed.request is None:
            raise InvalidRequest(parsed.issues)
        try:
            return creation.generation_create(owner=api_key.user, request=parsed.request, origin=Origin.API)
        except creation.LimitReached:
            raise
        except ValidationError as exc:
            issues = wire.issues_from(exc.message_dict, endpoint=endpoint, model=parsed.request.model or "")
            raise InvalidRequest(issues) from None
    finally:
        parsed.close()


def api_task(*, api_key: ApiKey, task_id: str) -> VideoGeneration | None:
    """The key's owner's job of this public id, with its cost; None for any other (or a deleted one)."""
    try:
        public_id = uuid.UUID(task_id)
    except ValueError:
        return None
    jobs = VideoGeneration.objects.visible().with_cost()
    return jobs.filter(public_id=public_id, owner_id=api_key.user_id).first()


def api_task_delete(*, api_key: ApiKey, task_id: str) -> bool:
    """What the dashboard's Cancel then Delete do: Runway's task is deleted by the worker. False:
    no such task of the owner's."""
    generation = api_task(api_key=api_key, task_id=task_id)
    if generation is None:
        return False
    if not generation.is_final:
        with contextlib.suppress(actions.GenerationError):  # it ended meanwhile
            actions.generation_cancel(generation_id=generation.pk)
    actions.generation_delete(generation_id=generation.pk)
    return True


# -- uploads ------------------------------------------------------------------------------------


def api_upload_start(*, api_key: ApiKey, filename: object, kind: object) -> ApiUpload:
    """POST /v1/uploads: a place for one file, and the token its POST must carry."""
    issues: list[wire.Issue] = []
    if not isinstance(filename, str) or not filename.strip() or len(filename) > 255:
        issues.append((("filename",), "Expected a file name of 1 to 255 characters"))
    if kind != "ephemeral":
        issues.append((("type",), "Invalid literal value, expected 'ephemeral'"))
    if issues:
        raise InvalidRequest(issues)
    assert isinstance(filename, str)
    return ApiUpload.objects.create(api_key=api_key, filename=filename.strip())


def upload_token(upload: ApiUpload) -> str:
    return signing.TimestampSigner(salt=_UPLOAD_SALT).sign(str(upload.id))


class UploadRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def api_upload_receive(*, upload_id: uuid.UUID, token: str, file: UploadedFile | None) -> ApiUpload:
    """The upload URL's POST: the file, with the token POST /v1/uploads handed out (the only
    credential: the SDK sends no key here). UploadRefused says why not."""
    try:
        signed = signing.TimestampSigner(salt=_UPLOAD_SALT).unsign(token, max_age=UPLOAD_TOKEN_SECONDS)
    except signing.BadSignature:
        raise UploadRefused(403, "Invalid or expired upload token.") from None
    if signed != str(upload_id):
        raise UploadRefused(403, "Invalid or expired upload token.")
    if file is None:
        raise UploadRefused(400, "The form has no `file` part.")
    with transaction.atomic():
        upload = ApiUpload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None:
            raise UploadRefused(404, "No such upload.")
        if upload.arrived_at is not None:
            raise UploadRefused(409, "This upload's file has already arrived.")
        upload.file.save(upload.filename.rsplit("/", 1)[-1], file, save=False)
        upload.size = file.size
        upload.arrived_at = timezone.now()
        upload.save()
    return upload


def api_uploads_expire(*, now: datetime | None = None) -> int:
    """Delete uploads older than UPLOAD_TTL, files and rows (jobs keep their own copies); return how many."""
    old = list(ApiUpload.objects.filter(created_at__lt=(now or timezone.now()) - UPLOAD_TTL))
    for upload in old:
        if upload.file:
            upload.file.delete(save=False)
        upload.delete()
    return len(old)
