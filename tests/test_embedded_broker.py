"""The embedded broker (`make run` without Redis): messages as files, shared by processes that
publish and consume at once. kombu's own file transport names a message file before writing it,
so a consumer can read it empty and die on JSONDecodeError (kombu issue 1551)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.stack

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
