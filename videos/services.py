"""Every write and state change of a video generation.

Views, the admin, the management command and the Celery tasks all come through here. A job
moves forward in *steps* (submit, then one poll per step). A step runs only if it claims the
row with a conditional update on `step`, so a duplicate or late task message changes nothing.
"""

import base64
import logging
import random
import secrets
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from videos import catalog
from videos.catalog import CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED, THROTTLED, VideoRequest
from videos.models import AT_RUNWAY_STATUSES, FINAL_STATUSES, RETRYABLE_STATUSES, Status, VideoGeneration
from videos.posters import PosterError, poster_from_video
from videos.runway import (
    RunwayError,
    TaskState,
    build_payload,
    download_output,
    get_client,
)

logger = logging.getLogger(__name__)

BACKOFF_CAP = 120.0
MAX_CANCEL_ATTEMPTS = 5
NO_API_KEY_MESSAGE = "Runway API key is not configured"
UNCONFIRMED_CODE = "UNCONFIRMED"
# A claimed step that has not finished after this long died with its worker (the hard task time
# limit is 90 s).
STEP_LOST_AFTER = timedelta(seconds=120)
CREDITS_CACHE_KEY = "runway:credit-balance"
ESTIMATE_CACHE_KEY = "runway:estimate"
UNCONFIRMED_MESSAGE = (
    "Runway did not confirm that it received this request. It was not sent again, so that "
    "you are not charged twice; if a video shows up in your Runway account, it came from this request."
)


class GenerationError(Exception):
    """An action that does not apply to the job in its current state; the message is for users."""


@dataclass(frozen=True)
class NextStep:
    """When the job wants its next step, and the step number that step must claim."""

    generation_id: int
    step: int
    countdown: float


# --- Creating -------------------------------------------------------------------------------


def generation_create(
    *,
    owner: User,
    request: VideoRequest,
    request_token: uuid.UUID | None = None,
    enqueue: bool = True,
) -> VideoGeneration:
    """Validate a request, store it, and (after commit) hand it to the worker.

    Raises ValidationError with messages per field (or under NON_FIELD_ERRORS for the per-user
    limits); nothing is stored or sent then. A `request_token` already used by this owner
    returns that earlier job instead of making a second one.
    """
    request = request.resolved(text_model=settings.RUNWAY_TEXT_MODEL, image_model=settings.RUNWAY_IMAGE_MODEL)
    problems = catalog.check_request(request)
    if problems:
        raise ValidationError(problems)
    try:
        with transaction.atomic():
            # Lock the owner's row, so that two requests at once cannot both pass the counts below.
            User.objects.select_for_update().only("pk").get(pk=owner.pk)
            if request_token is not None:
                twin = VideoGeneration.objects.filter(owner=owner, request_token=request_token).first()
                if twin is not None:
                    return twin  # the same form posted again: no second job
            _check_limits(owner)
            generation = _new_generation(owner, request, request_token)
            if enqueue and not generation.is_final:
                _enqueue_on_commit(NextStep(generation.pk, generation.step, 0))
    except IntegrityError:
        # The same form posted twice at once: the other request made the job.
        if request_token is None:
            raise
        return VideoGeneration.objects.get(owner=owner, request_token=request_token)
    logger.info("Generation %s created (%s, %s)", generation.pk, generation.model, generation.status)
    return generation


def _new_generation(owner: User, request: VideoRequest, request_token: uuid.UUID | None) -> VideoGeneration:
    """Store a checked, resolved request as a new job (failed at once when there is no API key)."""
    offer = catalog.offer_for(model=request.model or "", endpoint=request.endpoint)
    assert offer is not None and request.model is not None and request.ratio is not None
    seed = request.seed
    if seed is None and offer.accepts_seed:
        seed = secrets.randbelow(catalog.SEED_MAX + 1)
    generation = VideoGeneration(
        owner=owner,
        prompt=request.prompt,
        endpoint=request.endpoint,
        model=request.model,
        ratio=request.ratio,
        duration=request.duration,
        seed=seed,
        image_url=request.image_url,
        request_token=request_token,
        next_check_at=timezone.now(),
    )
    if request.image is not None:
        generation.image.save(getattr(request.image, "name", "image") or "image", request.image, save=False)
    if not settings.RUNWAY_API_KEY:
        _finish(generation, Status.FAILED, message=NO_API_KEY_MESSAGE)
    generation.save()
    return generation


