"""The worker's steps: submit, poll, store the video, make the poster, cancel at Runway.

A job moves forward one step at a time, and `VideoGeneration.next_step` says which. Each step runs
as the Celery task of its name (videos/tasks.py) and first *claims* the row: a conditional update
that moves the row's `step` counter on from the number its message carries, so a duplicate, late
or stale message changes nothing. Until the step ends only its holder writes to the row (a cancel
takes the step away instead), and the step returns the one after it, which the task enqueues.
"""

import functools
import logging
import random
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from runway_project import metrics
from runway_project.errors import DATABASE_DOWN
from videos import catalog
from videos.catalog import CANCELLED, FAILED, RUNNING, SUCCEEDED
from videos.models import Status, Step, VideoGeneration
from videos.posters import PosterBusy, PosterError, poster_from_video
from videos.runway import RunwayClient, RunwayError, TaskState, build_payload, download_output, get_client
from videos.services import inputs, ledger, polling, prepared
from videos.services.bookkeeping import (
    NextStep,
    backoff,
    connection_release,
    enqueue,
    finish,
    locked_row,
    runway_deadline,
    save_claimed,
    schedule,
    send_deadline,
    stored_files,
    stored_files_delete,
    update_guarded,
)
from videos.services.queue import task_send

logger = logging.getLogger(__name__)

MAX_CANCEL_ATTEMPTS = 5
# The task that records a created Runway task when the database was away, and how soon it tries.
RECORD_SUBMISSION_TASK = "videos.tasks.record_submission"
RECORD_SUBMISSION_RETRY = 5.0
# Seconds before a poster step that found ffmpeg busy comes back: spread, so a burst of finished
# videos does not come back all at once.
POSTER_BUSY_WAIT = (2.0, 8.0)
UNCONFIRMED_CODE = "UNCONFIRMED"
# A job that waited past RUNWAY_MAX_QUEUE_WAIT and was never sent (ours, as UNCONFIRMED is).
NOT_SENT_CODE = "NOT_SENT"
UNCONFIRMED_MESSAGE = (
    "Runway did not confirm that it received this request. It was not sent again, so that "
    "you are not charged twice; if a video shows up in your Runway account, it came from this request."
)
# Steps that run in the same process right after the step that made them due, instead of queueing
# behind every other job's work: storing the video follows the poll that found it done, while
# Runway's link is fresh and its user waits, and the poster follows the stored video (a broker
# message more per job would cost more than the poster's own work, ffmpeg aside) unless the
# process's poller takes it (its poster threads, so that ffmpeg never holds up a store). Each is
# still a step of its own, claimed, retried and recovered on its own: a poster that finds ffmpeg
# busy comes back through the broker a few seconds later.
_FOLLOWS_AT_ONCE = frozenset({Step.STORE_VIDEO, Step.MAKE_POSTER})
# What a submit, and a step that asked Runway or stored the video, may change.
_SUBMIT_FIELDS = ("runway_task_id", "submitted_at", "error_count", "status", "next_check_at")
_RUNWAY_FIELDS = (
    "status",
    "runway_status",
    "progress",
    "output_url",
    "video_pending",
    "video_file",
    "poster_pending",
    "failure_code",
    "message",
    "last_error",
    "error_count",
    "finished_at",
    "next_check_at",
    "cancel_pending",
)


def step_run(
    *, step: Step | None, generation_id: int, number: int, answer: dict[str, Any] | None = None
) -> NextStep | None:
    """Run one step of a job if it is still the job's next step, numbered `number` (None: whichever
    step the job waits for). A poll given Runway's `answer` (a TaskState's fields, from a worker's
    poller: videos/services/polling.py) applies it instead of asking Runway again.

    Returns the step after it (None when the worker has nothing more to do for the job, or when
    another message already ran this step).
    """
    return _run_claimed(_claim(step, generation_id, number), answer, None)


