"""The worker's heartbeat (runway_project/liveness.py) and `manage.py health --worker`, which reads it.

End to end, against a worker whose broker goes silent: tests/test_deploys.py.
"""

import time
from pathlib import Path

import pytest
from django.core.management import call_command

from runway_project import liveness
from runway_project.celery import app
from videos.services import health


def beat_at(path: Path, taken_at: float) -> None:
    path.write_text(f"{taken_at:.3f}\n")


def test_a_worker_that_took_a_message_lately_is_alive(tmp_path, settings):
    settings.WORKER_STALE_AFTER = 60
    beat_at(tmp_path / "hb", 1_000.0)

    check = health.worker_check(now=1_059.0, path=tmp_path / "hb")

    assert check.ok
    assert check.figures == {"last_message_seconds": 59.0, "stale_after_seconds": 60}


def test_a_worker_that_took_nothing_for_longer_than_stale_after_is_not(tmp_path, settings):
    settings.WORKER_STALE_AFTER = 60
    beat_at(tmp_path / "hb", 1_000.0)

    check = health.worker_check(now=1_061.0, path=tmp_path / "hb")

    assert not check.ok
    assert "took no message for 61 s (WORKER_STALE_AFTER=60): alive but not consuming" in check.summary


def test_no_heartbeat_file_is_a_worker_that_never_started(tmp_path):
    check = health.worker_check(now=1_000.0, path=tmp_path / "absent")

    assert not check.ok
    assert "no heartbeat at" in check.summary


def test_the_command_exits_1_for_a_stale_worker_and_0_for_a_live_one(tmp_path, settings, capsys):
    settings.WORKER_HEARTBEAT_FILE = str(tmp_path / "hb")
    settings.WORKER_STALE_AFTER = 30
    beat_at(tmp_path / "hb", time.time() - 45)

    with pytest.raises(SystemExit) as exit_:
        call_command("health", "--worker")
    assert exit_.value.code == 1
    assert capsys.readouterr().out.startswith("FAIL  worker")

    beat_at(tmp_path / "hb", time.time() - 5)
    call_command("health", "--worker")  # no SystemExit: exit code 0
    assert capsys.readouterr().out.startswith("ok    worker")


def test_the_heartbeat_file_holds_the_time_of_the_last_message_taken(tmp_path):
    heartbeat = liveness.Heartbeat(app, hostname="w1@host", path=tmp_path / "sub" / "hb")
    heartbeat.taken_at = 1_000.0
    heartbeat.write()
    heartbeat.took_one()
    assert liveness.last_taken(tmp_path / "sub" / "hb") == 1_000.0  # written by the thread, not per message

    heartbeat.write()

    written = liveness.last_taken(tmp_path / "sub" / "hb")
    assert written == pytest.approx(time.time(), abs=5)
    assert (tmp_path / "sub" / "hb").stat().st_mtime == pytest.approx(written, abs=0.01)


def test_each_worker_pings_a_queue_of_its_own():
    assert liveness.own_queue("videos-main", "w1@host").name == "videos-main.alive.w1@host"
    assert liveness.is_own_queue("videos-main.alive.w1@host")
    assert not liveness.is_own_queue("videos-main")