def _check_limits(owner: User) -> None:
    """Refuse a new job past the owner's limits; call with the owner's row locked."""
    jobs = VideoGeneration.objects.filter(owner=owner)
    active_limit = settings.RUNWAY_MAX_ACTIVE_PER_USER
    if jobs.exclude(status__in=FINAL_STATUSES).count() >= active_limit:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: [
                    f"You already have {active_limit} video{'s' if active_limit != 1 else ''} in progress. "
                    "Wait for one to finish, or cancel one, before starting another."
                ]
            }
        )
    day_ago = timezone.now() - timedelta(days=1)
    recent = jobs.filter(created_at__gt=day_ago).order_by("created_at").values_list("created_at", flat=True)
    daily_limit = settings.RUNWAY_DAILY_LIMIT_PER_USER
    if len(recent) >= daily_limit:
        free_at = recent[len(recent) - daily_limit] + timedelta(days=1)
        raise ValidationError(
            {
                NON_FIELD_ERRORS: [
                    f"You have made {daily_limit} videos in the last 24 hours, the most allowed. "
                    f"You can make another after {free_at:%Y-%m-%d %H:%M} UTC."
                ]
            }
        )


def generation_retry(*, generation_id: int) -> VideoGeneration:
    """Make a new job with the settings (and seed) of one that failed, timed out or was cancelled."""
    source = VideoGeneration.objects.get(pk=generation_id)
    if source.status not in RETRYABLE_STATUSES:
        raise GenerationError("Only a video that failed, timed out or was cancelled can be tried again.")
    return generation_rerun(generation_id=generation_id)


def generation_rerun(*, generation_id: int, new_seed: bool = False) -> VideoGeneration:
    """Make a new job with the settings of an ended one: the same seed reproduces it, a new one varies it."""
    source = VideoGeneration.objects.get(pk=generation_id)
    if not source.is_final:
        raise GenerationError("This video has not ended yet.")
    image = File(source.image.open("rb"), name=source.image.name.rsplit("/", 1)[-1]) if source.image else None
    request = VideoRequest(
        prompt=source.prompt,
        model=source.model,
        ratio=source.ratio,
        duration=source.duration,
        seed=None if new_seed else source.seed,
        image=image,
        image_url=source.image_url,
    )
    try:
        return generation_create(owner=source.owner, request=request)
    finally:
        if image is not None:
            image.close()


def _prompt_image(generation: VideoGeneration) -> str | None:
    if generation.image_url:
        return generation.image_url
    if not generation.image:
        return None
    with generation.image.open("rb") as f:
        data = f.read()
    return f"data:{catalog.image_type(data[:16])};base64,{base64.b64encode(data).decode('ascii')}"


# --- Moving a job forward -------------------------------------------------------------------


def generation_advance(*, generation_id: int, step: int) -> NextStep | None:
    """Run one step of a job (submit, poll, or release at Runway) if `step` is still its step.

    Returns when and with which step number to continue, or None when there is nothing more to
    do (or another message already did this step).
    """
    try:
        generation = VideoGeneration.objects.get(pk=generation_id)
    except VideoGeneration.DoesNotExist:
        generation = None
    if generation is None or generation.step != step:
        logger.info("Generation %s: step %s is stale, skipping", generation_id, step)
        return None
    updates: dict[str, object] = {"step": step + 1, "next_check_at": None, "updated_at": timezone.now()}
    if generation.status == Status.QUEUED:
        updates["status"] = Status.SUBMITTING
    elif generation.status in AT_RUNWAY_STATUSES:
        updates["poll_count"] = generation.poll_count + 1
    elif not (generation.status in FINAL_STATUSES and (generation.cancel_pending or generation.poster_pending)):
        return None
    claimed = VideoGeneration.objects.filter(pk=generation_id, step=step, status=generation.status).update(**updates)
    if not claimed:
        logger.info("Generation %s: step %s was claimed elsewhere", generation_id, step)
        return None
    # The row as the claim left it: only the holder of the new step writes to it from now on (a
    # cancel takes the step away instead), so there is nothing to read back.
    for name, value in updates.items():
        setattr(generation, name, value)

    if generation.status == Status.SUBMITTING:
        return _submit(generation)
    if generation.status in AT_RUNWAY_STATUSES:
        return _poll(generation)
    if generation.cancel_pending:
        return _release_at_runway(generation)
    _make_poster(generation)
    return None


