"""Which installation a process belongs to (runway_project/installation.py): its database, named
alike by all its processes, and the queue of its own that follows from it."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from runway_project.installation import database_description, default_queue

BASE_DIR = Path(settings.BASE_DIR)


def test_a_sqlite_file_is_named_by_its_real_path_however_a_process_spells_it(tmp_path, monkeypatch):
    (tmp_path / "db.sqlite3").touch()
    (tmp_path / "link").symlink_to(tmp_path)
    monkeypatch.chdir(tmp_path)
    engine = "django.db.backends.sqlite3"

    names = ["db.sqlite3", str(tmp_path / "db.sqlite3"), str(tmp_path / "link" / "db.sqlite3"), "./db.sqlite3"]
    described = {database_description({"ENGINE": engine, "NAME": name}) for name in names}

    assert described == {f"sqlite {tmp_path.resolve() / 'db.sqlite3'}"}


def test_a_database_server_is_named_without_its_user_or_password_and_this_machine_one_way():
    def described(**fields: str) -> str:
        return database_description({"ENGINE": "django.db.backends.postgresql", "NAME": "videos", **fields})

    local = {described(HOST=host, PORT=port) for host in ("", "localhost", "127.0.0.1", "::1") for port in ("", "5432")}
    assert local == {"postgresql localhost:5432/videos"}
    assert described(HOST="db.internal", USER="app", PASSWORD="s3cret") == "postgresql db.internal:5432/videos"
    assert described(HOST="db.internal", PORT="6432") == "postgresql db.internal:6432/videos"


def test_two_databases_get_two_queues_and_one_database_always_the_same():
    first, second = "sqlite /home/ana/videos/db.sqlite3", "sqlite /home/ana/videos-copy/db.sqlite3"

    assert default_queue(first) == default_queue(first)
    assert default_queue(first) != default_queue(second)
    assert default_queue(first).startswith("runway-") and len(default_queue(first)) == len("runway-") + 8


def settings_value(name: str, **env: str) -> str:
    """A setting as a fresh process with this environment reads it (no .env, no make run's record)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_"))}
    environment.update(DJANGO_SETTINGS_MODULE="runway_project.settings", DEBUG="True", RUNWAY_LOCAL_STACK_FILE="")
    environment.update(env)
    code = f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_default_queue_is_the_installations_own_and_celery_queue_names_another(tmp_path):
    one = settings_value("CELERY_TASK_DEFAULT_QUEUE", DATABASE_URL=f"sqlite:///{tmp_path / 'one.sqlite3'}")
    again = settings_value("CELERY_TASK_DEFAULT_QUEUE", DATABASE_URL=f"sqlite:///{tmp_path / 'one.sqlite3'}")
    other = settings_value("CELERY_TASK_DEFAULT_QUEUE", DATABASE_URL=f"sqlite:///{tmp_path / 'two.sqlite3'}")
    named = settings_value("CELERY_TASK_DEFAULT_QUEUE", DATABASE_URL="sqlite:///x.sqlite3", CELERY_QUEUE="mine")

    assert one == again == default_queue(f"sqlite {tmp_path.resolve() / 'one.sqlite3'}")
    assert other != one
    assert named == "mine"
    assert settings_value("INSTALLATION_QUEUE_DERIVED", CELERY_QUEUE="mine") == "False"
    assert settings_value("INSTALLATION_QUEUE_DERIVED") == "True"
