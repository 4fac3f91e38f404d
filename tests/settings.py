"""Test settings: the project's own, with a test broker database and a made-up Runway host.

DATABASE_URL still selects the database, so the suite runs on PostgreSQL or the SQLite default.
"""

import os
import secrets
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "tests-only-" + secrets.token_hex(16))
# A developer's `make run` on this checkout must not lend the tests its broker or simulator.
os.environ["RUNWAY_LOCAL_STACK_FILE"] = ""

from runway_project.settings import *  # noqa: E402,F403

# Redis database 15 (a developer's queue in 0 is untouched) and a queue of this run's own, so
# that two test runs on one machine never take each other's messages.
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
CELERY_TASK_DEFAULT_QUEUE = f"tests-{os.getpid()}-{secrets.token_hex(4)}"
INSTALLATION_QUEUE_DERIVED = False  # named here, as CELERY_QUEUE would
RUNWAY_API_BASE_URL = "https://runway.test"
# A fresh key in Runway's format for every run: tests search pages and logs for it.
RUNWAY_API_KEY = "key_" + secrets.token_hex(64)
RUNWAY_POLL_INTERVAL = 10
RUNWAY_MAX_WAIT = 300
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory, so that a worker process started by the end-to-end tests sees the same data.
    (BASE_DIR / "var").mkdir(exist_ok=True)  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db-{os.getpid()}.sqlite3")}  # noqa: F405
# Tests make requests over plain HTTP, like a developer's machine.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="runway-test-media-"))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# whitenoise looks into STATIC_ROOT when it starts: an empty one (tests/test_static.py fills its own).
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="runway-test-static-"))
# Pages name static files without a `collectstatic` first (production's hashed names need one);
# tests/test_static.py checks production's storage behind a gunicorn.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
