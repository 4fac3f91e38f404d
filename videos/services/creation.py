"""Making a job: check the request, apply the per-user limits, store it, and hand it to the worker."""

import functools
import logging
import math
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import IO, Any, NoReturn

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from videos import catalog
from videos.catalog import VideoRequest
from videos.clips import Clip, ClipProblem, checked_clip
from videos.images import ImageProblem, image_stored_name
from videos.models import GroupPolicy, Origin, Status, Step, VideoGeneration
from videos.services import groups, ledger, prepared
from videos.services.bookkeeping import NextStep, enqueue_on_commit, finish
from videos.services.groups import GroupStanding

logger = logging.getLogger(__name__)

NO_API_KEY_MESSAGE = "Runway API key is not configured"


def generation_create(
    *,
    owner: User,
    request: VideoRequest,
    request_token: uuid.UUID | None = None,
    enqueue: bool = True,
    source: VideoGeneration | None = None,
    origin: Origin = Origin.WEB,
    notify: bool = False,
) -> VideoGeneration:
    """Check a request, store it, and (after commit) hand it to the worker. `source` is the job an
    upscale is made from; `origin` says where it was asked for; with `notify`, its owner is emailed
    when it ends (services/alerts.py).

    Raises ValidationError with messages per field, or LimitReached (a ValidationError, under
    NON_FIELD_ERRORS) for the per-user limits; nothing is stored or sent then. A `request_token`
    already used by this owner returns that earlier job instead of making a second one. The job
    comes with its cost as VideoGeneration.objects.with_cost() gives it (`cost_credits`, `cost_final`).
    """
    request = request.resolved(
        text_model=settings.RUNWAY_TEXT_MODEL,
        image_model=settings.RUNWAY_IMAGE_MODEL,
        video_model=settings.RUNWAY_VIDEO_MODEL,
        upscale_model=settings.RUNWAY_UPSCALE_MODEL,
    )
    problems = catalog.check_request(request)
    if problems:
        raise ValidationError(problems)
    inputs = _Inputs(
        _decoded_image_name(request.image, "image"),
        _decoded_image_name(request.last_image, "last_image"),
        _checked_clip(request.video, "video"),
        _checked_clip(request.performance, "performance"),
    )
    try:
        with transaction.atomic():
            standing = _lock_owner(owner, request_token)
            if standing.twin_id is not None:
                # The same form posted again: no second job.
                return VideoGeneration.objects.with_cost().get(pk=standing.twin_id)
            _check_limits(owner, request, inputs, standing)
            generation = _store(owner, request, request_token, inputs, source, origin, notify)
            reserved = None if generation.is_final else ledger.spend_reserve(generation=generation)
            # What VideoGeneration.objects.with_cost() and the history would say of it, which its card shows.
            vars(generation).update(cost_credits=reserved, cost_final=False, queue_position=standing.queued + 1)
            if enqueue and not generation.is_final:
                enqueue_on_commit(NextStep(generation.pk, Step.SUBMIT, generation.step, 0))
    except IntegrityError:
        # The same form posted twice at once: the other request made the job.
        if request_token is None:
            raise
        return VideoGeneration.objects.with_cost().get(owner=owner, request_token=request_token)
    logger.info("Generation %s created (%s, %s)", generation.pk, generation.model, generation.status)
    return generation


@dataclass(frozen=True)
class _Inputs:
    """A request's files, once checked: the name to store its image under, its clip, its performance."""

    image_name: str
    last_image_name: str
    clip: Clip | None
    performance: Clip | None

    @property
    def clip_seconds(self) -> float | None:
        """What the job is billed by when it has no duration: its performance, else its clip."""
        billed = self.performance or self.clip
        return billed.seconds if billed is not None else None


def _checked_clip(video: IO[bytes] | None, field: str) -> Clip | None:
    """A request's clip (to edit, or of a character, or a performance) once ffmpeg has read it."""
    if video is None:
        return None
    try:
        return checked_clip(video)
    except ClipProblem as exc:
        raise ValidationError({field: [str(exc)]}) from None


def _decoded_image_name(image: IO[bytes] | None, field: str) -> str:
    """The name to store a request's image under, once Pillow has decoded it ("" without one)."""
    if image is None:
        return ""
    try:
        return image_stored_name(image)
    except ImageProblem as exc:
        raise ValidationError({field: [str(exc)]}) from None


@dataclass(frozen=True)
class _Standing:
    """What the limits ask of an owner, read as their row was locked."""

    now: datetime
    twin_id: int | None  # their job of the same request token
    active: int  # their jobs that have not ended
    made_today: int  # their jobs made in the last 24 hours (the ledger's count)
    budget: int  # credits they may spend a month
    spent: int  # this month's spend (the ledger's)
    queued: int  # every user's jobs waiting to be sent (the new one's card says its place in line)
    groups: list[GroupStanding]  # the rules of their groups that have some, and how the members stand


