"""Health for operators: does the database answer, can the broker be reached, does this
installation have its queue to itself, has beat's sweep run lately, and is any job's work long
overdue. Read-only; `/healthz` and `manage.py health` show it.

Each check catches its own failure and says what it was, so a dead database or a hung broker
makes an unhealthy report, never an exception. Nothing in a report is secret: no URL, password
or key, and error messages are scrubbed of them.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, Min
from django.db.models.functions import Coalesce
from django.utils import timezone

from runway_project import liveness
from videos.models import LONG_OVERDUE_POLLS, LastSweep, VideoGeneration
from videos.services import strays

# Beat sends a sweep every RUNWAY_SWEEP_INTERVAL seconds; this many intervals without one that
# finished (two missed in a row, and some) means beat, the broker or the worker is not working.
SWEEP_STALE_AFTER_INTERVALS = 3

Figure: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True)
class Check:
    """One thing checked: whether it is ok, a line for people, and its figures for machines."""

    name: str
    ok: bool
    summary: str
    figures: dict[str, Figure] = field(default_factory=dict)

    def as_json(self) -> dict[str, Figure]:
        return {"ok": self.ok, **self.figures}


@dataclass(frozen=True)
class HealthReport:
    checked_at: datetime
    checks: tuple[Check, ...]

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_json(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "checked_at": self.checked_at.isoformat(),
            "checks": {check.name: check.as_json() for check in self.checks},
        }


def health_check(*, now: datetime | None = None, broker_url: str | None = None) -> HealthReport:
    """Check the database, the broker (the Celery app's unless `broker_url`), beat's last sweep and
    long-overdue jobs, as of `now`."""
    now = now or timezone.now()
    database = _database_check()
    broker = _broker_check(url=broker_url, timeout=settings.CELERY_BROKER_TIMEOUT)
    if database.ok:
        sweep, overdue, queue = _sweep_check(now), _overdue_check(now), _queue_check(now)
    else:  # not asked again: each try could wait for a connection timeout
        names = ("sweep", "overdue_jobs", "queue")
        sweep, overdue, queue = (_unknown(name, "the database did not answer") for name in names)
    return HealthReport(checked_at=now, checks=(database, broker, queue, sweep, overdue))


def _database_check() -> Check:
    started = time.monotonic()
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        ms = _ms_since(started)
        error = _scrubbed(f"{type(exc).__name__}: {exc}")
        return Check("database", False, f"no answer after {ms:.0f} ms ({error})", {"ms": ms, "error": error})
    ms = _ms_since(started)
    return Check("database", True, f"answered in {ms:.0f} ms", {"ms": ms})


def _broker_check(*, url: str | None, timeout: float) -> Check:
    """Open a new connection to the broker (not one from Celery's pool, which may be stale or busy),
    with the timeout every send has: ok means a send would get through now."""
    started = time.monotonic()
    # Given here too, whatever the settings' transport options say: connect_timeout bounds AMQP's
    # connection and handshake; Redis takes socket timeouts (its PING is what hangs when the broker
    # does). max_retries=0: one try, no backoff.
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    with current_app.connection_for_write(url, connect_timeout=timeout, transport_options=options) as conn:
        transport = str(conn.transport.driver_type)
        try:
            conn.ensure_connection(max_retries=0)
        except Exception as exc:  # whatever the transport raises, the broker is not usable
            ms = _ms_since(started)
            error = _scrubbed(f"{type(exc).__name__}: {exc}", [conn.password or ""])
            summary = f"{transport}: no connection after {ms:.0f} ms ({error})"
            return Check("broker", False, summary, {"transport": transport, "ms": ms, "error": error})
    ms = _ms_since(started)
    return Check("broker", True, f"{transport}: connected in {ms:.0f} ms", {"transport": transport, "ms": ms})


def _sweep_check(now: datetime) -> Check:
    stale_after = SWEEP_STALE_AFTER_INTERVALS * settings.RUNWAY_SWEEP_INTERVAL
    try:
        last = LastSweep.objects.filter(pk=LastSweep.ONLY).first()
    except DatabaseError as exc:
        return _unknown("sweep", _scrubbed(f"{type(exc).__name__}: {exc}"))
    if last is None:
        # A new installation too: until beat's first sweep has run, nothing shows that beat, the
        # broker and a worker work together, and lost jobs would never be found.
        summary = f"never ran: beat sends one every {settings.RUNWAY_SWEEP_INTERVAL} s, to a worker"
        figures: dict[str, Figure] = {"last_ran_at": None, "age_seconds": None, "recovered": None}
        return Check("sweep", False, summary, {**figures, "stale_after_seconds": stale_after})
    age = round((now - last.ran_at).total_seconds(), 1)
    figures = {"last_ran_at": last.ran_at.isoformat(), "age_seconds": age, "recovered": last.recovered}
    ok = age <= stale_after
    summary = f"last ran {age:.0f} s ago and recovered {last.recovered} job(s); stale after {stale_after} s"
    return Check("sweep", ok, summary, {**figures, "stale_after_seconds": stale_after})


def _queue_check(now: datetime) -> Check:
    """Whether this installation has its queue to itself: no message of another installation reached
    its workers lately (videos/services/strays.py), and its worker takes beat's sweep from the queue
    this process sends to (a worker given another DATABASE_URL spelling derives another queue)."""
    ours = settings.CELERY_TASK_DEFAULT_QUEUE
    why = "this installation's own, named after its database" if settings.INSTALLATION_QUEUE_DERIVED else "CELERY_QUEUE"
    try:
        found = strays.recent_strays(now=now)
        last = LastSweep.objects.filter(pk=LastSweep.ONLY).first()
    except DatabaseError as exc:
        return _unknown("queue", _scrubbed(f"{type(exc).__name__}: {exc}"))
    worker_queue = last.queue if last is not None and last.queue else None
    figures: dict[str, Figure] = {"queue": ours, "derived": settings.INSTALLATION_QUEUE_DERIVED}
    figures.update(worker_queue=worker_queue, strays=found.count if found else 0)
    if found is not None:
        ago = round((now - found.last_at).total_seconds())
        figures.update(strays_last_seconds_ago=ago, strays_from=found.last_database)
        summary = (
            f"likely shared with another installation: {found.count} of its messages reached this one's workers "
            f"on queue {found.queue!r}, the last {ago} s ago (from {found.last_database}); give each installation "
            "its own queue (leave CELERY_QUEUE unset in each, or set a different one)"
        )
        return Check("queue", False, summary, figures)
    if worker_queue is not None and worker_queue != ours:
        summary = (
            f"this process sends to {ours!r} ({why}), but the worker took beat's last sweep from {worker_queue!r}: "
            "give every process of the installation the same DATABASE_URL and CELERY_QUEUE"
        )
        return Check("queue", False, summary, figures)
    return Check("queue", True, f"{ours!r} ({why}); no message from another installation", figures)


def _overdue_check(now: datetime) -> Check:
    after = LONG_OVERDUE_POLLS * settings.RUNWAY_POLL_INTERVAL
    try:
        # Due since next_check_at; a step claimed and never finished, since it was claimed.
        found = VideoGeneration.objects.long_overdue(now).aggregate(
            count=Count("pk"), since=Min(Coalesce("next_check_at", "updated_at"))
        )
    except DatabaseError as exc:
        return _unknown("overdue_jobs", _scrubbed(f"{type(exc).__name__}: {exc}"))
    count: int = found["count"]
    if not count:
        figures: dict[str, Figure] = {"count": 0, "oldest_seconds": None, "overdue_after_seconds": after}
        return Check("overdue_jobs", True, f"no job overdue by more than {after} s", figures)
    oldest = round((now - found["since"]).total_seconds(), 1)
    figures = {"count": count, "oldest_seconds": oldest, "overdue_after_seconds": after}
    summary = f"{count} job(s) overdue by more than {after} s; the oldest was due {oldest:.0f} s ago"
    return Check("overdue_jobs", False, summary, figures)


def worker_check(*, now: float | None = None, path: Path | None = None) -> Check:
    """Whether the worker writing WORKER_HEARTBEAT_FILE (or `path`) took a message within
    WORKER_STALE_AFTER seconds of `now` (a Unix time): alive and consuming, not merely running."""
    now = time.time() if now is None else now
    path = path or Path(settings.WORKER_HEARTBEAT_FILE)
    stale_after = settings.WORKER_STALE_AFTER
    taken = liveness.last_taken(path)
    if taken is None:
        return Check("worker", False, f"no heartbeat at {path}: the worker has not started (or writes another file)")
    age = max(0.0, now - taken)
    figures: dict[str, Figure] = {"last_message_seconds": round(age, 1), "stale_after_seconds": stale_after}
    if age > stale_after:
        summary = f"took no message for {age:.0f} s (WORKER_STALE_AFTER={stale_after}): alive but not consuming"
        return Check("worker", False, summary, figures)
    return Check("worker", True, f"took a message {age:.0f} s ago", figures)


def _unknown(name: str, why: str) -> Check:
    return Check(name, False, f"unknown: {why}", {"error": f"unknown: {why}"})


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _scrubbed(text: str, more: Iterable[str] = ()) -> str:
    """`text` on one line, without any secret the settings hold (drivers may quote a URL in an error)."""
    secrets = [settings.RUNWAY_API_KEY, settings.SECRET_KEY, str(settings.DATABASES["default"].get("PASSWORD") or "")]
    for secret in [*secrets, *more]:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())
