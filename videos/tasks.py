"""Celery entry points: one task per step, named after the step it runs, each a thin wrapper over
videos.services.steps. A task takes the job's id and the number of the step it was scheduled
for; the row decides whether it still runs (see videos/services/steps.py)."""

from celery import Task, shared_task

from videos.models import Step
from videos.services import recovery, steps


@shared_task(ignore_result=True)
def submit(generation_id: int, step: int) -> None:
    """Send the job's one create request to Runway."""
    steps.step_run_and_enqueue_next(step=Step.SUBMIT, generation_id=generation_id, number=step)


@shared_task(ignore_result=True)
def poll(generation_id: int, step: int) -> None:
    """Ask Runway how the job's task is doing."""
    steps.step_run_and_enqueue_next(step=Step.POLL, generation_id=generation_id, number=step)


@shared_task(ignore_result=True)
def store_video(generation_id: int, step: int) -> None:
    """Download the finished video into our storage."""
    steps.step_run_and_enqueue_next(step=Step.STORE_VIDEO, generation_id=generation_id, number=step)


@shared_task(ignore_result=True)
def make_poster(generation_id: int, step: int) -> None:
    """Make the stored video's thumbnail."""
    steps.step_run_and_enqueue_next(step=Step.MAKE_POSTER, generation_id=generation_id, number=step)


@shared_task(ignore_result=True)
def cancel_at_runway(generation_id: int, step: int) -> None:
    """Delete an ended job's task at Runway (again, after an earlier try failed)."""
    steps.step_run_and_enqueue_next(step=Step.CANCEL_AT_RUNWAY, generation_id=generation_id, number=step)


_STEP_TASKS: dict[Step, Task] = {  # type: ignore[type-arg]
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