def step_run_and_enqueue_next(
    *,
    step: Step | None,
    generation_id: int,
    number: int,
    answer: dict[str, Any] | None = None,
    video: IO[bytes] | None = None,
    row: VideoGeneration | None = None,
) -> None:
    """Run one step, then hand the next one on: kept by this process's poller if it takes it (a
    poll, or a poster due now: videos/services/polling.py), run here if it follows at once, or
    else sent to the broker. `video` is the finished video, if the poller downloaded it already
    with Runway's `answer`: the poll keeps it at once, in its own write. `row` is the job as the
    step before wrote it, if the caller has it (the claim then needs no read)."""
    claimed = _claim(step, generation_id, number, row)
    next_step = _run_claimed(claimed, answer, video)
    while next_step is not None and not polling.hold(next_step, claimed[0] if claimed else None):
        if claimed is None or not _follows_at_once(next_step):
            enqueue(next_step)
            return
        # The row in memory is as this step wrote it: claiming the next step needs no read (a cancel
        # meanwhile moved the step number on, and the claim finds nothing).
        row = claimed[0]
        claimed = (row, next_step.step) if _take(row, next_step.step) else None
        next_step = _run_claimed(claimed, None, video)


def _follows_at_once(next_step: NextStep) -> bool:
    return next_step.countdown == 0 and next_step.step in _FOLLOWS_AT_ONCE


def _run_claimed(
    claimed: tuple[VideoGeneration, Step] | None, answer: dict[str, Any] | None, video: IO[bytes] | None
) -> NextStep | None:
    if claimed is None:
        return None
    row, step = claimed
    if step == Step.POLL and answer is not None:
        return _poll(row, TaskState(**answer), video)
    if step == Step.STORE_VIDEO and video is not None:
        return _store_video(row, video)
    return _RUNNERS[step](row)


def _claim(
    step: Step | None, generation_id: int, number: int, known: VideoGeneration | None = None
) -> tuple[VideoGeneration, Step] | None:
    """The row, now held by this step, and the step; None if the step is not the job's to run now.
    A `known` row (as the step before wrote it) is claimed without reading it again: the claim's
    write is guarded by the step number, which a cancel or delete meanwhile moved on."""
    row: VideoGeneration | None = known
    if row is None or row.pk != generation_id or row.step != number:
        row = _row_at(generation_id, number)  # None: deleted, or the step was taken (a stale message)
    due = row.next_step if row is not None else None
    if row is None or due is None or step not in (None, due):
        logger.info("Generation %s: %s step %s is stale, skipping", generation_id, step or "its", number)
        return None
    was_due = row.next_check_at
    if not _take(row, due):
        logger.info("Generation %s: %s step %s was claimed elsewhere", generation_id, due, number)
        return None
    if due == Step.POLL:
        _broker_poll_lag_observe(row, was_due)
    return row, due


def _broker_poll_lag_observe(row: VideoGeneration, was_due: datetime | None) -> None:
    """How late a poll that came through the broker ran (one a poller held says its lag as it sends
    it, and its answer's step finds no due time: polls_in_hand emptied it)."""
    if was_due is not None and was_due <= row.updated_at:
        metrics.poll_lag_observe(via="broker", seconds=(row.updated_at - was_due).total_seconds())


def _row_at(generation_id: int, number: int) -> VideoGeneration | None:
    """The job, if its step number is still `number`: read by every step, so its SQL is made once."""
    query = _row_query(connection.vendor)
    return next(iter(VideoGeneration.objects.raw(query.sql, query.params([generation_id, number]))), None)


@functools.cache
def _row_query(vendor: str) -> prepared.Prepared:
    # Stand-ins no job has: a negative number, and the largest step number the column takes (a
    # negative one would make Django find the query empty before it is written).
    number = 2**31 - 1
    return prepared.prepare(VideoGeneration.objects.filter(pk=-1, step=number), [-1, number])


