"""The installation's figures for Prometheus, read from the database and the broker when a scrape
asks: jobs by status and model, overdue steps, the queue's depth, this month's spend, budgets,
Runway's credit balance and webhook deliveries (runway_project/metrics.py has the process's own).

Read-only, a handful of aggregate queries and one broker round trip per scrape. Never a label per
user or per job: a series per user would grow with the users, and Prometheus keeps every series it
ever saw. Budgets are totals and counts instead (the users at 80 % and at 100 % of theirs).
"""

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.db.models import Count, Max, Min, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from runway_project.metrics import NAMESPACE
from videos.models import LONG_OVERDUE_POLLS, CreditBalance, SpendEntry, VideoGeneration
from videos.services import ledger

# A user is counted "at" a threshold once this month's spend reaches that share of their budget.
BUDGET_THRESHOLDS = (("0.8", 4, 5), ("1", 1, 1))  # label, numerator, denominator


def _gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=list(labels))


class InstallationCollector(Collector):
    """A prometheus-client collector whose every scrape reads the figures afresh; a source that
    does not answer (the database, the broker) is said by `videos_metrics_source_up`, and its
    figures are left out rather than failing the scrape."""

    def __init__(self, *, now: Callable[[], datetime] = timezone.now, broker_url: str | None = None) -> None:
        self.now = now
        self.broker_url = broker_url  # the Celery app's when None

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        up = _gauge("metrics_source_up", "1 when the scrape could read this source, 0 when not.", ("source",))
        try:
            yield from self._from_database(self.now())
        except DatabaseError:
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
        depth = queue_depth(url=self.broker_url)
        up.add_metric(["broker"], 0 if depth is None else 1)
        if depth is not None:
            queue = _gauge("queue_messages", "Task messages waiting in this installation's queue.", ("queue",))
            queue.add_metric([settings.CELERY_TASK_DEFAULT_QUEUE], depth)
            yield queue
        yield up
        took = _gauge("metrics_collect_seconds", "Seconds this scrape took to read the database and the broker.")
        took.add_metric([], time.monotonic() - started)
        yield took

    def _from_database(self, now: datetime) -> Iterator[Metric]:
        # Read before any is yielded: a database that fails half-way yields none of them.
        metrics = [
            jobs_by_status_and_model(),
            *overdue_steps(now),
            spent_this_month(now),
            *budgets(now),
            *credit_balance(now),
            *webhook_deliveries(now),
        ]
        yield from metrics


def jobs_by_status_and_model() -> GaugeMetricFamily:
    jobs = _gauge("jobs", "Jobs in the database, by status and model.", ("status", "model"))
    rows = VideoGeneration.objects.order_by().values_list("status", "model").annotate(n=Count("pk"))
    for status, model, count in rows:
        jobs.add_metric([status, model], count)
    return jobs


def overdue_steps(now: datetime) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    """What /healthz counts: jobs whose next step is LONG_OVERDUE_POLLS poll intervals late, or a
    step claimed and never finished (VideoGeneration.objects.long_overdue)."""
    found = VideoGeneration.objects.long_overdue(now).aggregate(
        count=Count("pk"), since=Min(Coalesce("next_check_at", "updated_at"))
    )
    count = _gauge(
        "overdue_steps",
        f"Jobs whose next step is over {LONG_OVERDUE_POLLS} poll intervals late, or whose claimed step never ended.",
    )
    count.add_metric([], found["count"])
    oldest = _gauge("overdue_step_oldest_seconds", "Seconds since the oldest overdue step was due (0: none).")
    oldest.add_metric([], (now - found["since"]).total_seconds() if found["since"] else 0.0)
    return count, oldest


def spent_this_month(now: datetime) -> GaugeMetricFamily:
    """The spend ledger's credits of this calendar month's jobs (UTC), by model: Runway's
    estimates of unfinished jobs plus what finished ones cost."""
    spent = _gauge("credits_spent_month", "Credits of this month's jobs (UTC), by model: the spend ledger.", ("model",))
    entries = SpendEntry.objects.since(ledger.month_start(now)).order_by().values_list("model")
    for model, credits in entries.annotate(total=Sum("credits")):
        spent.add_metric([model], credits or 0)
    return spent


