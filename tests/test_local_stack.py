"""The record `make run` keeps of its broker and simulator, for commands in a second terminal."""

import os
import stat
import subprocess
import sys

from runway_project import local_stack


def test_a_running_stack_is_read_back(tmp_path):
    path = tmp_path / "local-stack.json"
    env = {"DEBUG": "True", "CELERY_BROKER_URL": "filesystem://", "PATH": "/bin", "RUNWAY_SIMULATED": "True"}
    local_stack.stack_write(path, pid=os.getpid(), env={**env, "RUNWAY_API_KEY": "key_simulated"})

    record = local_stack.stack_read(path)

    assert record["pid"] == os.getpid()
    assert record["env"] == {  # only what a second process needs; not PATH or the rest of the environment
        "DEBUG": "True",
        "CELERY_BROKER_URL": "filesystem://",
        "RUNWAY_SIMULATED": "True",
        "RUNWAY_API_KEY": "key_simulated",
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the simulator's key is readable by its owner alone


def test_a_real_runway_key_is_never_written(tmp_path):
    path = tmp_path / "local-stack.json"
    local_stack.stack_write(path, pid=os.getpid(), env={"CELERY_BROKER_URL": "redis://", "RUNWAY_API_KEY": "key_real"})
    assert "key_real" not in path.read_text()
    assert local_stack.stack_read(path)["env"] == {"CELERY_BROKER_URL": "redis://"}


def test_the_record_of_a_stack_that_died_is_ignored(tmp_path):
    path = tmp_path / "local-stack.json"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    local_stack.stack_write(path, pid=int(gone.stdout), env={"CELERY_BROKER_URL": "filesystem://"})
    assert local_stack.stack_read(path) == {}
    environ = {"RUNWAY_API_KEY": ""}
    assert local_stack.stack_join(path, environ) == {}
    assert environ == {"RUNWAY_API_KEY": ""}


def test_a_missing_or_broken_record_is_ignored(tmp_path):
    path = tmp_path / "local-stack.json"
    assert local_stack.stack_read(path) == {}
    path.write_text("{not json")
    assert local_stack.stack_read(path) == {}
    path.write_text('{"pid": "x", "env": []}')
    assert local_stack.stack_read(path) == {}


def test_a_process_without_a_key_joins_and_keeps_its_own_debug(tmp_path):
    path = tmp_path / "local-stack.json"
    shared = {
        "DEBUG": "True",
        "CELERY_BROKER_URL": "filesystem://",
        "RUNWAY_API_BASE_URL": "http://127.0.0.1:8001",
        "RUNWAY_API_KEY": "key_simulated",
        "RUNWAY_SIMULATED": "True",
    }
    local_stack.stack_write(path, pid=os.getpid(), env=shared)
    environ = {"DEBUG": "False", "CELERY_BROKER_URL": "redis://localhost:6379/0", "RUNWAY_API_KEY": ""}

    local_stack.stack_join(path, environ)

    assert environ == {**shared, "DEBUG": "False"}


def test_a_process_with_a_key_of_its_own_joins_nothing(tmp_path):
    path = tmp_path / "local-stack.json"
    local_stack.stack_write(path, pid=os.getpid(), env={"CELERY_BROKER_URL": "filesystem://"})
    environ = {"RUNWAY_API_KEY": "key_mine", "CELERY_BROKER_URL": "redis://localhost:6379/0"}
    assert local_stack.stack_join(path, environ) == {}
    assert environ["CELERY_BROKER_URL"] == "redis://localhost:6379/0"


def test_only_its_writer_removes_the_record(tmp_path):
    path = tmp_path / "local-stack.json"
    local_stack.stack_write(path, pid=os.getpid(), env={})
    local_stack.stack_remove(path, pid=os.getpid() + 1)
    assert path.exists()
    local_stack.stack_remove(path, pid=os.getpid())
    assert not path.exists()