def generation_continue(*, generation_id: int, step: int) -> None:
    """Run one step, then hand the next one to the worker."""
    next_step = generation_advance(generation_id=generation_id, step=step)
    if next_step is not None:
        _enqueue(next_step)


def _submit(generation: VideoGeneration) -> NextStep | None:
    claimed_step = generation.step
    try:
        client = get_client()
        task_id = client.create_video(endpoint=generation.endpoint, payload=_payload(generation))
    except RunwayError as exc:
        return _submit_failed(generation.pk, claimed_step, exc)
    except OSError as exc:  # the stored input image could not be read; nothing was sent
        with _locked(generation.pk) as row:
            if row.step == claimed_step:
                _finish(row, Status.FAILED, message="The input image could not be read.", error=str(exc))
                row.save()
        return None
    # Logged before anything else can fail: from here on the task exists, and is paid for, at Runway.
    logger.info("Generation %s submitted as Runway task %s", generation.pk, task_id)

    submitted_at = timezone.now()
    generation.runway_task_id = task_id
    generation.submitted_at = submitted_at
    generation.error_count = 0
    generation.status = Status.PENDING
    next_step = _schedule(generation, settings.RUNWAY_POLL_INTERVAL)
    if _save_step(generation, claimed_step, _SUBMIT_FIELDS):
        return next_step
    with _locked(generation.pk) as row:
        # Ended while the create was on its way (cancelled by its owner, or given up on by the
        # sweep): stop the new task at Runway right away, so nobody pays for an unseen video.
        row.runway_task_id = task_id
        row.submitted_at = submitted_at
        row.cancel_pending = True
        row.save()
    return _release_at_runway(row)


def _submit_failed(generation_id: int, claimed_step: int, exc: RunwayError) -> NextStep | None:
    with _locked(generation_id) as row:
        if row.step != claimed_step:
            return None  # cancelled meanwhile; nothing was created
        row.last_error = exc.message
        if exc.may_have_created:
            logger.error("Generation %s: create outcome unknown (%s); not resending", row.pk, exc.message)
            _finish(row, Status.FAILED, message=UNCONFIRMED_MESSAGE, failure_code=UNCONFIRMED_CODE)
        elif exc.permanent:
            _finish(row, Status.FAILED, message=exc.message)
        elif timezone.now() >= _deadline(row):
            _finish(row, Status.TIMED_OUT, message=_timeout_message())
        else:
            row.status = Status.QUEUED
            row.error_count += 1
            next_step = _schedule(row, _backoff(row.error_count, exc.retry_after))
            row.save()
            logger.warning("Generation %s: create failed (%s), retrying in %.0f s", row.pk, exc, next_step.countdown)
            return next_step
        row.save()
    return None


def _payload(generation: VideoGeneration) -> dict[str, object]:
    return build_payload(
        model=generation.model,
        prompt_text=generation.prompt,
        ratio=generation.ratio,
        duration=generation.duration,
        seed=generation.seed,
        prompt_image=_prompt_image(generation),
    )


def _poll(generation: VideoGeneration) -> NextStep | None:
    claimed_step = generation.step
    state: TaskState | None = None
    error: RunwayError | None = None
    try:
        state = get_client().get_task(generation.runway_task_id)
    except RunwayError as exc:
        error = exc
    stored, output_url = "", ""
    if state is not None and state.status == SUCCEEDED:
        output_url = state.output[0] if state.output else ""
        try:
            if not output_url:
                raise RunwayError("Runway said the video succeeded but gave no output", permanent=False)
            # Our own copy before the job counts as done: Runway's URL expires within a day or two.
            stored = _store_video(generation, output_url)
        except RunwayError as exc:
            state, error = None, exc

    row = generation
    if output_url:
        row.output_url = output_url
    next_step = None
    if error is not None:
        row.last_error = error.message
        if error.permanent:
            made = "Runway made the video, but it could not be kept: " if output_url else ""
            _finish(row, Status.FAILED, message=made + error.message)
        else:
            row.error_count += 1
            countdown = _backoff(row.error_count, error.retry_after)
    else:
        assert state is not None
        row.error_count = 0
        countdown = settings.RUNWAY_POLL_INTERVAL
        _apply_state(row, state, video_name=stored)
    if not row.is_final:
        if timezone.now() >= _deadline(row):
            _finish(row, Status.TIMED_OUT, message=_timeout_message(), cancel_at_runway=True)
        else:
            next_step = _schedule(row, countdown)
    elif row.poster_pending:
        next_step = _schedule(row, 0)  # the video shows now; its thumbnail is the next step's work
    if not _save_step(row, claimed_step, _POLL_FIELDS):
        if stored:
            default_storage.delete(stored)
        return None  # cancelled while we asked
    if row.status == Status.TIMED_OUT:
        logger.warning("Generation %s timed out after %s polls", row.pk, row.poll_count)
    if next_step is not None:
        return next_step
    return _release_at_runway(row) if row.cancel_pending else None


