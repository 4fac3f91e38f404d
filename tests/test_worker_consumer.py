"""The worker's consumer (runway_project/celery.py): Celery's, without the event heartbeat whose
unbounded retry held the consumer's loop while Redis was away (tests/test_deploys.py's outage)."""

from celery.utils.imports import symbol_by_name

from runway_project.celery import WorkerConsumer, app


def test_the_worker_runs_celerys_consumer_without_its_event_heartbeat():
    consumer = symbol_by_name(app.conf.worker_consumer)
    assert consumer is WorkerConsumer
    steps = consumer.Blueprint.default_steps
    assert not [step for step in steps if step.endswith(":Heart")]
    # Everything else of Celery's consumer is there, in its order.
    from celery.worker.consumer import Consumer

    assert steps == [step for step in Consumer.Blueprint.default_steps if step != "celery.worker.consumer.heart:Heart"]
