"""The embedded broker (`make run` without Redis): messages as files, shared by processes that
publish and consume at once. kombu's own file transport names a message file before writing it,
so a consumer can read it empty and die on JSONDecodeError (kombu issue 1551)."""

import os
import queue as queue_module
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Count
from kombu import Connection

from harness.stack import CeleryWorker, database_url, environment
from runway_project import embedded_broker
from runway_simulator import RunwaySimulator
from videos.models import FINAL_STATUSES, Status, VideoGeneration

BASE_DIR = Path(settings.BASE_DIR)
PUBLISHERS = 4
MESSAGES_EACH = 500
ROUNDS = 3  # each round had about an even chance of hitting the race on kombu's transport


def embedded_environment(broker_dir: Path) -> dict[str, str]:
    """The product's settings with the embedded broker in `broker_dir`."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CELERY_")},
        "DJANGO_SETTINGS_MODULE": "runway_project.settings",
        "DEBUG": "True",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_BROKER_DIR": str(broker_dir),
    }


def client(*arguments: str, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.embedded_broker_client", *arguments]
    return subprocess.Popen(  # noqa: S603 - our own helper
        command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.stack
@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_messages_from_four_publishing_processes_all_reach_a_consumer_draining_meanwhile(tmp_path, round_number):
    env = embedded_environment(tmp_path / "broker")
    total = PUBLISHERS * MESSAGES_EACH
    consumer = client("drain", str(total), "--seconds", "60", env=env)
    publishers = [client("publish", str(MESSAGES_EACH), f"p{n}", env=env) for n in range(PUBLISHERS)]

    outputs = [publisher.communicate(timeout=120)[0] for publisher in publishers]
    if any(publisher.returncode != 0 for publisher in publishers):
        consumer.kill()  # it would wait for messages that will never come
    consumed = consumer.communicate(timeout=120)[0]

    for publisher, output in zip(publishers, outputs, strict=True):
        assert publisher.returncode == 0, output[-3000:]
    assert consumer.returncode == 0, consumed[-3000:]
    assert f"received {total}" in consumed


JOBS = 200


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_two_hundred_jobs_created_at_once_all_succeed_through_a_worker_on_the_embedded_broker(tmp_path, user):
    with RunwaySimulator(task_seconds=2.0, api_key=settings.RUNWAY_API_KEY, daily_limit=JOBS) as simulator:
        env = environment(
            embedded_environment(tmp_path / "broker"),
            secret_key=settings.SECRET_KEY,
            database_url=database_url(),
            broker_url="filesystem://",
            queue="celery",
            media_root=str(settings.MEDIA_ROOT),
            api_key=settings.RUNWAY_API_KEY,
            runway_url=simulator.base_url,
            poll_interval=5,
            max_wait=120,
            RUNWAY_MAX_ACTIVE_PER_USER=str(JOBS),
            RUNWAY_DAILY_LIMIT_PER_USER=str(JOBS),
            RUNWAY_MONTHLY_BUDGET_PER_USER=str(10**9),
        )
        worker = CeleryWorker(env, log_dir=BASE_DIR / "var")
        try:
            worker.wait_until_ready()
            creator = client("create", str(JOBS), "--threads", "20", "--user", user.username, env=env)
            output = creator.communicate(timeout=180)[0]
            assert creator.returncode == 0, output[-3000:]

            deadline = time.monotonic() + 240
            while (done := VideoGeneration.objects.filter(status__in=FINAL_STATUSES).count()) < JOBS:
                assert worker.running(), f"the worker died; its log ends:\n{worker.tail()}"
                assert time.monotonic() < deadline, f"{done} of {JOBS} jobs ended; worker log:\n{worker.tail()}"
                time.sleep(0.5)

            assert worker.running()
            statuses = dict(VideoGeneration.objects.values_list("status").annotate(Count("pk")))
            assert statuses == {Status.SUCCEEDED: JOBS}, worker.tail()
            assert simulator.creates == JOBS
        finally:
            worker.kill()


def embedded_connection(broker_dir: Path) -> Connection:
    """A connection to the embedded broker in `broker_dir`, with the transport the settings choose for it."""
    queue = broker_dir / "queue"
    (broker_dir / "control").mkdir(parents=True, exist_ok=True)
    queue.mkdir(exist_ok=True)
    options = {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "control_folder": str(broker_dir / "control"),
    }
    return Connection("filesystem://", transport=embedded_broker.TRANSPORT, transport_options=options)


def test_a_broken_message_file_is_set_aside_and_a_half_written_one_is_not_read(tmp_path):
    with embedded_connection(tmp_path) as connection:
        messages = connection.SimpleQueue("jobs")
        queue_folder = tmp_path / "queue"
        (queue_folder / "000000000000001_broken.jobs.msg").write_bytes(b"")  # as kombu's own could leave one
        (queue_folder / ".000000000000002_partial.jobs.msg.1-x.tmp").write_bytes(b'{"bo')  # a publisher died mid-write
        messages.put({"number": 1})

        message = messages.get(timeout=1)
        message.ack()
        with pytest.raises(queue_module.Empty):
            messages.get(timeout=0.2)

    assert message.payload == {"number": 1}
    assert [path.name for path in (queue_folder / embedded_broker.BROKEN).iterdir()] == [
        "000000000000001_broken.jobs.msg"
    ]


@pytest.mark.stack
def test_two_consuming_processes_never_take_the_same_message(tmp_path):
    env = embedded_environment(tmp_path / "broker")
    records = [tmp_path / "first.txt", tmp_path / "second.txt"]
    consumers = [client("drain", "0", "--record", str(record), env=env) for record in records]
    publishers = [client("publish", str(MESSAGES_EACH), f"p{n}", env=env) for n in range(2)]

    for process in [*publishers, *consumers]:
        output = process.communicate(timeout=120)[0]
        assert process.returncode == 0, output[-3000:]

    taken = [record.read_text().splitlines() for record in records]
    assert sorted(taken[0] + taken[1]) == sorted(f"p{n} {i}" for n in range(2) for i in range(MESSAGES_EACH))
    assert taken[0] and taken[1], "both consumers took part"
