"""What the services share about a job's row: ending it, locking it, writing a claimed step,
scheduling and enqueuing its next step, and removing its stored files."""

import functools
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from videos.models import Status, Step, VideoGeneration
from videos.services.queue import task_send

BACKOFF_CAP = 120.0


@dataclass(frozen=True)
class NextStep:
    """Which step a job wants next, the step number that step must claim, and in how many seconds.

    For a poll, also what a worker that keeps it needs to run it without reading the row
    (videos/services/polling.py): the task at Runway, the job's status and its deadline there.
    """

    generation_id: int
    step: Step
    number: int
    countdown: float
    task_id: str = field(default="", compare=False)
    status: str = field(default="", compare=False)
    deadline: datetime | None = field(default=None, compare=False)


def finish(
    row: VideoGeneration,
    status: Status,
    *,
    message: str = "",
    failure_code: str = "",
    error: str = "",
    cancel_at_runway: bool = False,
) -> None:
    """End the job in `status` (in memory; the caller saves it). With `cancel_at_runway`, its task
    at Runway, if it has one, is to be deleted next."""
    row.move_to(status)
    row.message = message
    row.failure_code = failure_code
    if error:
        row.last_error = error
    if status == Status.SUCCEEDED:
        row.progress = 100
    row.finished_at = timezone.now()
    row.next_check_at = None
    row.cancel_pending = cancel_at_runway and bool(row.runway_task_id)
    row.video_pending = False
    row.error_count = 0


def connection_release() -> None:
    """Give this thread's database connection back to the pool (DATABASE_POOL_SIZE) while it waits
    on something else, such as Runway's answer to a create: its next query takes one again. Without
    a pool, or inside a transaction, it keeps its connection."""
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


@contextmanager
def locked_row(generation_id: int) -> Iterator[VideoGeneration]:
    """The job's row, locked until the block's transaction ends."""
    with transaction.atomic():
        yield VideoGeneration.objects.select_for_update().get(pk=generation_id)


def save_claimed(row: VideoGeneration, claimed_step: int, fields: tuple[str, ...]) -> bool:
    """Write `fields` of a job whose step this worker claimed; False (nothing written) if a cancel took it meanwhile.

    One UPDATE guarded by the step number does what a row lock would, in one statement instead of
    four; a write that ends the job also records its JobEvent, in the same transaction.
    """
    row.updated_at = timezone.now()
    names = (*fields, "updated_at")
    if not row.ending_unrecorded:
        return update_guarded(row, names, step=claimed_step)
    with transaction.atomic():  # the ending and its JobEvent are written together, or neither
        if not update_guarded(row, names, step=claimed_step):
            return False
        row.record_ending()
        return True


def update_guarded(row: VideoGeneration, names: tuple[str, ...], *, step: int, status: str | None = None) -> bool:
    """UPDATE the row's `names` (as they are on `row`) if its step number is still `step` (and its
    status `status`, if given); False when it is not (nothing written).

    What `filter(pk=..., step=...).update(...)` writes, by SQL made once per set of fields: every
    step writes its row this way, and the ORM's building and compiling of the UPDATE cost more CPU
    than the database's work (docs/PERFORMANCE.md). Each value goes through its field's
    get_db_prep_save, as QuerySet.update sends it (tests/test_prepared.py compares the two).
    """
    sql, fields = _guarded_update_sql(connection.vendor, names, status is not None)
    params = [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
    params += [row.pk, step] if status is None else [row.pk, step, status]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return bool(cursor.rowcount)


@functools.cache
def _guarded_update_sql(vendor: str, names: tuple[str, ...], with_status: bool) -> tuple[str, list["Field[Any, Any]"]]:
    meta = VideoGeneration._meta
    fields: list[Field[Any, Any]] = [meta.get_field(name) for name in names]  # type: ignore[misc]
    quote = connection.ops.quote_name
    columns = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    guard = f"{quote('id')} = %s AND {quote('step')} = %s" + (f" AND {quote('status')} = %s" if with_status else "")
    # Only the table's and columns' names and placeholders are formatted in: every value is a parameter.
    return f"UPDATE {quote(meta.db_table)} SET {columns} WHERE {guard}", fields  # noqa: S608


def schedule(row: VideoGeneration, countdown: float) -> NextStep:
    """Note on the row when its next step is due, and return that step (the caller saves the row)."""
    row.next_check_at = timezone.now() + timedelta(seconds=countdown)
    step = row.next_step
    assert step is not None, f"Video #{row.pk} ({row.status}) has no next step to schedule"
    if step != Step.POLL:
        return NextStep(row.pk, step, row.step, countdown)
    return NextStep(row.pk, step, row.step, countdown, row.runway_task_id, row.status, runway_deadline(row))


def send_deadline(row: VideoGeneration) -> datetime:
    """The last moment a job may be sent to Runway: RUNWAY_MAX_QUEUE_WAIT after it was made. A job
    still waiting then (no worker free, or Runway refusing creates for now) is never sent."""
    return row.created_at + timedelta(seconds=settings.RUNWAY_MAX_QUEUE_WAIT)


def runway_deadline(row: VideoGeneration) -> datetime:
    """When a job at Runway times out and its task is deleted there: RUNWAY_MAX_WAIT after Runway
    accepted its create (time waiting to be sent is not counted; see send_deadline)."""
    return (row.submitted_at or row.created_at) + timedelta(seconds=settings.RUNWAY_MAX_WAIT)


def backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter, never shorter than the poll interval or Retry-After."""
    base = min(BACKOFF_CAP, float(settings.RUNWAY_POLL_INTERVAL) * 2.0 ** max(0, attempt - 1))
    return max(base + random.uniform(0, base / 2), retry_after or 0.0)


def task_name(step: Step) -> str:
    """The Celery task that runs `step`: videos/tasks.py registers one per step under this name."""
    return f"videos.tasks.{step.value}"


def enqueue(next_step: NextStep, *, despite_pause: bool = False, answer: dict[str, Any] | None = None) -> bool:
    """Send the step's task message, to run after its countdown; False if the broker could not take
    it (the row still says the step is due, so the sweep sends it once the broker is back). A poll
    may carry Runway's `answer` already (videos/services/polling.py).

    By the task's name: the tasks call the services, so the services do not import the tasks.
    """
    extra = () if answer is None else (answer,)
    return task_send(
        task_name(next_step.step),
        args=(next_step.generation_id, next_step.number, *extra),
        countdown=next_step.countdown,
        despite_pause=despite_pause,
    )


def enqueue_on_commit(next_step: NextStep) -> None:
    """Send the step's task message once the current transaction commits (never for a rolled-back row)."""
    transaction.on_commit(partial(enqueue, next_step))


def stored_files(row: VideoGeneration) -> list[str]:
    """The names in our storage of the job's files: its video, poster, input images, clip and performance."""
    files = (row.video_file, row.poster, row.image, row.last_image, row.clip, row.performance)
    return [file.name for file in files if file.name]


def stored_files_delete(names: Iterable[str]) -> None:
    """Delete files from our storage; one already gone is no matter."""
    for name in names:
        default_storage.delete(name)