def _apply_state(row: VideoGeneration, state: TaskState, *, video_name: str) -> None:
    if state.status == SUCCEEDED:
        row.video_file.name = video_name
        _finish(row, Status.SUCCEEDED)
        row.poster_pending = True
    elif state.status == FAILED:
        row.last_error = state.failure
        _finish(row, Status.FAILED, message=failure_message(state.failure_code), failure_code=state.failure_code)
    elif state.status == CANCELLED:
        _finish(row, Status.CANCELLED, message="The video was cancelled at Runway.")
    elif state.status == PENDING:
        row.status = Status.PENDING
    elif state.status == THROTTLED:
        row.status = Status.THROTTLED
    elif state.status == RUNNING:
        row.status = Status.RUNNING
        if state.progress is not None:
            row.progress = max(0, min(99, round(state.progress * 100)))
    else:
        # Runway may add states; an unknown one is not final, so keep waiting.
        row.last_error = f"Runway reported an unknown status {state.status!r}; still waiting."
        logger.warning("Generation %s: unknown Runway status %r", row.pk, state.status)


def _store_video(generation: VideoGeneration, url: str) -> str:
    """Download the finished video into our storage; return its name there."""
    with tempfile.TemporaryFile() as buffer:
        download_output(url, buffer, max_bytes=settings.RUNWAY_MAX_VIDEO_BYTES)
        buffer.seek(0)
        name = f"videos/{timezone.now():%Y/%m}/{generation.pk}-{generation.runway_task_id}.mp4"
        return default_storage.save(name, File(buffer))


def _make_poster(generation: VideoGeneration) -> None:
    """Store a frame of the stored video as the job's thumbnail; without one if that fails.

    A step of its own after the job has ended, so a video shows as soon as it is stored, and
    ffmpeg's work (the most a job costs the worker) waits behind the polls of other jobs.
    """
    claimed_step = generation.step
    name = ""
    try:
        with generation.video_file.open("rb") as video:
            frame = poster_from_video(video)
        stem = generation.video_file.name.removeprefix("videos/").rsplit(".", 1)[0]
        name = default_storage.save(f"posters/{stem}.jpg", ContentFile(frame))
    except (PosterError, OSError) as exc:  # a video without a thumbnail is still a video
        logger.warning("Generation %s: no poster frame: %s", generation.pk, exc)
    generation.poster.name = name
    generation.poster_pending = False
    if not _save_step(generation, claimed_step, ("poster", "poster_pending")) and name:
        default_storage.delete(name)  # the job was deleted meanwhile


def failure_message(code: str) -> str:
    """A friendly sentence for a Runway failure code; the raw code stays on the record for staff."""
    if code.startswith("SAFETY.INPUT") or code.startswith("INPUT_PREPROCESSING.SAFETY"):
        return "Runway's content moderation declined the description or image. Please rephrase it and try again."
    if code.startswith("SAFETY.OUTPUT"):
        return "Runway's content moderation declined the generated video. Try a different description."
    if code.startswith("ASSET.INVALID"):
        return "Runway could not use the input image. Please use a JPEG, PNG or WebP image of a reasonable size."
    if code.startswith("INTERNAL.BAD_OUTPUT"):
        return "Runway discarded the result for quality. Changing the description a little may help."
    return "Runway had a problem on its side and could not make this video. Please try again later."


def _release_at_runway(generation: VideoGeneration) -> NextStep | None:
    """Delete an ended job's task at Runway (so nobody pays for a video nobody will see)."""
    try:
        get_client().delete_task(generation.runway_task_id)
    except RunwayError as exc:
        with _locked(generation.pk) as row:
            row.error_count += 1
            row.last_error = f"Could not cancel the task at Runway: {exc.message}"
            if exc.permanent or row.error_count >= MAX_CANCEL_ATTEMPTS:
                row.cancel_pending = False
                row.save()
                logger.error("Generation %s: giving up cancelling at Runway: %s", row.pk, exc.message)
                return None
            next_step = _schedule(row, _backoff(row.error_count, exc.retry_after))
            row.save()
            return next_step
    with _locked(generation.pk) as row:
        row.cancel_pending = False
        row.error_count = 0
        row.save()
    logger.info("Generation %s: task %s deleted at Runway", generation.pk, generation.runway_task_id)
    return None


