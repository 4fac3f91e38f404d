"""Task messages that stray in from another installation through a shared queue
(videos/services/strays.py): left alone, said loudly, counted for /healthz, handed back."""

import logging
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from videos import tasks
from videos.models import LastSweep, Status, StrayMessages, VideoGeneration
from videos.services import health, queue, recovery, strays

pytestmark = pytest.mark.django_db

OTHER_DATABASE = "sqlite /home/bob/other-checkout/db.sqlite3"
FROM_ELSEWHERE = {queue.ORIGIN_HEADER: uuid.uuid4().hex, queue.DATABASE_HEADER: OTHER_DATABASE}


def queue_check(now=None) -> health.Check:
    return next(check for check in health.health_check(now=now).checks if check.name == "queue")


def test_every_message_says_which_installation_sent_it(make_job, broker):
    job = make_job()
    assert queue.task_send("videos.tasks.submit", args=(job.pk, job.step))

    [sent] = broker.tasks()
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM runway_installation")
        [(key,)] = cursor.fetchall()
    assert sent.headers[queue.ORIGIN_HEADER] == key  # the database's own name for itself
    assert sent.headers[queue.DATABASE_HEADER] == queue.this_database()
    assert "password" not in sent.headers[queue.DATABASE_HEADER].lower()


@pytest.mark.django_db(transaction=True)
def test_the_databases_name_for_itself_survives_a_flush_of_every_table():
    # Read once per process: a flush (the tests', or `manage.py flush`) must not change it under a worker.
    before = queue.this_installation()
    call_command("flush", "--noinput")
    queue._installation_keys.clear()
    assert queue.this_installation() == before is not None


def test_a_step_from_another_installation_touches_no_job_and_goes_back_to_the_queue(make_job, broker, caplog):
    # The other installation's job 1 is not ours, though ours has the same number and step.
    ours = make_job(status=Status.QUEUED)
    before = VideoGeneration.objects.filter(pk=ours.pk).values().get()

    tasks.submit.apply(args=[ours.pk, ours.step], headers=FROM_ELSEWHERE, throw=True)

    assert VideoGeneration.objects.filter(pk=ours.pk).values().get() == before
    [returned] = broker.tasks()
    assert (returned.name, returned.args) == ("videos.tasks.submit", [ours.pk, ours.step])
    assert returned.headers[queue.ORIGIN_HEADER] == FROM_ELSEWHERE[queue.ORIGIN_HEADER]  # still the other's
    assert returned.headers[strays.HOPS_HEADER] == 1
    assert returned.eta is not None  # a second later, not at once
    [said] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "from another installation (its database: sqlite /home/bob/other-checkout/db.sqlite3)" in said.message
    assert "leave CELERY_QUEUE unset" in said.message
    counted = StrayMessages.objects.get()
    assert (counted.count, counted.last_task, counted.last_database) == (1, "videos.tasks.submit", OTHER_DATABASE)


def test_a_stray_handed_back_many_times_is_dropped_for_its_own_sweep(make_job, broker):
    job = make_job()
    headers = {**FROM_ELSEWHERE, strays.HOPS_HEADER: strays.STRAY_RETURNS}

    tasks.poll.apply(args=[job.pk, job.step], headers=headers, throw=True)

    assert broker.tasks() == []
    assert StrayMessages.objects.get().count == 1


def test_a_message_of_this_installation_or_one_without_the_header_runs(make_job, broker, settings):
    settings.RUNWAY_API_KEY = ""  # so that submit ends at once without asking Runway
    mine, older = make_job(), make_job()
    tasks.submit.apply(args=[mine.pk, mine.step], headers=queue.origin_headers(), throw=True)
    tasks.submit.apply(args=[older.pk, older.step], throw=True)  # from a version before the header

    assert {job.status for job in VideoGeneration.objects.filter(pk__in=[mine.pk, older.pk])} == {Status.FAILED}
    assert not StrayMessages.objects.exists()


def test_healthz_says_the_queue_is_likely_shared_while_strays_come_in_and_forgets_them_later():
    recovery.generation_sweep()
    assert queue_check().ok

    strays.strays_count(database=OTHER_DATABASE, task="videos.tasks.poll", queue_name="celery")
    strays.strays_count(database=OTHER_DATABASE, task="videos.tasks.submit", queue_name="celery")
    check = queue_check()

    assert not check.ok
    assert check.summary.startswith("likely shared with another installation: 2 of its messages")
    assert "on queue 'celery'" in check.summary and OTHER_DATABASE in check.summary
    assert (check.figures["strays"], check.figures["strays_from"]) == (2, OTHER_DATABASE)
    later = timezone.now() + strays.STRAYS_REPORTED_FOR + timedelta(seconds=1)
    assert queue_check(now=later).ok


def test_healthz_says_when_the_worker_takes_its_work_from_another_queue_than_this_process_sends_to(settings):
    recovery.generation_sweep(queue="runway-0123abcd")  # a worker given another spelling of DATABASE_URL

    check = queue_check()

    assert not check.ok
    assert f"this process sends to {settings.CELERY_TASK_DEFAULT_QUEUE!r}" in check.summary
    assert "the worker took beat's last sweep from 'runway-0123abcd'" in check.summary
    assert LastSweep.objects.get().queue == "runway-0123abcd"