def _take(row: VideoGeneration, step: Step) -> bool:
    """Move the row's step number on, if nobody did since it was read; the row then is this step's."""
    number, was = row.step, row.status
    fields = ["step", "next_check_at", "updated_at"]
    if step == Step.SUBMIT:
        row.move_to(Status.SUBMITTING)
        fields.append("status")
    elif step == Step.POLL:
        row.poll_count += 1
        fields.append("poll_count")
    row.step, row.next_check_at, row.updated_at = number + 1, None, timezone.now()
    return update_guarded(row, tuple(fields), step=number, status=was)


# --- Submit ---------------------------------------------------------------------------------


def _submit(row: VideoGeneration) -> NextStep | None:
    """Send the one create request of this job, and schedule its first poll; or, past the time a job
    may wait to be sent (RUNWAY_MAX_QUEUE_WAIT), end it without sending anything."""
    claimed = row.step
    if timezone.now() >= send_deadline(row):
        _end_unsent(row.pk, claimed, error="The worker took it up only after RUNWAY_MAX_QUEUE_WAIT.")
        return None
    try:
        payload = generation_payload(generation=row)
    except OSError as exc:  # the stored input image or clip could not be read; nothing was sent
        with locked_row(row.pk) as current:
            if current.step == claimed:
                what = "clip" if current.clip else "image"
                finish(current, Status.FAILED, message=f"The input {what} could not be read.", error=str(exc))
                current.save()
                ledger.spend_settle(generation=current, charged=0, note="Nothing was sent to Runway.")
        return None
    except RunwayError as exc:  # an input's upload failed: no create was sent, so it may be tried again
        return _submit_failed(row.pk, claimed, exc)
    connection_release()  # for the quarter second Runway takes to answer
    try:
        created = get_client().create_video(endpoint=row.endpoint, payload=payload)
    except RunwayError as exc:
        return _submit_failed(row.pk, claimed, exc)
    task_id, estimate = created.id, created.estimated_credits
    # Logged before anything else can fail: from here on the task exists, and is paid for, at Runway.
    logger.info("Generation %s submitted as Runway task %s", row.pk, task_id)
    submitted_at = timezone.now()
    try:
        return submission_record(
            generation_id=row.pk,
            row=row,
            claimed=claimed,
            runway_task_id=task_id,
            submitted_at=submitted_at,
            estimated_credits=estimate,
        )
    except DATABASE_DOWN as exc:
        # The database went away while the create was out: the task id must not live only in this
        # thread. A message carries it until the database is back (videos.tasks.record_submission).
        args = (row.pk, claimed, task_id, submitted_at.isoformat(), estimate)
        if task_send(RECORD_SUBMISSION_TASK, args=args, countdown=RECORD_SUBMISSION_RETRY):
            logger.error("Generation %s: Runway task %s not recorded yet (%s); trying again", row.pk, task_id, exc)
        else:
            logger.critical("Generation %s: Runway task %s could not be recorded (%s)", row.pk, task_id, exc)
        return None


def submission_record(
    *,
    generation_id: int,
    claimed: int,
    runway_task_id: str,
    submitted_at: datetime,
    estimated_credits: int | None = None,
    row: VideoGeneration | None = None,
) -> NextStep | None:
    """Write on the job the task Runway created for its submit step `claimed`, with Runway's
    estimate in the spend ledger, and schedule its first poll; if the job ended meanwhile, stop that
    task at Runway. Raises the database's error when it cannot be written (the caller keeps the
    task id and tries again). `row` is the job as the submit step claimed it, if the caller has it
    (the write is guarded by the step number, so a cancel meanwhile still wins)."""
    if row is None:
        row = VideoGeneration.objects.get(pk=generation_id)
    if row.step == claimed and row.status == Status.SUBMITTING:
        row.runway_task_id = runway_task_id
        row.submitted_at = submitted_at
        row.error_count = 0
        row.move_to(Status.PENDING)
        next_step = schedule(row, settings.RUNWAY_POLL_INTERVAL)
        with transaction.atomic():  # the task id and its estimate are written together, or neither
            if save_claimed(row, claimed, _SUBMIT_FIELDS):
                ledger.spend_estimate(generation=row, runway_credits=estimated_credits)
                return next_step
    with locked_row(generation_id) as current:
        # Every create Runway accepted has its one estimate entry (a second call writes nothing).
        ledger.spend_estimate(generation=current, runway_credits=estimated_credits)
        if current.runway_task_id == runway_task_id:
            return None  # recorded already (a message sent twice)
        # Ended while the create was on its way (cancelled by its owner, or given up on by the
        # sweep): stop the new task at Runway right away, so nobody pays for an unseen video.
        current.runway_task_id = runway_task_id
        current.submitted_at = submitted_at
        current.cancel_pending = True
        current.save()
    return cancel_at_runway(current)


