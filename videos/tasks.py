"""Celery entry points: one task per step, named after the step it runs (`videos.tasks.poll` runs
Step.POLL), each a thin wrapper over videos.services.steps. A task takes the job's id and the
number of the step it was scheduled for; the row decides whether it still runs (see
videos/services/steps.py)."""

import logging
from datetime import datetime
from typing import Any, NoReturn

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from runway_project.errors import DATABASE_DOWN, one_line
from videos.models import Step
from videos.runway import RunwayError
from videos.services import account, alerts, queue, recovery, steps, strays, usage
from videos.services.bookkeeping import enqueue, task_name

logger = logging.getLogger(__name__)

# A database that went away (a restart, a failover) fails a step before or after its work: the
# message comes back after 2, 4, 8, 16, then every 30 s, for about 4.5 minutes in all. A step
# that had claimed its row finds it taken and does nothing; the sweep puts that job back to work.
OUTAGE_RETRIES = 12


def outage_backoff(retries: int) -> int:
    """Seconds before the next try of a task that found no database, after `retries` tries."""
    return int(min(30, 2 ** (retries + 1)))


def _retry_after_outage(task: Task, exc: Exception, generation_id: int, *, max_retries: int) -> NoReturn:  # type: ignore[type-arg]
    """Send the task again for later, as the database may be back by then; after `max_retries`, raise `exc`."""
    countdown = outage_backoff(task.request.retries)
    logger.warning(
        "Generation %s: %s found no database (%s); trying again in %s s",
        generation_id,
        task.name,
        one_line(exc),
        countdown,
    )
    raise task.retry(exc=exc, countdown=countdown, max_retries=max_retries)


def _strayed_in(task: Task, *args: object) -> bool:  # type: ignore[type-arg]
    """Whether this message came from another installation through a shared queue: then its job is
    not this database's (or is another job of the same number), and nothing here may touch it."""
    headers = dict(task.request.headers or {})  # the message's own, beside Celery's
    if not strays.is_stray(headers.get(queue.ORIGIN_HEADER)):
        return False
    queue_name = (task.request.delivery_info or {}).get("routing_key") or settings.CELERY_TASK_DEFAULT_QUEUE
    strays.stray_handle(task=task.name, args=args, headers=headers, queue_name=str(queue_name))
    return True


def _step_task(step: Step) -> Task:  # type: ignore[type-arg]
    """The task that runs `step` of a job, registered as videos.tasks.<step>."""

    def run(self: Task, generation_id: int, step_number: int, answer: dict[str, Any] | None = None) -> None:  # type: ignore[type-arg]
        try:
            if not _strayed_in(self, generation_id, step_number):
                steps.step_run_and_enqueue_next(
                    step=step, generation_id=generation_id, number=step_number, answer=answer
                )
        except DATABASE_DOWN as exc:
            _retry_after_outage(self, exc, generation_id, max_retries=OUTAGE_RETRIES)

    run.__doc__ = (
        f"Run the {step.value} step of a job, if it is still the job's step number `step_number`; a poll"
        " with Runway's `answer` already (a worker's poller asked) applies it instead of asking again."
    )
    return shared_task(name=task_name(step), bind=True, ignore_result=True)(run)


submit = _step_task(Step.SUBMIT)  # send the job's one create request to Runway
poll = _step_task(Step.POLL)  # ask Runway how the job's task is doing
store_video = _step_task(Step.STORE_VIDEO)  # download the finished video into our storage
make_poster = _step_task(Step.MAKE_POSTER)  # make the stored video's thumbnail
cancel_at_runway = _step_task(Step.CANCEL_AT_RUNWAY)  # delete an ended job's task at Runway
_STEP_TASKS = {
    Step.SUBMIT: submit,
    Step.POLL: poll,
    Step.STORE_VIDEO: store_video,
    Step.MAKE_POSTER: make_poster,
    Step.CANCEL_AT_RUNWAY: cancel_at_runway,
}


def task_for(step: Step) -> Task:  # type: ignore[type-arg]
    """The task that runs `step`."""
    return _STEP_TASKS[step]