# --- Actions by users and staff --------------------------------------------------------------


def generation_cancel(*, generation_id: int) -> VideoGeneration:
    """Stop a job that has not ended, here and at Runway."""
    with _locked(generation_id) as row:
        if row.is_final:
            raise GenerationError(f"This video has already ended ({row.get_status_display().lower()}).")
        row.step += 1  # any task message still on its way is now stale
        _finish(row, Status.CANCELLED, message="Cancelled.", cancel_at_runway=True)
        row.save()
    logger.info("Generation %s cancelled", row.pk)
    if row.cancel_pending:
        next_step = _release_at_runway(row)
        if next_step is not None:
            _enqueue(next_step)
        row.refresh_from_db()
    return row


def generation_delete(*, generation_id: int) -> None:
    """Remove an ended job: its task at Runway, our files, and the row."""
    with _locked(generation_id) as row:
        if not row.is_final:
            raise GenerationError("Cancel this video before deleting it.")
        task_id, files = row.runway_task_id, [row.video_file.name, row.poster.name, row.image.name]
        row.delete()
    if task_id:
        try:
            get_client().delete_task(task_id)
        except RunwayError as exc:
            logger.warning("Generation %s deleted here, but its task %s not at Runway: %s", generation_id, task_id, exc)
    for name in files:
        if name:
            default_storage.delete(name)
    logger.info("Generation %s deleted", generation_id)


def generation_estimate(*, model: str) -> float | None:
    """Seconds a job of this model takes, from the last 20 that succeeded; None before there are any.

    Remembered for a minute: every open page asks for it with every status check.
    """
    key = f"{ESTIMATE_CACHE_KEY}:{model}"
    cached = cache.get(key)
    if cached is None:
        recent = (
            VideoGeneration.objects.filter(model=model, status=Status.SUCCEEDED, finished_at__isnull=False)
            .order_by("-finished_at")
            .values_list("created_at", "finished_at")[:20]
        )
        durations = [(finished - created).total_seconds() for created, finished in recent if finished]
        cached = {"seconds": sum(durations) / len(durations) if durations else None}
        cache.set(key, cached, timeout=60)
    seconds = cached["seconds"]
    return seconds if isinstance(seconds, float) else None


def generation_poll_now(*, generation_id: int) -> VideoGeneration:
    """Run the job's next step at once instead of waiting for its scheduled one."""
    generation = VideoGeneration.objects.get(pk=generation_id)
    if generation.is_final and not (generation.cancel_pending or generation.poster_pending):
        raise GenerationError(f"This video has already ended ({generation.get_status_display().lower()}).")
    generation_continue(generation_id=generation_id, step=generation.step)
    generation.refresh_from_db()
    return generation


def generation_sweep() -> int:
    """Put back to work every unfinished job whose task message was lost; return how many.

    The broker only schedules; the rows say what is due. A job whose next step is overdue by a
    poll interval gets a new message for its current step (if the old one turns up after all,
    only one of the two can claim the step). A job stuck in `submitting` lost its worker while
    the create request was out: it may have been made at Runway, so it is not sent again.
    """
    now = timezone.now()
    overdue = Q(next_check_at__lte=now - timedelta(seconds=settings.RUNWAY_POLL_INTERVAL)) | Q(
        next_check_at__isnull=True, updated_at__lte=now - STEP_LOST_AFTER
    )
    due = VideoGeneration.objects.filter(
        Q(status__in=[Status.QUEUED, *AT_RUNWAY_STATUSES])
        | Q(status__in=FINAL_STATUSES, cancel_pending=True)
        | Q(status=Status.SUCCEEDED, poster_pending=True),
        overdue,
    )
    count = 0
    for generation_id, step in due.values_list("pk", "step"):
        _enqueue(NextStep(generation_id, step, 0))
        # Due now: the next sweep sends it again only if this message is lost too.
        VideoGeneration.objects.filter(pk=generation_id, step=step).update(next_check_at=now)
        count += 1

    stuck = VideoGeneration.objects.filter(status=Status.SUBMITTING, updated_at__lte=now - STEP_LOST_AFTER)
    for generation_id in stuck.values_list("pk", flat=True):
        with _locked(generation_id) as row:
            if row.status != Status.SUBMITTING:
                continue
            row.step += 1
            _finish(
                row,
                Status.FAILED,
                message=UNCONFIRMED_MESSAGE,
                failure_code=UNCONFIRMED_CODE,
                error="The worker stopped while the create request was out.",
            )
            row.save()
        count += 1
    if count:
        logger.warning("Sweep: %s job(s) had lost their task message", count)
    return count


