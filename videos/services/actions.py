"""What users and staff do to a job: cancel it, delete it, re-run it, try it again, or have its
next step run now (the admin's "Poll now"). None of them waits on Runway: what must be said to
Runway is the worker's next step."""

import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from videos.catalog import VideoRequest
from videos.models import RETRYABLE_STATUSES, Sharing, Status, Step, VideoGeneration
from videos.services import ledger
from videos.services.bookkeeping import (
    NextStep,
    enqueue,
    enqueue_on_commit,
    finish,
    locked_row,
    schedule,
    stored_files,
    stored_files_delete,
)
from videos.services.creation import generation_create

logger = logging.getLogger(__name__)


class GenerationError(Exception):
    """An action that does not apply to the job in its current state; the message is for users."""


def generation_cancel(*, generation_id: int) -> VideoGeneration:
    """Stop a job that has not ended: it is cancelled here at once, and the worker deletes its task
    at Runway (the job reads "Cancelling…" until then)."""
    with locked_row(generation_id) as row:
        if row.is_final:
            raise GenerationError(f"This video has already ended ({row.get_status_display().lower()}).")
        never_sent = row.status == Status.QUEUED  # no create is out, nor was one accepted
        row.step += 1  # any task message still on its way is now stale
        finish(row, Status.CANCELLED, message="Cancelled.", cancel_at_runway=True)
        if never_sent:
            ledger.spend_settle(generation=row, charged=0, note="Cancelled before it was sent to Runway.")
        if row.cancel_pending:
            # Not here: a web request never waits on Runway. The sweep sends it again if it is lost.
            enqueue_on_commit(schedule(row, 0))
        row.save()
    logger.info("Generation %s cancelled", row.pk)
    return row


def generation_delete(*, generation_id: int) -> None:
    """Remove an ended job: its task at Runway, our files and the row. Deleting it twice does nothing more.

    Its owner's pages forget it at once. A job Runway never had goes here, its files once the row's
    deletion commits; any other is left to the worker's cancel_at_runway step, which deletes the
    task at Runway (retried, and swept up if lost), then the files and the row.
    """
    try:
        with locked_row(generation_id) as row:
            if row.delete_pending:
                return
            if not row.is_final:
                raise GenerationError("Cancel this video before deleting it.")
            if not row.runway_task_id:
                transaction.on_commit(partial(stored_files_delete, stored_files(row)))
                row.delete()
                logger.info("Generation %s deleted", generation_id)
                return
            row.step += 1  # a poster step on its way is now stale
            row.delete_pending = row.cancel_pending = True
            row.error_count = 0  # a cancel that gave up earlier has its attempts again
            enqueue_on_commit(schedule(row, 0))
            row.save()
    except VideoGeneration.DoesNotExist:
        return  # deleted meanwhile
    logger.info("Generation %s deleted; the worker deletes its task at Runway, then its files and row", generation_id)


def user_generations_remove(*, user_id: int) -> int:
    """Before a user is deleted: cancel each of their unfinished jobs and delete every job, all
    through the worker (their tasks at Runway are stopped, then their files and rows removed once
    the deletion commits); return how many. The spend ledger keeps their entries.

    Called from the User model's pre_delete signal (videos/signals.py), so that deleting a user in
    the admin, with its bulk action or with `User.delete()` in a shell, all go through here.
    """
    ids = list(VideoGeneration.objects.filter(owner_id=user_id).values_list("pk", flat=True))
    for generation_id in ids:
        with contextlib.suppress(GenerationError):  # ended already
            generation_cancel(generation_id=generation_id)
        generation_delete(generation_id=generation_id)
    if ids:
        logger.info("User %s deleted: %s job(s) cancelled and deleted through the worker", user_id, len(ids))
    return len(ids)


def generation_retry(*, generation_id: int, request_token: uuid.UUID | None = None) -> VideoGeneration:
    """Make a new job with the settings (and seed) of one that failed, timed out or was cancelled.

    A `request_token` already used by the owner returns that job instead (a double click, a replay)."""
    source = VideoGeneration.objects.get(pk=generation_id)
    if source.status not in RETRYABLE_STATUSES:
        raise GenerationError("Only a video that failed, timed out or was cancelled can be tried again.")
    return generation_rerun(generation_id=generation_id, request_token=request_token)


def generation_rerun(
    *,
    generation_id: int,
    new_seed: bool = False,
    request_token: uuid.UUID | None = None,
    owner: User | None = None,
) -> VideoGeneration:
    """Make a new job with the settings of an ended one: the same seed reproduces it, a new one varies it.
    `owner` runs it again at their own cost (a video shared with them); by default its own owner.

    A `request_token` already used by the owner returns that job instead (a double click, a replay)."""
    source = VideoGeneration.objects.get(pk=generation_id)
    if not source.is_final:
        raise GenerationError("This video has not ended yet.")
    owner = owner or source.owner
    if owner is None:
        raise GenerationError("This video's user was deleted.")
    image = _stored_file(source.image, "image")
    clip = _stored_file(source.clip, "clip")
    performance = _stored_file(source.performance, "performance")
    last_image = _stored_file(source.last_image, "last frame")
    request = VideoRequest(
        prompt=source.prompt,
        model=source.model,
        ratio=source.ratio or None,
        duration=source.duration,
        seed=None if new_seed else source.seed,
        image=image,
        image_url=source.image_url,
        video=clip,
        performance=performance,
        last_image=last_image,
        resolution=source.resolution or None,
        audio=source.audio,
        negative_prompt=source.negative_prompt,
        body_control=source.params.get("bodyControl"),
        expression_intensity=source.params.get("expressionIntensity"),
    )
    try:
        return generation_create(owner=owner, request=request, request_token=request_token)
    finally:
        for opened in (image, clip, performance, last_image):
            if opened is not None:
                opened.close()


