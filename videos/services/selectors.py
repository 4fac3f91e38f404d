"""Read-only questions for the views, the admin and the command: history, status, estimates, credits,
and what each user spends against their limits."""

import functools
import hashlib
import json
import statistics
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from videos import catalog
from videos.models import CreditBalance, GenerationQuerySet, SpendEntry, SpendKind, Status, VideoGeneration
from videos.services import account, groups, ledger, prepared
from videos.services.groups import GroupStanding

ESTIMATE_CACHE_KEY = "runway:seconds-at-runway"
ESTIMATE_SAMPLE = 20
# The history's status filters: the query-string value, and what the page calls it. Cancelled and
# timed-out jobs have their own, as they need Try again as much as failed ones; `?status=failed`
# still means what it always did.
HISTORY_FILTERS = [
    ("", "All"),
    ("active", "In progress"),
    ("succeeded", "Done"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
    ("timed_out", "Timed out"),
]


def generation_history(
    *,
    owner: User,
    status: str = "",
    model: str = "",
    search: str = "",
    since: datetime | None = None,
    before: datetime | None = None,
) -> QuerySet[VideoGeneration]:
    """The owner's jobs, newest first: with `status` ("active", or one of Status; anything else
    means all), made with `model`, whose prompt has every word of `search` (in any order and case),
    made at or after `since` and before `before`. An empty value filters nothing."""
    jobs = _with_queue_position(VideoGeneration.objects.visible().filter(owner=owner).with_cost())
    if status == "active":
        jobs = jobs.active()
    elif status in Status.values:
        jobs = jobs.filter(status=status)
    return _filtered(jobs, model=model, search=search, since=since, before=before)


def team_history(
    *,
    viewer: User,
    model: str = "",
    search: str = "",
    since: datetime | None = None,
    before: datetime | None = None,
    **ignored: object,
) -> QuerySet[VideoGeneration]:
    """The Team view: others' done videos shared with `viewer` (models.GenerationQuerySet.visible_to
    says who sees what), newest first, with their owners, filtered as the history is (a status
    filter is ignored: every one is done)."""
    jobs = VideoGeneration.objects.shared_with_user(viewer).select_related("owner")
    return _filtered(jobs, model=model, search=search, since=since, before=before)


def _filtered(
    jobs: GenerationQuerySet, *, model: str, search: str, since: datetime | None, before: datetime | None
) -> GenerationQuerySet:
    if model:
        jobs = jobs.filter(model=model)
    jobs = _with_every_word(jobs, search)
    if since is not None:
        jobs = jobs.filter(created_at__gte=since)
    if before is not None:
        jobs = jobs.filter(created_at__lt=before)
    return jobs


# Words of a search that count: a longer search is cut, so that one request cannot ask for a query
# of any size.
SEARCH_MAX_WORDS = 12


def _with_every_word(jobs: GenerationQuerySet, search: str) -> GenerationQuerySet:
    """The jobs whose prompt has each word of `search`, in any order and case: as a part of a word
    ("light" finds "lighthouse") in the prompt case-folded; or, on PostgreSQL, also by its English
    full-text search, where a word finds its other forms ("storms" finds "storm", "rolled" finds
    "rolling") and a word it does not index ("the", "a") asks nothing."""
    words = [word.casefold() for word in search.split()[:SEARCH_MAX_WORDS]]
    if connection.vendor == "postgresql":
        return _with_every_word_indexed(jobs, words)
    for word in words:
        jobs = jobs.filter(prompt_folded__contains=word)
    return jobs


def _with_every_word_indexed(jobs: GenerationQuerySet, words: list[str]) -> GenerationQuerySet:
    """PostgreSQL: each word as a part of a word, or in any of its forms by the full-text search."""
    if not words:
        return jobs
    with connection.cursor() as cursor:  # which words the English dictionary indexes at all (one query)
        cursor.execute("SELECT numnode(plainto_tsquery('english', w)) > 0 FROM unnest(%s::text[]) AS w", [words])
        indexed = [row[0] for row in cursor.fetchall()]
    jobs = jobs.annotate(prompt_words=SearchVector("prompt", config="english"))
    for word, counts in zip(words, indexed, strict=True):
        if counts:
            jobs = jobs.filter(Q(prompt_folded__contains=word) | Q(prompt_words=SearchQuery(word, config="english")))
    return jobs


def generation_queue_position(*, generation: VideoGeneration) -> int | None:
    """The job's place in line while it waits for the worker to send it to Runway: 1 when it is
    next, 2 with one job ahead, ...; None once it has left the line (or never waited in it).

    The line is every user's jobs still queued (status "queued": not yet claimed by the worker's
    submit step), visible (not being deleted), first come first served by creation time and then
    number, as the worker takes them. Only a count of the jobs ahead is told, never whose they are.
    A job sent back to the line (Runway's rate limit) keeps its original place.
    """
    if generation.status != Status.QUEUED:
        return None
    annotated = getattr(generation, "queue_position", None)  # read with the history, in its one query
    if annotated is not None:
        return int(annotated)
    ahead = (
        VideoGeneration.objects.visible()
        .filter(status=Status.QUEUED)
        .filter(Q(created_at__lt=generation.created_at) | Q(created_at=generation.created_at, pk__lt=generation.pk))
        .count()
    )
    return ahead + 1


def _with_queue_position(jobs: GenerationQuerySet) -> GenerationQuerySet:
    """The jobs with `queue_position` as generation_queue_position() counts it, in the same query."""
    ahead = (
        VideoGeneration.objects.visible()
        .filter(status=Status.QUEUED)
        .filter(Q(created_at__lt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__lt=OuterRef("pk")))
        .order_by()
        .values("status")
        .annotate(ahead=Count("pk"))
        .values("ahead")
    )
    position = Coalesce(Subquery(ahead, output_field=IntegerField()), Value(0)) + Value(1)
    return jobs.annotate(
        queue_position=Case(When(status=Status.QUEUED, then=position), default=None, output_field=IntegerField())
    )


@dataclass(frozen=True)
class CardState:
    """What a job's card shows beyond the job's own fields, and a fingerprint of the whole card."""

    queue_position: int | None
    version: str
    cost_reason: str = ""
    upscale_price: str = ""  # what its Upscale button says it costs; "" where there is none


def generation_upscale_price(*, generation: VideoGeneration) -> str:
    """What upscaling a finished video would cost, as its Upscale button says it ("about 60 credits",
    or "at most ..." for an upscaler without a published price); "" when it cannot be upscaled."""
    offer = catalog.offer_for(model=settings.RUNWAY_UPSCALE_MODEL, endpoint=catalog.VIDEO_UPSCALE)
    if offer is None or generation.status != Status.SUCCEEDED or not generation.video_file:
        return ""
    seconds = generation.duration or generation.clip_seconds or catalog.DEFAULT_DURATION
    estimate = ledger.catalog_estimate(
        model=offer.model, duration=None, endpoint=offer.endpoint, clip_seconds=float(seconds)
    )
    return f"{'about' if ledger.price(offer).known else 'at most'} {estimate:,} credits"


def generation_card_state(*, generation: VideoGeneration) -> CardState:
    """The card's place in line and its version: a short fingerprint of everything the card
    (templates/videos/_generation.html) shows except the progress and the clock, which the page
    moves by itself between checks. The page fetches the card again only when it changes."""
    position = generation_queue_position(generation=generation)
    cost = _cost_json(generation) or {}
    reason = generation_cost_reason(generation=generation)
    shown = (
        generation.status,
        generation.status_label,
        generation.is_settled,
        generation.message,
        bool(generation.video_file),
        bool(generation.poster),
        cost.get("credits"),
        cost.get("final"),
        position,
        reason,
    )
    upscale = generation_upscale_price(generation=generation)
    version = hashlib.blake2s(repr((*shown, upscale)).encode(), digest_size=6).hexdigest()
    return CardState(queue_position=position, version=version, cost_reason=reason, upscale_price=upscale)


# Why a job that ended without a video cost nothing, by how it ended.
_NOTHING_CHARGED = {
    Status.CANCELLED: "Nothing charged: cancelled before Runway had started it.",
    Status.FAILED: "Nothing charged: Runway does not bill a video it could not make.",
    Status.TIMED_OUT: "Nothing charged.",
}


def generation_cost_reason(*, generation: VideoGeneration) -> str:
    """Why a job that did not succeed cost what it did, by Runway's billing rules, once its cost is
    final: what people wonder about a cancelled video that still cost its price. Empty otherwise."""
    cost = _cost_json(generation)
    if cost is None or not cost["final"] or generation.status == Status.SUCCEEDED or not generation.is_final:
        return ""
    if cost["credits"] == 0:
        return _NOTHING_CHARGED.get(Status(generation.status), "Nothing charged.")
    if generation.status == Status.FAILED and catalog.is_moderation_failure(generation.failure_code):
        return "Runway bills a video its moderation declined as if it had been made."
    if generation.status in (Status.CANCELLED, Status.TIMED_OUT) and generation.runway_status == catalog.RUNNING:
        return "Runway had started making it, and does not refund a task stopped once started."
    return ""


# The most jobs one status request may ask about: a page's live cards (a history page holds 10, and
# cards made in place join them), with room to spare; more would make one request read without bound.
STATUS_IDS_MAX = 50
# The largest number a job can have (a bigint): a larger one is no job's, and some databases refuse it.
JOB_NUMBER_MAX = 2**63 - 1
# What moves with the clock in a job's status: the page carries these on from when it got them, so they
# stay out of the answer's tag, and an answer unchanged but for them is "not modified" (304).
CLOCK_FIELDS = ("elapsed_seconds", "runway_seconds")


def generation_statuses(*, owner: User, ids: Collection[int], now: datetime | None = None) -> list[dict[str, Any]]:
    """What the page's status check learns about each job of `ids` that is the owner's and not being
    deleted, as JSON, by number; anyone else's, or a deleted one, is simply not there. One read of the
    jobs (with their costs and places in line) and at most one of the time estimates, however many."""
    possible = sorted({pk for pk in ids if 0 < pk <= JOB_NUMBER_MAX})
    found = _status_rows(owner_id=owner.pk, ids=possible) if possible else []
    estimates = generation_estimates(models={job.model for job in found if not job.is_final})
    now = now or timezone.now()
    return [_status(job, now=now, estimate=estimates.get(job.model)) for job in found]


def _status_jobs(*, owner_id: int, ids: Collection[int]) -> GenerationQuerySet:
    """What a status request reads: the owner's visible jobs of `ids`, with their costs and places in line."""
    jobs = VideoGeneration.objects.visible().filter(owner_id=owner_id, pk__in=ids).with_cost()
    return _with_queue_position(jobs).order_by("pk")


def _status_rows(*, owner_id: int, ids: list[int]) -> list[VideoGeneration]:
    """_status_jobs' rows, by its SQL made once per process and number of ids. Every open page asks
    every few seconds, and building and compiling that queryset cost more CPU (2.2 ms) than the rest
    of the request together; the rows are the same (tests/test_statuses.py checks it)."""
    query = _status_query(connection.vendor, len(ids))
    return list(VideoGeneration.objects.raw(query.sql, query.params([owner_id, *ids])))


@functools.lru_cache(maxsize=2 * STATUS_IDS_MAX)
def _status_query(vendor: str, count: int) -> prepared.Prepared:
    """_status_jobs' SQL for `count` ids on this database (`vendor`): the owner, then each id."""
    stand_ins = [-(n + 1) for n in range(count + 1)]
    return prepared.prepare(_status_jobs(owner_id=stand_ins[0], ids=stand_ins[1:]), stand_ins)


def generation_statuses_tag(*, ids: Collection[int], statuses: list[dict[str, Any]]) -> str:
    """The ETag of a status answer: a fingerprint of the jobs asked about and of everything their
    statuses say except the clock, read from the statuses themselves (nothing is rendered). Weak, as
    two answers with one tag differ in their clock figures, which the page moves on by itself."""
    stable = [{key: value is None if key in CLOCK_FIELDS else value for key, value in s.items()} for s in statuses]
    text = json.dumps([sorted(ids), stable], sort_keys=True)
    return f'W/"{hashlib.blake2s(text.encode(), digest_size=12).hexdigest()}"'


def _status(generation: VideoGeneration, *, now: datetime, estimate: float | None) -> dict[str, Any]:
    """One job's status, its clock figures as of `now`; `estimate` is what its model takes at Runway."""
    finished_or_now = generation.finished_at or now
    card = generation_card_state(generation=generation)
    return {
        "id": generation.pk,
        # The card's fingerprint: when it differs from the card's data-version, the page fetches the card.
        "version": card.version,
        "queue_position": card.queue_position,
        "status": generation.status,
        "status_label": generation.status_label,
        "is_final": generation.is_final,
        # Ended and nothing more to show: the page stops asking (a cancel is shown until Runway's side is done).
        "settled": generation.is_settled,
        "progress": generation.progress,
        "message": generation.message,
        # Our copy, never Runway's URL (it expires, and Runway asks that users not see it).
        "output_url": reverse("videos:file", args=[generation.pk]) if generation.video_file else "",
        "poster_url": reverse("videos:poster", args=[generation.pk]) if generation.poster else "",
        "created_at": generation.created_at.isoformat(),
        # Seconds since it was made, as of the answer: the page adds the time since it received it.
        "elapsed_seconds": round((finished_or_now - generation.created_at).total_seconds()),
        # The bar and "about M:SS left" count time at Runway, against what the model takes there:
        # how long it has been at Runway, and when Runway's last progress figure was read (both in
        # seconds since Runway accepted it), so that the page can carry that figure on between checks.
        "estimated_seconds": None if generation.is_final else estimate,
        **_time_at_runway(generation, now),
        "finished_at": generation.finished_at.isoformat() if generation.finished_at else None,
        # From the spend ledger, when the job was read with_cost(): the estimate until Runway's final figure.
        "cost": _cost_json(generation),
    }


def _time_at_runway(generation: VideoGeneration, now: datetime) -> dict[str, float | None]:
    """Seconds since Runway accepted the job (None before, and once it ended), and the same at the
    moment its progress was last read (None without a figure)."""
    submitted = generation.submitted_at
    if submitted is None or generation.is_final:
        return {"runway_seconds": None, "progress_seconds": None}
    read = generation.updated_at if generation.status == Status.RUNNING and generation.progress > 0 else None
    return {
        "runway_seconds": round(max(0.0, (now - submitted).total_seconds()), 1),
        "progress_seconds": round(max(0.0, (read - submitted).total_seconds()), 1) if read else None,
    }


def _cost_json(generation: VideoGeneration) -> dict[str, Any] | None:
    credits = getattr(generation, "cost_credits", None)
    return None if credits is None else {"credits": credits, "final": bool(getattr(generation, "cost_final", False))}


def generation_estimate(*, model: str) -> float:
    """Seconds a job of this model takes at Runway: see generation_estimates."""
    return generation_estimates(models=[model])[model]


def generation_estimates(*, models: Collection[str]) -> dict[str, float]:
    """Seconds a job of each model takes at Runway, from Runway accepting its create to our copy of
    the video stored (the wait before it was sent does not count): the median of the last
    ESTIMATE_SAMPLE that succeeded, so that a few slow ones do not move it much; before the first,
    the catalog's first guess (catalog.FIRST_GUESS_SECONDS).

    Remembered for a minute: every open page asks with every status check. The models not remembered
    are read in one query, whatever their number.
    """
    keys = {model: f"{ESTIMATE_CACHE_KEY}:{model}" for model in models}
    cached = cache.get_many(list(keys.values()))
    missing = [model for model, key in keys.items() if key not in cached]
    if missing:
        read = _median_seconds_at_runway(missing)
        fresh = {keys[model]: {"seconds": read.get(model)} for model in missing}
        cache.set_many(fresh, timeout=60)
        cached.update(fresh)
    return {model: _seconds_or_first_guess(cached[key]["seconds"], model) for model, key in keys.items()}


def _median_seconds_at_runway(models: list[str]) -> dict[str, float]:
    """The median time at Runway of each model's last ESTIMATE_SAMPLE successes; a model with none
    is left out. One query: a UNION ALL of a part per model, each the rows of a LIMIT on the
    videos_recent_by_model index (its own subquery, as SQLite takes no LIMIT on a part of a UNION;
    an OR of the parts would have PostgreSQL read the whole table)."""
    parts = [
        VideoGeneration.objects.filter(pk__in=_last_successes(model).values("pk")[:ESTIMATE_SAMPLE])
        .order_by()
        .values_list("model", "submitted_at", "finished_at")
        for model in models
    ]
    durations: dict[str, list[float]] = {}
    for model, submitted, finished in parts[0].union(*parts[1:], all=True):
        if submitted and finished:
            durations.setdefault(model, []).append((finished - submitted).total_seconds())
    return {model: statistics.median(seconds) for model, seconds in durations.items()}


def _last_successes(model: str) -> QuerySet[VideoGeneration]:
    return VideoGeneration.objects.filter(
        model=model, status=Status.SUCCEEDED, finished_at__isnull=False, submitted_at__isnull=False
    ).order_by("-finished_at")


def _seconds_or_first_guess(seconds: object, model: str) -> float:
    return float(seconds) if isinstance(seconds, int | float) else float(catalog.first_guess_seconds(model))


@dataclass(frozen=True)
class AccountCredits:
    """The account's credit balance as last read from Runway, and how old that reading is."""

    credits: int
    fetched_at: datetime
    age: timedelta

    @property
    def just_now(self) -> bool:
        return self.age < timedelta(minutes=1)


def account_credits(*, now: datetime | None = None) -> AccountCredits | None:
    """The Runway account's credit balance (1 credit = 1 US cent) as the worker last read it; None
    before it has read one. One database read: never waits on Runway.

    A figure missing, or older than two refresh intervals (beat is late, or not running), has the
    worker asked for a fresh one, once per interval whatever the number of pages.
    """
    now = now or timezone.now()
    balance = CreditBalance.objects.filter(pk=CreditBalance.ONLY).first()
    stale_before = now - timedelta(seconds=2 * settings.RUNWAY_CREDITS_REFRESH)
    if balance is None or balance.fetched_at is None or balance.fetched_at < stale_before:
        account.credit_balance_request_refresh(now=now)
    if balance is None or balance.credits is None or balance.fetched_at is None:
        return None
    return AccountCredits(balance.credits, balance.fetched_at, max(now - balance.fetched_at, timedelta(0)))


@dataclass(frozen=True)
class SpendSummary:
    """A user's spend against their limits, from the spend ledger (1 credit = 1 US cent)."""

    spent: int  # this calendar month (UTC): Runway's estimates of unfinished jobs, what finished ones cost
    budget: int
    resets_at: datetime  # the first of next month, 00:00 UTC
    today: int  # jobs made in the last 24 hours
    daily_limit: int
    next_slot_at: datetime | None  # when the daily limit lets another job through; None while it does
    groups: tuple[GroupStanding, ...] = ()  # the rules of the user's groups that have some, and their members' standing

    @property
    def left(self) -> int:
        return max(0, self.budget - self.spent)


def spend_summary(*, user: User, now: datetime | None = None) -> SpendSummary:
    """What the user spent this month against their budget, and today's count against the daily limit."""
    now = now or timezone.now()
    made = ledger.generations_since(user_id=user.pk, start=now - timedelta(days=1))
    limit = settings.RUNWAY_DAILY_LIMIT_PER_USER
    next_slot_at = None
    if len(made) >= limit:
        next_slot_at = made[len(made) - limit] + timedelta(days=1) if limit > 0 else None
    return SpendSummary(
        spent=ledger.spent_this_month(user_id=user.pk, now=now),
        budget=ledger.monthly_budget(user_id=user.pk),
        resets_at=ledger.next_month_start(now),
        today=len(made),
        daily_limit=limit,
        next_slot_at=next_slot_at,
        groups=tuple(groups.groups_standing(user_id=user.pk, month_from=ledger.month_start(now))),
    )


@dataclass(frozen=True)
class GenerationCost:
    """What a job costs: the estimate while it runs, the final figure after; `from_runway` says
    whether the figure is Runway's own (else it is our estimate from the published prices)."""

    credits: int
    final: bool
    from_runway: bool = False

    @property
    def dollars(self) -> str:
        return f"US${self.credits / 100:,.2f}"


def generation_cost(*, generation: VideoGeneration) -> GenerationCost | None:
    """The job's cost from the spend ledger; None for a job that never reserved any (no API key)."""
    found = list(
        SpendEntry.objects.filter(generation_number=generation.pk)
        .order_by("pk")
        .values_list("kind", "credits", "runway_credits")
    )
    if not found:
        return None
    final = any(kind == SpendKind.FINAL for kind, _, _ in found)
    kind, _, runway = found[-1]
    # Runway's figure when the latest entry carries one, or the final entry kept Runway's estimate.
    from_runway = runway is not None or (
        kind == SpendKind.FINAL and any(k == SpendKind.ESTIMATE and r is not None for k, _, r in found)
    )
    return GenerationCost(credits=sum(credits for _, credits, _ in found), final=final, from_runway=from_runway)