def account_credits() -> int | None:
    """The Runway account's credit balance (1 credit = 1 US cent), cached for a minute; None if unknown."""
    cached = cache.get(CREDITS_CACHE_KEY)
    if cached is None:
        # A failure is remembered for the minute too, so a Runway outage does not slow every page.
        cached = {"balance": None}
        try:
            balance = get_client().get_organization().get("creditBalance")
        except RunwayError as exc:
            logger.warning("Could not read the credit balance: %s", exc.message)
        else:
            if isinstance(balance, int):
                cached["balance"] = balance
        cache.set(CREDITS_CACHE_KEY, cached, timeout=60)
    balance = cached["balance"]
    return balance if isinstance(balance, int) else None


# --- Helpers --------------------------------------------------------------------------------


# What a submit and a poll may change; written in one UPDATE guarded by the claimed step, which
# does what a row lock would (a cancel takes the step) in one statement instead of four.
_SUBMIT_FIELDS = ("runway_task_id", "submitted_at", "error_count", "status", "next_check_at")
_POLL_FIELDS = (
    "status",
    "progress",
    "output_url",
    "video_file",
    "poster",
    "failure_code",
    "message",
    "last_error",
    "error_count",
    "finished_at",
    "next_check_at",
    "cancel_pending",
    "poster_pending",
)


def _save_step(row: VideoGeneration, claimed_step: int, fields: tuple[str, ...]) -> bool:
    """Write `fields` of a job whose step this worker claimed; False (nothing written) if a cancel took it meanwhile."""
    row.updated_at = timezone.now()
    values = {name: getattr(row, name) for name in (*fields, "updated_at")}
    return bool(VideoGeneration.objects.filter(pk=row.pk, step=claimed_step).update(**values))


class _locked:
    """`with _locked(pk) as row:` a transaction holding the job's row lock."""

    def __init__(self, generation_id: int) -> None:
        self.generation_id = generation_id
        self.atomic = transaction.atomic()

    def __enter__(self) -> VideoGeneration:
        self.atomic.__enter__()
        return VideoGeneration.objects.select_for_update().get(pk=self.generation_id)

    def __exit__(self, *exc_info: object) -> None:
        self.atomic.__exit__(*exc_info)  # type: ignore[arg-type]


def _finish(
    row: VideoGeneration,
    status: Status,
    *,
    message: str = "",
    failure_code: str = "",
    error: str = "",
    cancel_at_runway: bool = False,
) -> None:
    row.status = status
    row.message = message
    row.failure_code = failure_code
    if error:
        row.last_error = error
    if status == Status.SUCCEEDED:
        row.progress = 100
    row.finished_at = timezone.now()
    row.next_check_at = None
    row.cancel_pending = cancel_at_runway and bool(row.runway_task_id)
    row.error_count = 0


def _schedule(row: VideoGeneration, countdown: float) -> NextStep:
    row.next_check_at = timezone.now() + timedelta(seconds=countdown)
    return NextStep(row.pk, row.step, countdown)


def _deadline(row: VideoGeneration) -> datetime:
    return row.created_at + timedelta(seconds=settings.RUNWAY_MAX_WAIT)


def _backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter, never shorter than the poll interval or Retry-After."""
    base = min(BACKOFF_CAP, float(settings.RUNWAY_POLL_INTERVAL) * 2.0 ** max(0, attempt - 1))
    return max(base + random.uniform(0, base / 2), retry_after or 0.0)


def _timeout_message() -> str:
    return f"Video generation timed out after {humanize_seconds(settings.RUNWAY_MAX_WAIT)}"


def humanize_seconds(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _enqueue(next_step: NextStep) -> None:
    from videos.tasks import advance_generation

    advance_generation.apply_async(args=(next_step.generation_id, next_step.step), countdown=next_step.countdown)


def _enqueue_on_commit(next_step: NextStep) -> None:
    transaction.on_commit(partial(_enqueue, next_step))