def generation_payload(*, generation: VideoGeneration, client: RunwayClient | None = None) -> dict[str, object]:
    """The body of the job's create request. Reads its stored image or clip, if any (OSError when
    it is gone), and uploads one too large to send inline (RunwayError when that fails)."""
    offer = catalog.offer_for(model=generation.model, endpoint=generation.endpoint)
    return build_payload(
        model=generation.model,
        # An upscaler takes no prompt: the job keeps its source's description as its label only.
        prompt_text=generation.prompt if offer is None or offer.accepts_prompt else "",
        params=generation.params,
        media=inputs.generation_media(generation, client or get_client()),
    )


def _submit_failed(generation_id: int, claimed: int, exc: RunwayError) -> NextStep | None:
    """End the job, or queue it again after a backoff; never resend a create that may have arrived."""
    with locked_row(generation_id) as row:
        if row.step != claimed:  # cancelled meanwhile
            _settle_unsent(row, exc)
            return None
        row.last_error = exc.message
        next_step = None
        if exc.may_have_created:
            logger.error("Generation %s: create outcome unknown (%s); not resending", row.pk, exc.message)
            finish(row, Status.FAILED, message=UNCONFIRMED_MESSAGE, failure_code=UNCONFIRMED_CODE)
            _settle_unsent(row, exc)
        elif exc.permanent:
            finish(row, Status.FAILED, message=exc.message)
            _settle_unsent(row, exc)
        else:
            next_step = _submit_later(row, exc)
        row.save()
    return next_step


def _submit_later(row: VideoGeneration, exc: RunwayError) -> NextStep | None:
    """Queue the job again after a backoff, unless that would be past its send deadline: then it
    ends now, never sent (call with the row locked; the caller saves it)."""
    wait = backoff(row.error_count + 1, exc.retry_after)
    if timezone.now() + timedelta(seconds=wait) >= send_deadline(row):
        finish(row, Status.TIMED_OUT, message=unsent_message(), failure_code=NOT_SENT_CODE)
        _settle_unsent(row, exc)
        return None
    row.move_to(Status.QUEUED)
    row.error_count += 1
    logger.warning("Generation %s: create failed (%s), retrying in %.0f s", row.pk, exc, wait)
    return schedule(row, wait)


def _end_unsent(generation_id: int, claimed: int, *, error: str) -> None:
    """End a job that waited too long to be sent, before anything was sent: nothing to pay."""
    with locked_row(generation_id) as row:
        if row.step != claimed:  # cancelled meanwhile: its own step gives the reservation back
            return
        finish(row, Status.TIMED_OUT, message=unsent_message(), failure_code=NOT_SENT_CODE, error=error)
        row.save()
        ledger.spend_settle(generation=row, charged=0, note=ledger.NOT_SENT_NOTE)
    logger.warning("Generation %s: not sent, it waited longer than RUNWAY_MAX_QUEUE_WAIT", generation_id)


def _settle_unsent(row: VideoGeneration, exc: RunwayError) -> None:
    """The job's create will not be sent again: its reservation is given back when the create
    certainly made no task at Runway, and kept when it may have."""
    if exc.may_have_created:
        ledger.spend_settle(generation=row, charged=None, note=ledger.UNCONFIRMED_NOTE)
    else:
        ledger.spend_settle(generation=row, charged=0, note="Runway made no task: nothing to pay.")


