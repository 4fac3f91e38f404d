from celery import shared_task

from videos import services


@shared_task(ignore_result=True)
def advance_generation(generation_id: int, step: int) -> None:
    """Run one step of a generation and schedule the next; the database row decides what to do."""
    services.generation_continue(generation_id=generation_id, step=step)


@shared_task(ignore_result=True)
def sweep_generations() -> None:
    """Run by beat every RUNWAY_SWEEP_INTERVAL seconds: recover jobs whose message was lost."""
    services.generation_sweep()
