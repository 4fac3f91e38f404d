"""What users and staff do to a job: cancel it, delete it, re-run it, try it again, or run its
next step now (the admin's "Poll now")."""

import logging
from functools import partial

from django.core.files import File
from django.db import transaction

from videos.catalog import VideoRequest
from videos.models import RETRYABLE_STATUSES, Status, VideoGeneration
from videos.services.bookkeeping import (
    enqueue_on_commit,
    finish,
    locked_row,
    schedule,
    stored_files,
    stored_files_delete,
)
from videos.services.creation import generation_create
from videos.services.steps import step_run_and_enqueue_next

logger = logging.getLogger(__name__)


class GenerationError(Exception):
    """An action that does not apply to the job in its current state; the message is for users."""


def generation_cancel(*, generation_id: int) -> VideoGeneration:
    """Stop a job that has not ended: it is cancelled here at once, and the worker deletes its task
    at Runway (the job reads "Cancelling…" until then)."""
    with locked_row(generation_id) as row:
        if row.is_final:
            raise GenerationError(f"This video has already ended ({row.get_status_display().lower()}).")
        row.step += 1  # any task message still on its way is now stale
        finish(row, Status.CANCELLED, message="Cancelled.", cancel_at_runway=True)
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


def generation_poll_now(*, generation_id: int) -> VideoGeneration:
    """Run the job's next step at once instead of waiting for its scheduled one."""
    generation = VideoGeneration.objects.get(pk=generation_id)
    step = generation.next_step
    if step is None and generation.is_final:
        raise GenerationError(f"This video has already ended ({generation.get_status_display().lower()}).")
    if step is None:
        raise GenerationError("This video is being sent to Runway right now.")
    step_run_and_enqueue_next(step=step, generation_id=generation_id, number=generation.step)
    generation.refresh_from_db()
    return generation