def budgets(now: datetime) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    """Totals over the active users: the credits their budgets still allow this month (what the
    limits would let them spend, to set beside Runway's balance), and how many of those who spent
    this month reached 80 % and 100 % of their budget.

    Two grouped queries: every active user's budget in all, and this month's spend of each user who
    spent (a subquery per user, as the limits ask, took a second at a thousand users)."""
    default = settings.RUNWAY_MONTHLY_BUDGET_PER_USER
    active = get_user_model().objects.filter(is_active=True)
    allowed = active.aggregate(
        without_own=Count("pk", filter=Q(video_budget__isnull=True)), own=Sum("video_budget__monthly_credits")
    )
    budget_total = allowed["without_own"] * default + (allowed["own"] or 0)
    this_month = SpendEntry.objects.since(ledger.month_start(now)).filter(user__is_active=True).order_by()
    spenders = this_month.values_list("user_id").annotate(
        spent=Sum("credits"), budget=Coalesce(Max("user__video_budget__monthly_credits"), Value(default))
    )
    used, at_threshold = 0, dict.fromkeys([label for label, _, _ in BUDGET_THRESHOLDS], 0)
    for _user, spent, budget in spenders:
        used += min(max(spent, 0), budget)
        for label, numerator, denominator in BUDGET_THRESHOLDS:
            # spent / budget >= numerator / denominator, in whole numbers.
            at_threshold[label] += spent > 0 and spent * denominator >= budget * numerator
    left = _gauge("budget_left_credits", "Credits the active users' monthly budgets still allow this month, in all.")
    left.add_metric([], budget_total - used)
    at = _gauge(
        "users_at_budget", "Users who spent this month at least this share of their monthly budget.", ("threshold",)
    )
    for label, count in at_threshold.items():
        at.add_metric([label], count)
    return left, at


def credit_balance(now: datetime) -> list[GaugeMetricFamily]:
    """Runway's credit balance as the worker last read it (none until it did), and how old that is."""
    row = CreditBalance.objects.filter(pk=CreditBalance.ONLY).first()
    if row is None or row.credits is None or row.fetched_at is None:
        return []
    balance = _gauge("runway_credit_balance", "The Runway account's credits, as the worker last read them.")
    balance.add_metric([], row.credits)
    age = _gauge("runway_credit_balance_age_seconds", "Seconds since Runway gave that balance.")
    age.add_metric([], (now - row.fetched_at).total_seconds())
    return [balance, age]


def webhook_deliveries(now: datetime) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    """Webhook deliveries by state (every state, 0 when none), and the age of the oldest still
    being delivered. The api app's table: read here so that one scrape has every figure."""
    from api.models import DeliveryState, WebhookDelivery

    rows = {
        state: (count, oldest)
        for state, count, oldest in WebhookDelivery.objects.order_by()
        .values_list("state")
        .annotate(n=Count("pk"), oldest=Min("created_at"))
    }
    by_state = _gauge("webhook_deliveries", "Webhook deliveries, by state (pending, delivered, gave_up).", ("state",))
    for state in DeliveryState:
        by_state.add_metric([state], rows.get(state, (0, None))[0])
    oldest = rows.get(DeliveryState.PENDING, (0, None))[1]
    pending = _gauge("webhook_oldest_pending_seconds", "Seconds since the oldest delivery still pending was made.")
    pending.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
    return by_state, pending


def queue_depth(*, url: str | None = None) -> int | None:
    """Task messages waiting in this installation's queue (not those a worker has taken, such as
    the countdowns it holds) on the Celery app's broker (or `url`'s); None when the broker does not
    answer within CELERY_BROKER_TIMEOUT.

    kombu's passive declare asks each broker its own way: Redis the length of the queue's lists,
    RabbitMQ the queue's message count, the embedded broker the files in its folder. A queue that
    does not exist yet holds nothing.
    """
    timeout = settings.CELERY_BROKER_TIMEOUT
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with current_app.connection_for_write(url, connect_timeout=timeout, transport_options=options) as conn:
        try:
            conn.ensure_connection(max_retries=0)
            channel = conn.channel()
        except Exception:  # noqa: BLE001 (whatever the transport raises, the broker did not answer)
            return None
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)  # type: ignore[attr-defined]
        except conn.channel_errors:
            return 0  # no such queue (yet)
        except Exception:  # noqa: BLE001
            return None
        finally:
            _close_quietly(channel)


def _close_quietly(channel: object) -> None:
    # A channel the passive declare closed, or a broker gone meanwhile: nothing left to close.
    with contextlib.suppress(Exception):
        channel.close()  # type: ignore[attr-defined]