# --- Poll and store the video ---------------------------------------------------------------


def _poll(row: VideoGeneration, known: TaskState | None = None, video: IO[bytes] | None = None) -> NextStep | None:
    """Ask Runway how the task is doing (unless its answer is `known`) and note it; once it
    succeeded, store the video next, or at once, in the same write, when its `video` is here already."""
    claimed = row.step
    if known is None:
        connection_release()  # while Runway answers
    try:
        state = known or get_client().get_task(row.runway_task_id)
        if state.status == SUCCEEDED and not state.output:
            raise RunwayError("Runway said the video succeeded but gave no output", permanent=False)
    except RunwayError as exc:
        countdown = _note_error(row, exc)
        if row.is_final:  # Runway no longer has the task: its last estimate stands
            ledger.spend_settle(generation=row, charged=None, note=f"Runway gave no final cost: {exc.message}")
    else:
        row.error_count = 0
        countdown = _apply_state(row, state)
        if state.status in (SUCCEEDED, FAILED, CANCELLED):
            # Runway's task has ended, whatever becomes of our copy of the video: its cost is final.
            ledger.spend_settle(generation=row, charged=state.cost_credits)
        if row.video_pending and video is not None:
            return _store_video(row, video)  # the store step's work, without a claim and a write of its own
    return _end_step(row, claimed, countdown)


def _apply_state(row: VideoGeneration, state: TaskState) -> float:
    """Note Runway's answer on the row; return when the next step is due."""
    row.runway_status = state.status[:32]
    if state.status == SUCCEEDED:
        row.output_url = state.output[0]
        row.video_pending = True
        return 0.0  # our copy at once: Runway's link expires
    if state.status == FAILED:
        row.last_error = state.failure
        finish(row, Status.FAILED, message=failure_message(state.failure_code), failure_code=state.failure_code)
    elif state.status == CANCELLED:
        finish(row, Status.CANCELLED, message="The video was cancelled at Runway.")
    elif state.status in polling.WAITING:
        row.move_to(polling.WAITING[state.status])
        if state.status == RUNNING and state.progress is not None:
            row.progress = max(0, min(99, round(state.progress * 100)))
    else:
        # Runway may add states; an unknown one is not final, so keep waiting.
        row.last_error = f"Runway reported an unknown status {state.status!r}; still waiting."
        logger.warning("Generation %s: unknown Runway status %r", row.pk, state.status)
    return float(settings.RUNWAY_POLL_INTERVAL)


def _store_video(row: VideoGeneration, video: IO[bytes] | None = None) -> NextStep | None:
    """Keep our own copy of the finished video (`video`, if it was downloaded already); only then is
    the job done."""
    claimed = row.step
    row.video_pending = False
    try:
        stored = video_store(generation=row, url=row.output_url, video=video)
    except RunwayError as exc:
        # A link that stopped working is renewed by the next poll: each answer of Runway's has a new one.
        countdown = _note_error(row, exc, prefix="Runway made the video, but it could not be kept: ")
        return _end_step(row, claimed, countdown)
    row.video_file.name = stored
    finish(row, Status.SUCCEEDED)
    row.poster_pending = True
    return _end_step(row, claimed, 0.0, stored=stored)


def video_store(*, generation: VideoGeneration, url: str, video: IO[bytes] | None = None) -> str:
    """Download a finished video into our storage (or keep `video`, downloaded from `url` already);
    return its name there."""
    name = f"videos/{timezone.now():%Y/%m}/{generation.pk}-{generation.runway_task_id}.mp4"
    if video is not None:
        video.seek(0)
        return default_storage.save(name, File(video))
    connection_release()  # while the video downloads
    with video_download(url) as buffer:
        return default_storage.save(name, File(buffer))