@shared_task(name=steps.RECORD_SUBMISSION_TASK, bind=True, ignore_result=True)
def record_submission(
    self: Task,  # type: ignore[type-arg]
    generation_id: int,
    step_number: int,
    runway_task_id: str,
    submitted_at: str,
    estimated_credits: int | None = None,
) -> None:
    """Write on a job the task Runway created for it while the database was away; tried again for
    about twenty minutes (then Celery logs the task's arguments, its Runway task id among them)."""
    try:
        if _strayed_in(self, generation_id, step_number, runway_task_id, submitted_at, estimated_credits):
            return
        next_step = steps.submission_record(
            generation_id=generation_id,
            claimed=step_number,
            runway_task_id=runway_task_id,
            submitted_at=datetime.fromisoformat(submitted_at),
            estimated_credits=estimated_credits,
        )
    except DATABASE_DOWN as exc:
        _retry_after_outage(self, exc, generation_id, max_retries=4 * OUTAGE_RETRIES)
    if next_step is not None:
        enqueue(next_step)


@shared_task(ignore_result=True)
def advance_generation(generation_id: int, step: int) -> None:
    """Run whichever step is due: the one task of earlier versions, kept so that their messages
    still in a broker during an upgrade run instead of waiting for the sweep."""
    steps.step_run_and_enqueue_next(step=None, generation_id=generation_id, number=step)


@shared_task(bind=True, ignore_result=True)
def sweep_generations(self: Task) -> None:  # type: ignore[type-arg]
    """Run by beat every RUNWAY_SWEEP_INTERVAL seconds: recover jobs whose work was lost."""
    # The queue this worker took it from: where beat, and this installation's work, are (/healthz).
    queue_name = str((self.request.delivery_info or {}).get("routing_key") or "")
    try:
        recovery.generation_sweep(queue=queue_name)
    except DATABASE_DOWN as exc:  # beat sends the next one anyway
        logger.warning("Sweep skipped: no database (%s)", one_line(exc))


@shared_task(ignore_result=True)
def refresh_credit_balance() -> None:
    """Run by beat every RUNWAY_CREDITS_REFRESH seconds, and sent by a page that finds the figure
    stale: read the account's credit balance from Runway for the pages (none without a key)."""
    if not settings.RUNWAY_API_KEY:
        return
    try:
        account.credit_balance_refresh()
    except DATABASE_DOWN as exc:  # beat sends the next one anyway
        logger.warning("Credit balance not refreshed: no database (%s)", one_line(exc))


@shared_task(ignore_result=True)
def check_alerts() -> None:
    """Run by beat every ALERT_CHECK_INTERVAL seconds: email staff of overdue or failing jobs and
    users of their budget, once per crossing, and send the "done" emails that were not
    (services/alerts.py)."""
    try:
        now = timezone.now()
        alerts.alerts_check(now=now)
        alerts.done_mails_catch_up(now=now)
    except DATABASE_DOWN as exc:  # the next check asks again
        logger.warning("Alerts not checked: no database (%s)", one_line(exc))


@shared_task(name=alerts.DONE_MAIL_TASK, bind=True, ignore_result=True)
def mail_job_done(self: Task, event_id: int) -> None:  # type: ignore[type-arg]
    """Sent when a job whose owner asked to be told ends: its mail goes to this worker's mail
    threads. Another installation's message names an ending of its own database, not this one's."""
    if not _strayed_in(self, event_id):
        alerts.done_mail_hand_over(event_id=event_id)


@shared_task(ignore_result=True)
def reconcile_usage() -> None:
    """Run by beat once a day (and from the admin's "Check against Runway now"): Runway's own figures
    of what was spent, per day and model, beside the spend ledger's (services/usage.py)."""
    if not settings.RUNWAY_API_KEY:
        return
    try:
        usage.usage_reconcile()
    except RunwayError:
        pass  # kept for staff in UsageCheck, and logged; tomorrow's reading tries again
    except DATABASE_DOWN as exc:
        logger.warning("Usage not reconciled: no database (%s)", one_line(exc))
