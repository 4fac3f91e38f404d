"""Celery entry points: one task per step, named after the step it runs (`videos.tasks.poll` runs
Step.POLL), each a thin wrapper over videos.services.steps. A task takes the job's id and the
number of the step it was scheduled for; the row decides whether it still runs (see
videos/services/steps.py)."""

from celery import Task, shared_task
from django.conf import settings

from videos.models import Step
from videos.services import account, recovery, steps
from videos.services.bookkeeping import task_name


def _step_task(step: Step) -> Task:  # type: ignore[type-arg]
    """The task that runs `step` of a job, registered as videos.tasks.<step>."""

    def run(generation_id: int, step_number: int) -> None:
        steps.step_run_and_enqueue_next(step=step, generation_id=generation_id, number=step_number)

    run.__doc__ = f"Run the {step.value} step of a job, if it is still the job's step number `step_number`."
    return shared_task(name=task_name(step), ignore_result=True)(run)


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


@shared_task(ignore_result=True)
def advance_generation(generation_id: int, step: int) -> None:
    """Run whichever step is due: the one task of earlier versions, kept so that their messages
    still in a broker during an upgrade run instead of waiting for the sweep."""
    steps.step_run_and_enqueue_next(step=None, generation_id=generation_id, number=step)


@shared_task(ignore_result=True)
def sweep_generations() -> None:
    """Run by beat every RUNWAY_SWEEP_INTERVAL seconds: recover jobs whose work was lost."""
    recovery.generation_sweep()


@shared_task(ignore_result=True)
def refresh_credit_balance() -> None:
    """Run by beat every RUNWAY_CREDITS_REFRESH seconds, and sent by a page that finds the figure
    stale: read the account's credit balance from Runway for the pages (none without a key)."""
    if settings.RUNWAY_API_KEY:
        account.credit_balance_refresh()