def video_download(url: str) -> IO[bytes]:
    """A finished video from Runway's link, in a temporary file read from its start (closing it
    deletes it); RunwayError when it cannot be had (a link that stopped working, too large, not an MP4)."""
    buffer = tempfile.TemporaryFile()  # noqa: SIM115 (returned open: the caller closes it)
    try:
        download_output(url, buffer, max_bytes=settings.RUNWAY_MAX_VIDEO_BYTES)
    except BaseException:
        buffer.close()
        raise
    buffer.seek(0)
    return buffer


def _note_error(row: VideoGeneration, exc: RunwayError, *, prefix: str = "") -> float:
    """Fail the job on a permanent error; count a temporary one and return its backoff."""
    row.last_error = exc.message
    if exc.permanent:
        finish(row, Status.FAILED, message=prefix + exc.message)
        return 0.0
    row.error_count += 1
    return backoff(row.error_count, exc.retry_after)


def _end_step(row: VideoGeneration, claimed: int, countdown: float, *, stored: str = "") -> NextStep | None:
    """Save what a step learnt (unless a cancel took the step meanwhile) and return the next step."""
    next_step = _next_after(row, countdown)
    if not save_claimed(row, claimed, _RUNWAY_FIELDS):
        if stored:
            default_storage.delete(stored)
        return None  # cancelled while we asked
    if row.status == Status.TIMED_OUT:
        logger.warning("Generation %s timed out after %s polls", row.pk, row.poll_count)
    if next_step is None and row.cancel_pending:
        return cancel_at_runway(row, look=False)  # the poll just looked
    return next_step


def _next_after(row: VideoGeneration, countdown: float) -> NextStep | None:
    if row.is_final:
        # A stored video shows now; its thumbnail is the next step's work.
        return schedule(row, 0) if row.poster_pending else None
    if not row.video_pending and timezone.now() >= runway_deadline(row):
        finish(row, Status.TIMED_OUT, message=timeout_message(), cancel_at_runway=True)
        return None
    return schedule(row, countdown)


def timeout_message() -> str:
    """What a job that Runway had not finished by RUNWAY_MAX_WAIT says."""
    return f"Video generation timed out after {humanize_seconds(settings.RUNWAY_MAX_WAIT)} at Runway"


def unsent_message() -> str:
    """What a job that waited past RUNWAY_MAX_QUEUE_WAIT to be sent says."""
    waited = humanize_seconds(settings.RUNWAY_MAX_QUEUE_WAIT)
    return (
        f"Timed out before it was sent to Runway: it waited more than {waited} to start. Never sent; nothing charged."
    )


