"""The spend ledger: every charge of a job, appended, never changed (videos.models.SpendEntry).

A job's entries add up to what it costs. `spend_reserve` writes our catalog estimate with the job
(inside the owner's lock, so the limits see it before a second request is checked);
`spend_estimate` moves it to Runway's estimate when Runway accepts the create; `spend_settle`
moves it to Runway's final figure when the task ends, keeps the estimate when Runway gave none,
or gives the reservation back when nothing reached Runway. Each kind is written at most once per
job (a unique constraint), so a step that runs twice cannot charge twice.
"""

import functools
import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, IntegerField, Max, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from videos import catalog
from videos.models import SpendEntry, SpendKind, UserBudget, VideoGeneration
from videos.services import prepared

logger = logging.getLogger(__name__)

UNCONFIRMED_NOTE = "Runway did not confirm the create; the estimate stands."
NOT_SENT_NOTE = "Never sent to Runway (it waited past RUNWAY_MAX_QUEUE_WAIT): nothing charged."


def catalog_estimate(
    *,
    model: str,
    duration: int | None,
    endpoint: str = catalog.TEXT_TO_VIDEO,
    audio: bool | None = None,
    clip_seconds: float | None = None,
) -> int:
    """Our estimate of a job's cost from the model table's price (videos/catalog.py), the operator's
    (RUNWAY_PRICES), or the ceiling it is reserved at (RUNWAY_PRICE_CEILING); 0 for a model the
    table does not have (the request check refuses those before this is asked)."""
    offer = catalog.offer_for(model=model, endpoint=endpoint)
    if offer is None:
        return 0
    return catalog.estimated_credits(
        offer, duration=duration, price=price(offer, audio=audio), clip_seconds=clip_seconds
    )


def price(offer: catalog.Offer, *, audio: bool | None = None) -> catalog.Price:
    """What `offer` costs per second here: the operator's price, Runway's, or the ceiling."""
    return catalog.price_for(offer, audio=audio, prices=settings.RUNWAY_PRICES, ceiling=settings.RUNWAY_PRICE_CEILING)


def credits_text(credits: int) -> str:
    """Credits as people read them, with their price: "60 credits (US$0.60)"; 1 credit = 1 US cent.
    The pages' `credits` filter (videos/templatetags/money.py) and their script write the same."""
    return f"{credits:,} credit{'s' if credits != 1 else ''} ({dollars_text(credits)})"


def dollars_text(credits: int) -> str:
    """What `credits` are worth: 12345 → "US$123.45"."""
    return f"US${credits * catalog.CENTS_PER_CREDIT / 100:,.2f}"


def generation_estimate_credits(*, generation: VideoGeneration) -> int:
    return catalog_estimate(
        model=generation.model,
        duration=generation.duration,
        endpoint=generation.endpoint,
        audio=generation.audio,
        clip_seconds=generation.performance_seconds or generation.clip_seconds,
    )


def _append(
    generation: VideoGeneration, kind: SpendKind, credits: int, *, runway: int | None, note: str, username: str | None
) -> None:
    """Write one entry, unless the job already has one of this kind (then nothing is written).

    One INSERT ... ON CONFLICT DO NOTHING (INSERT OR IGNORE on SQLite), the unique constraint
    saying which: no savepoint, which a duplicate caught as an IntegrityError would need to leave
    the caller's transaction usable. `username` is the owner's name as the job's entries keep it
    (None: the owner's own).
    """
    owner = generation.owner if username is None else None
    entry = SpendEntry(
        user_id=generation.owner_id,
        username=owner.get_username() if owner is not None else username or "",
        generation=generation,
        generation_number=generation.pk,
        job_created_at=generation.created_at,
        model=generation.model,
        kind=kind,
        credits=credits,
        runway_credits=runway,
        note=note[:300],
    )
    SpendEntry.objects.bulk_create([entry], ignore_conflicts=True)


def _so_far(generation_id: int) -> tuple[int, str | None]:
    """The job's entries so far: their sum, and the owner's name as they kept it (a job whose user
    was deleted is still settled by the worker: services/actions.user_generations_remove); None
    when they kept none. Every create and every end of a job asks, so its SQL is made once."""
    row = _so_far_query(connection.vendor).row([generation_id])
    return (0, None) if row is None else (int(row["total"]), row["username"] or None)


@functools.cache
def _so_far_query(vendor: str) -> prepared.Prepared:
    number = 2**63 - 1  # the stand-in: the largest the column takes, which no job reaches
    entries = SpendEntry.objects.filter(generation_number=number).order_by().values("generation_number")
    totals = entries.annotate(total=Sum("credits"), username=Max("username")).values("total", "username")
    return prepared.prepare(totals, [number])


def spend_reserve(*, generation: VideoGeneration) -> int:
    """Reserve the job's catalog estimate as it is made; call inside the owner's lock. Returns the
    credits reserved."""
    credits = generation_estimate_credits(generation=generation)
    _append(generation, SpendKind.RESERVED, credits, runway=None, note="", username=None)
    return credits


def spend_estimate(*, generation: VideoGeneration, runway_credits: int | None) -> None:
    """Runway accepted the job's create: its estimate replaces ours (ours stays if it gave none)."""
    with transaction.atomic(savepoint=False):  # no savepoint: nothing here is undone alone
        reserved, username = _so_far(generation.pk)
        if runway_credits is None:
            note = "Runway's answer had no usable estimatedCost; our estimate stands."
            logger.warning("Generation %s: %s", generation.pk, note)
            _append(generation, SpendKind.ESTIMATE, 0, runway=None, note=note, username=username)
        else:
            credits = runway_credits - reserved
            _append(generation, SpendKind.ESTIMATE, credits, runway=runway_credits, note="", username=username)