def generation_upscale(*, generation_id: int, request_token: uuid.UUID | None = None) -> VideoGeneration:
    """Make a new job that upscales a finished video from our own copy (RUNWAY_UPSCALE_MODEL),
    linked to it; checked, priced and limited as any other. A `request_token` already used by the
    owner returns that job instead."""
    source = VideoGeneration.objects.get(pk=generation_id)
    if source.status != Status.SUCCEEDED or not source.video_file:
        raise GenerationError("Only a finished video whose copy is stored here can be upscaled.")
    if source.owner is None:
        raise GenerationError("This video's user was deleted.")
    video = _stored_file(source.video_file, "video")
    request = VideoRequest(prompt=source.prompt, model=settings.RUNWAY_UPSCALE_MODEL, video=video, upscale=True)
    try:
        return generation_create(owner=source.owner, request=request, request_token=request_token, source=source)
    finally:
        if video is not None:
            video.close()


def generation_share(*, generation_id: int, owner: User, shared_with: str) -> VideoGeneration:
    """Share the owner's done video with their groups or everyone, or take it back (Sharing.PRIVATE):
    at once, for the next page anyone loads (models.GenerationQuerySet.visible_to)."""
    if shared_with not in Sharing.values:
        raise GenerationError("Choose who may see it: only you, your groups, or everyone.")
    if shared_with == Sharing.EVERYONE and not settings.SHARE_WITH_EVERYONE:
        raise GenerationError("Videos can be shared with your groups here, not with everyone.")
    generation = VideoGeneration.objects.visible().get(pk=generation_id, owner=owner)
    if shared_with != Sharing.PRIVATE and generation.status != Status.SUCCEEDED:
        raise GenerationError("Only a done video can be shared.")
    if shared_with == Sharing.GROUPS and not owner.groups.exists():
        raise GenerationError("You are in no group yet: ask staff to add you to one, then share it.")
    VideoGeneration.objects.filter(pk=generation.pk).update(shared_with=shared_with, updated_at=timezone.now())
    generation.shared_with = shared_with
    logger.info("Generation %s shared with %s", generation.pk, shared_with or "its owner only")
    return generation


def _stored_file(stored: FieldFile, what: str) -> "File[Any] | None":
    """The image or clip a job started from, to send again; a clear refusal when it is gone."""
    if not stored:
        return None
    try:
        opened = stored.open("rb")
    except OSError:  # FileNotFoundError on disk, or the bucket's own error
        raise GenerationError(
            f"The {what} this video started from is no longer stored: use Edit & re-run to choose another."
        ) from None
    return File(opened, name=str(stored.name).rsplit("/", 1)[-1])


def generation_poll_now(*, generation_id: int, now: datetime | None = None) -> NextStep:
    """Have the worker run the job's next step now rather than when it is due; return that step.

    Enqueued, never run here: a web request does not wait on Runway. A poll still waits until
    RUNWAY_POLL_INTERVAL after the job's last step wrote its row (`updated_at`, which a step sets
    when it claims the row and again when it ends), so Runway never hears about a task twice
    within the interval. This message and the one already scheduled carry the same step number:
    whichever comes first runs the step, and the other finds it taken.
    """
    now = now or timezone.now()
    generation = VideoGeneration.objects.get(pk=generation_id)
    step = generation.next_step
    if step is None and generation.is_final:
        raise GenerationError(f"This video has already ended ({generation.get_status_display().lower()}).")
    if step is None:
        raise GenerationError("This video is being sent to Runway right now.")
    # A claimed step clears next_check_at until it ends; one claimed long ago lost its worker.
    if generation.next_check_at is None and generation.updated_at > now - generation.step_lost_after:
        raise GenerationError(f"This video's {step.value} step is running right now.")
    countdown = 0.0
    if step == Step.POLL:
        earliest = generation.updated_at + timedelta(seconds=settings.RUNWAY_POLL_INTERVAL)
        countdown = max(0.0, (earliest - now).total_seconds())
    next_step = NextStep(generation.pk, step, generation.step, countdown)
    # Due sooner, as the admin and the sweep see it; not if a worker claimed the step meanwhile.
    due = now + timedelta(seconds=countdown)
    if not VideoGeneration.objects.filter(pk=generation.pk, step=generation.step).update(next_check_at=due):
        raise GenerationError(f"This video's {step.value} step is running right now.")
    enqueue(next_step)
    logger.info("Generation %s: %s step %s queued by staff, in %.0f s", generation.pk, step, generation.step, countdown)
    return next_step