def humanize_seconds(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


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


# --- After the video: the poster, and cancelling at Runway ------------------------------------


def _make_poster(row: VideoGeneration) -> NextStep | None:
    """Store a frame of the stored video as the job's thumbnail; without one if that fails.

    A step of its own after the job has ended, so a video shows as soon as it is stored, and
    ffmpeg's work (the most a job costs the worker) waits behind the polls of other jobs. When the
    worker already runs one ffmpeg per core, the step comes back a few seconds later, its thread
    free meanwhile for the polls.
    """
    claimed = row.step
    name = ""
    connection_release()  # while ffmpeg runs
    try:
        with row.video_file.open("rb") as video:
            frame = poster_from_video(video)
        stem = row.video_file.name.removeprefix("videos/").rsplit(".", 1)[0]
        name = default_storage.save(f"posters/{stem}.jpg", ContentFile(frame))
    except PosterBusy:
        next_step = schedule(row, random.uniform(*POSTER_BUSY_WAIT))
        return next_step if save_claimed(row, claimed, ("next_check_at",)) else None
    except (PosterError, OSError) as exc:  # a video without a thumbnail is still a video
        logger.warning("Generation %s: no poster frame: %s", row.pk, exc)
    row.poster.name = name
    row.poster_pending = False
    if not save_claimed(row, claimed, ("poster", "poster_pending")) and name:
        default_storage.delete(name)  # the job was deleted meanwhile
    return None


def cancel_at_runway(generation: VideoGeneration, *, look: bool = True) -> NextStep | None:
    """Delete an ended job's task at Runway, so nobody pays for a video nobody will see; then, if the
    job was deleted, our files and its row.

    Run right after the step that ended the job; as a step of its own after a cancel or a delete
    (which never wait on Runway); and again after a failure, up to MAX_CANCEL_ATTEMPTS times. Unless
    the job's cost is known already (or a poll has just asked, `look` False), Runway is first asked
    how the task is: whether Runway refunds a cancelled task depends on its status at the moment it
    is cancelled (ledger.spend_settle_stopped).
    """
    connection_release()  # while Runway answers
    seen = _last_look(generation) if look else None
    try:
        get_client().delete_task(generation.runway_task_id)  # a task Runway no longer has counts as deleted
    except RunwayError as exc:
        retry = _cancel_failed(generation.pk, exc)
        if retry is not None:
            return retry
        _cancel_done(generation.pk, deleted=False, seen=seen)
        return None
    logger.info("Generation %s: task %s deleted at Runway", generation.pk, generation.runway_task_id)
    _cancel_done(generation.pk, deleted=True, seen=seen)
    return None


def _last_look(generation: VideoGeneration) -> TaskState | None:
    """What Runway says of the task just before it is deleted, when that decides its cost: None when
    it is known to have started (RUNNING: no refund, whatever happens next) or ended, or its cost
    is final already (a finished job being deleted: a delete refunds nothing then), or when Runway
    does not say."""
    known = generation.runway_status in (catalog.RUNNING, *catalog.FINAL_TASK_STATES)
    if known or ledger.spend_is_final(generation_id=generation.pk):
        return None
    try:
        return get_client().get_task(generation.runway_task_id)
    except RunwayError:
        return None  # the status of the last poll decides


def _cancel_failed(generation_id: int, exc: RunwayError) -> NextStep | None:
    """Note a failed delete at Runway; return the retry after a backoff, or None once it is given up."""
    with locked_row(generation_id) as row:
        row.error_count += 1
        row.last_error = f"Could not cancel the task at Runway: {exc.message}"
        next_step = None
        if exc.permanent or row.error_count >= MAX_CANCEL_ATTEMPTS:
            # With the task's id: a deleted job's row is about to go, and staff may want to find the task.
            logger.error(
                "Generation %s: giving up cancelling task %s at Runway: %s", row.pk, row.runway_task_id, exc.message
            )
        else:
            next_step = schedule(row, backoff(row.error_count, exc.retry_after))
        row.save()
    return next_step


def _cancel_done(generation_id: int, *, deleted: bool, seen: TaskState | None = None) -> None:
    """Nothing is left to do at Runway (the task is `deleted` there, or given up on): its cost is
    settled by what Runway said of it last (`seen` just before the delete, or the last poll), and
    a deleted job goes altogether, its files first, then its row."""
    with transaction.atomic():
        # Locked, so that a delete of the job at the same moment is either seen here or comes after.
        row = VideoGeneration.objects.select_for_update().filter(pk=generation_id).first()
        if row is None:
            return
        if seen is not None:
            row.runway_status = seen.status[:32]
        if row.runway_task_id:
            cost = seen.cost_credits if seen is not None else None
            ledger.spend_settle_stopped(generation=row, runway_status=row.runway_status, cost=cost, deleted=deleted)
        if not row.delete_pending:
            row.cancel_pending = False
            if deleted:
                row.error_count = 0
            row.save()
            return
    # Files before the row: should the worker die in between, the row left behind brings the step back.
    stored_files_delete(stored_files(row))
    VideoGeneration.objects.filter(pk=generation_id, delete_pending=True).delete()
    logger.info("Generation %s deleted, with its files", generation_id)


_RUNNERS: dict[Step, Callable[[VideoGeneration], NextStep | None]] = {
    Step.SUBMIT: _submit,
    Step.POLL: _poll,
    Step.STORE_VIDEO: _store_video,
    Step.MAKE_POSTER: _make_poster,
    Step.CANCEL_AT_RUNWAY: cancel_at_runway,
}