def _lock_owner(owner: User, request_token: uuid.UUID | None) -> _Standing:
    """Lock the owner's row, so that two requests at once cannot both pass the limits, then read in
    one query all that the limits ask (two queries, where there were six).

    Two, not one: PostgreSQL reads a statement's subqueries as of the moment the statement began,
    so figures read in the statement that waited for the lock would miss what the request that
    held it wrote (tests/test_ledger.py runs two at once).

    Both are compiled once per process (videos/services/prepared.py): building them cost a form
    post more CPU than the rest of the service together.
    """
    if _lock_query(connection.vendor).row([owner.pk]) is None:
        raise User.DoesNotExist(f"user {owner.pk} is gone")
    now = timezone.now()
    month_from = ledger.month_start(now)
    values = [owner.pk, settings.RUNWAY_MONTHLY_BUDGET_PER_USER, now - timedelta(days=1), month_from]
    row = _standing_query(connection.vendor, request_token is not None).row([*values, request_token])
    assert row is not None  # the row just locked
    # Their groups' rules, locked in turn, only for a member of a group that has some (a query fewer for the rest).
    in_groups = groups.groups_standing(user_id=owner.pk, month_from=month_from, lock=True) if row["grouped"] else []
    return _Standing(
        now=now,
        twin_id=row["twin"],
        active=row["active"],
        made_today=row["made_since"],
        budget=row["budget"],
        spent=row["spent"],
        queued=row["queued"],
        groups=in_groups,
    )


@functools.cache
def _lock_query(vendor: str) -> prepared.Prepared:
    """Lock one user's row (the stand-in: their number)."""
    return prepared.prepare(User.objects.select_for_update().filter(pk=-1).values_list("pk"), [-1])


@functools.cache
def _standing_query(vendor: str, with_token: bool) -> prepared.Prepared:
    """`_standing_of`'s SQL on this database (`vendor`), with or without a request token."""
    # Values no call has: a user's number and a budget below 0, datetimes of 1900, a token of zeros but its last digit.
    owner_id, budget = -1, -2
    day_start, month_from = datetime(1900, 1, 1, 0, 0, 0, 1, UTC), datetime(1900, 1, 2, tzinfo=UTC)
    token = uuid.UUID(int=1) if with_token else None
    standing = _standing_of(owner_id, budget, day_start, month_from, token)
    return prepared.prepare(standing, [owner_id, budget, day_start, month_from, *([token] if token else [])])


def _standing_of(
    owner_id: int, budget: int, day_start: datetime, month_from: datetime, token: uuid.UUID | None = None
) -> QuerySet[User, dict[str, Any]]:
    """What the limits ask of one owner (`_Standing`), in one query of their row: `budget` is that of a
    user with none of their own, `token` the request's, if it has one."""
    jobs = VideoGeneration.objects.filter(owner=OuterRef("pk")).order_by()
    active = jobs.active().values("owner").annotate(n=Count("pk")).values("n")
    twin = jobs.filter(request_token=token).values("pk")[:1]
    queued = VideoGeneration.objects.visible().filter(status=Status.QUEUED).order_by().values("status")
    asked: dict[str, Any] = {
        "active": Coalesce(Subquery(active), 0, output_field=IntegerField()),
        "twin": Subquery(twin) if token is not None else Value(None, output_field=IntegerField()),
        "queued": Coalesce(Subquery(queued.annotate(n=Count("pk")).values("n")), 0, output_field=IntegerField()),
        "grouped": Exists(GroupPolicy.objects.filter(group__user=OuterRef("pk"))),
        **ledger.users_standing(day_start=day_start, month_from=month_from, budget=budget),
    }
    standing: QuerySet[User, dict[str, Any]] = User.objects.annotate(**asked).values(*asked).filter(pk=owner_id)
    return standing


def _check_limits(owner: User, request: VideoRequest, inputs: _Inputs, standing: _Standing) -> None:
    """Refuse a new job past the owner's limits, by their `standing` (read with their row locked).

    The daily count and the month's spend come from the spend ledger, which deleting jobs does
    not change; only the count of unfinished jobs looks at the jobs themselves.
    """
    active_limit = settings.RUNWAY_MAX_ACTIVE_PER_USER
    if standing.active >= active_limit:
        _refuse(
            f"You already have {active_limit} video{'s' if active_limit != 1 else ''} in progress. "
            "Wait for one to finish, or cancel one, before starting another.",
            retry_after=settings.RUNWAY_POLL_INTERVAL,
        )
    now = standing.now
    daily_limit = settings.RUNWAY_DAILY_LIMIT_PER_USER
    if standing.made_today >= daily_limit:
        if daily_limit <= 0:
            _refuse(
                "Generating videos is turned off (the daily limit is 0).", retry_after=timedelta(days=1).total_seconds()
            )
        recent = ledger.generations_since(user_id=owner.pk, start=now - timedelta(days=1))
        free_at = recent[len(recent) - daily_limit] + timedelta(days=1)
        _refuse(
            f"You have made {daily_limit} videos in the last 24 hours, the most allowed. "
            f"You can make another after {free_at:%Y-%m-%d %H:%M} UTC.",
            retry_after=(free_at - now).total_seconds(),
        )
    estimate = ledger.catalog_estimate(
        model=request.model or "",
        duration=request.duration,
        endpoint=request.endpoint,
        audio=request.audio,
        clip_seconds=inputs.clip_seconds,
    )
    _check_budget(estimate, standing)
    _check_groups(request, inputs, estimate, standing)