def spend_settle(*, generation: VideoGeneration, charged: int | None, note: str = "") -> None:
    """The job's cost is final: `charged` credits (Runway's figure, or 0 when nothing reached
    Runway), or None to keep the estimate (Runway gave no figure, or was never asked again)."""
    with transaction.atomic(savepoint=False):
        so_far, username = _so_far(generation.pk)
        if charged is None:
            note = note or "Runway gave no final cost; the estimate stands."
            _append(generation, SpendKind.FINAL, 0, runway=None, note=note, username=username)
        else:
            if not note and charged < so_far:
                note = f"Runway billed {so_far - charged} credits less than estimated."
            _append(generation, SpendKind.FINAL, charged - so_far, runway=charged, note=note, username=username)


# What a task deleted at Runway before it ended costs, by its status at the delete. Runway (SDK
# 5.24, `tasks.delete`): a task it sees RUNNING when cancelled is not refunded; one still PENDING
# or THROTTLED is (a GET just before the delete is the nearest look we have: POST
# /v1/organization/usage, which the reconciliation reads, has the last word); deleting a finished
# task refunds nothing.
STARTED_NOTE = "Cancelled while Runway was generating it: Runway does not refund a task it had started."
REFUNDED_NOTE = "Cancelled before Runway started it: Runway refunds a task cancelled while it waits."


def spend_settle_stopped(*, generation: VideoGeneration, runway_status: str, cost: int | None, deleted: bool) -> None:
    """Settle the cost of a job whose task was deleted at Runway (or given up on, not `deleted`)
    before we saw it end, by Runway's refund rules: `runway_status` is what Runway said of the
    task last, and `cost` its final figure when that status was final."""
    if runway_status in catalog.FINAL_TASK_STATES:
        spend_settle(generation=generation, charged=cost)  # it had ended: the delete refunds nothing
    elif not deleted:
        spend_settle(generation=generation, charged=None, note="Could not be stopped at Runway: the estimate stands.")
    elif runway_status == catalog.RUNNING:
        spend_settle(generation=generation, charged=None, note=STARTED_NOTE)
    elif runway_status in (catalog.PENDING, catalog.THROTTLED):
        spend_settle(generation=generation, charged=0, note=REFUNDED_NOTE)
    else:
        spend_settle(generation=generation, charged=None, note="Stopped at Runway before it ended.")


def spend_is_final(*, generation_id: int) -> bool:
    """Whether the job's cost is settled (it has its final entry)."""
    return SpendEntry.objects.filter(generation_number=generation_id, kind=SpendKind.FINAL).exists()


# --- The limits' questions ------------------------------------------------------------------


def month_start(now: datetime) -> datetime:
    """The first instant of `now`'s calendar month, UTC."""
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


def monthly_budget(*, user_id: int) -> int:
    """The credits this user may spend a month: their own, set by staff, or the setting's."""
    own = UserBudget.objects.filter(user_id=user_id).values_list("monthly_credits", flat=True).first()
    return int(own) if own is not None else int(settings.RUNWAY_MONTHLY_BUDGET_PER_USER)


def spent_this_month(*, user_id: int, now: datetime) -> int:
    """Credits of this month's jobs: Runway's estimates of unfinished ones plus what finished ones cost."""
    return SpendEntry.objects.of(user_id).since(month_start(now)).credits()


def users_standing(*, day_start: datetime, month_from: datetime, budget: int) -> dict[str, Subquery | Coalesce]:
    """The limits' questions of `monthly_budget`, `spent_this_month` (the month that begins at
    `month_from`) and `generations_since` (from `day_start`) as subqueries, for a query of users to
    answer in the same read as it locks them: `budget` (`budget` for a user with none of their
    own), `spent` and `made_since` of each user."""
    entries = SpendEntry.objects.of(OuterRef("pk")).order_by()  # type: ignore[arg-type]
    made = entries.generations().since(day_start).values("user_id").annotate(n=Count("pk")).values("n")
    spent = entries.since(month_from).values("user_id").annotate(total=Sum("credits")).values("total")
    own = UserBudget.objects.filter(user_id=OuterRef("pk")).values("monthly_credits")[:1]
    return {
        "budget": Coalesce(Subquery(own), Value(budget), output_field=IntegerField()),
        "spent": Coalesce(Subquery(spent), 0, output_field=IntegerField()),
        "made_since": Coalesce(Subquery(made), 0, output_field=IntegerField()),
    }


def generations_since(*, user_id: int, start: datetime) -> list[datetime]:
    """When each of the user's jobs made since `start` was made, oldest first, from the ledger."""
    reserved = SpendEntry.objects.of(user_id).generations().since(start)
    return list(reserved.order_by("job_created_at").values_list("job_created_at", flat=True))


def generations_by_model_since(*, user_id: int, start: datetime) -> dict[str, int]:
    """How many of the user's jobs of each model were made since `start`, from the ledger."""
    reserved = SpendEntry.objects.of(user_id).generations().since(start).order_by()
    return dict(reserved.values("model").annotate(count=Count("pk")).values_list("model", "count"))