def _resets(now: datetime) -> tuple[str, float]:
    """When this month's budgets renew, as people read it, and in how many seconds."""
    resets_at = ledger.next_month_start(now)
    return f"{resets_at:%Y-%m-%d} 00:00 UTC", (resets_at - now).total_seconds()


def _check_budget(estimate: int, standing: _Standing) -> None:
    """Refuse a job whose estimate does not fit in what is left of the owner's monthly budget."""
    budget = standing.budget
    resets, until_reset = _resets(standing.now)
    if budget <= 0:
        _refuse(
            "Your monthly budget is 0 credits, so you cannot generate videos. Ask staff to set a budget for you.",
            retry_after=until_reset,
        )
    left = max(0, budget - standing.spent)
    if estimate > left:
        _refuse(
            f"This video would cost about {ledger.credits_text(estimate)}, and {ledger.credits_text(left)} of your "
            f"monthly budget of {ledger.credits_text(budget)} is left. It resets on {resets}; a shorter video "
            "or a cheaper model may fit.",
            retry_after=until_reset,
        )


def _check_groups(request: VideoRequest, inputs: _Inputs, estimate: int, standing: _Standing) -> None:
    """Refuse a job that one of the owner's groups' rules does not allow (services/groups.py)."""
    if not standing.groups:
        return
    offer = catalog.offer_for(model=request.model or "", endpoint=request.endpoint)
    assert offer is not None  # check_request() refused any other
    seconds = catalog.billed_seconds(offer, duration=request.duration, clip_seconds=inputs.clip_seconds)
    resets, until_reset = _resets(standing.now)
    refusal = groups.groups_refusal(standing.groups, offer=offer, seconds=seconds, estimate=estimate, resets=resets)
    if refusal is None:
        return
    if refusal.field is not None:
        raise ValidationError({refusal.field: [refusal.message]})
    _refuse(refusal.message, retry_after=settings.RUNWAY_POLL_INTERVAL if refusal.soon else until_reset)


class LimitReached(ValidationError):
    """A per-user limit refuses the job: the message says which, and `retry_after` is how many
    seconds until it may pass (the API's Retry-After)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__({NON_FIELD_ERRORS: [message]})
        self.retry_after = max(1, math.ceil(retry_after))


def _refuse(message: str, *, retry_after: float) -> NoReturn:
    raise LimitReached(message, retry_after=retry_after)


def _store(
    owner: User,
    request: VideoRequest,
    request_token: uuid.UUID | None,
    inputs: _Inputs,
    source: VideoGeneration | None,
    origin: Origin,
    notify: bool,
) -> VideoGeneration:
    """Save a checked, resolved request as a new job (failed at once when there is no API key)."""
    offer = catalog.offer_for(model=request.model or "", endpoint=request.endpoint)
    assert offer is not None and request.model is not None
    if request.seed is None and offer.accepts_seed:
        # Stored, so a re-run can reproduce the video.
        request = replace(request, seed=secrets.randbelow(catalog.SEED_MAX + 1))
    generation = VideoGeneration(
        owner=owner,
        prompt=request.prompt,
        prompt_folded=request.prompt.casefold(),
        endpoint=request.endpoint,
        model=offer.model,
        params=request.params,
        image_url=request.image_url,
        request_token=request_token,
        source=source,
        origin=origin,
        notify_when_done=notify,
        next_check_at=timezone.now(),
    )
    if request.image is not None:
        generation.image.save(inputs.image_name, request.image, save=False)
    if request.last_image is not None:
        generation.last_image.save(inputs.last_image_name, request.last_image, save=False)
    if request.video is not None and inputs.clip is not None:
        generation.clip.save(inputs.clip.name, request.video, save=False)
        generation.clip_seconds = inputs.clip.seconds
    if request.performance is not None and inputs.performance is not None:
        generation.performance.save(inputs.performance.name, request.performance, save=False)
        generation.performance_seconds = inputs.performance.seconds
    if not settings.RUNWAY_API_KEY:
        finish(generation, Status.FAILED, message=NO_API_KEY_MESSAGE)
    generation.save()
    return generation
