"""Groups' rules for their members' videos (videos.models.GroupPolicy): a monthly budget the
members share, the models they may use, the longest video, and how many may be in progress at once.

They are checked with each member's own limits, in services/creation.py, under the same locks: the
owner's row first, then the rows of their groups' rules in order (so that two members of two
groups never wait on each other in a cycle), then what the members spent this month and have in
progress is read. Two members asking at once thus take turns, and the second sees the first's
reservation: together they cannot spend past the group's budget. A member of several groups is
held to every one's rules.

A group spends what its members spend, as the spend ledger says (services/ledger.py): each job
counts in the month it was made, at Runway's estimate while it runs and its final cost after. A
member who leaves takes their spending with them; one who joins brings theirs.
"""

import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import F, Func, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from videos import catalog
from videos.models import GroupPolicy, SpendEntry, VideoGeneration
from videos.services import ledger, prepared


@dataclass(frozen=True)
class GroupStanding:
    """One group's rules and where its members stand this month."""

    group_id: int
    name: str
    budget: int | None  # credits a month, shared; None: no shared budget
    allowed_models: tuple[str, ...]  # empty: every model
    max_duration: int | None
    max_active: int | None
    spent: int  # this month, by all the members
    active: int  # the members' jobs that have not ended

    @property
    def left(self) -> int | None:
        return None if self.budget is None else max(0, self.budget - self.spent)


@dataclass(frozen=True)
class Refusal:
    """Why a group's rules refuse a request: about a field of it (`field`: the model or the
    duration, which another choice fixes), or a limit that passes with time (`field` None): `soon`,
    when one of the members' jobs ends; otherwise when the month's budgets renew."""

    message: str
    field: str | None = None
    soon: bool = False


def groups_standing(*, user_id: int, month_from: datetime, lock: bool = False) -> list[GroupStanding]:
    """The rules of each of the user's groups that has some, and how its members stand in the month
    that begins at `month_from`; with `lock`, the rules' rows are locked first (in order), until the
    caller's transaction ends, and the figures read after (PostgreSQL reads a statement's subqueries
    as of its start: read in the statement that waited for the lock, they would miss what the
    request that held it wrote). Both queries are compiled once per process (services/prepared.py):
    a member's every create asks them."""
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if lock:
            cursor.execute(_lock_query(vendor).sql, _lock_query(vendor).params([user_id]))
            if not cursor.fetchall():
                return []
        cursor.execute(_figures_query(vendor).sql, _figures_query(vendor).params([user_id, month_from]))
        rows = cursor.fetchall()
    return [
        GroupStanding(
            group_id=group_id,
            name=name,
            budget=budget,
            allowed_models=tuple(json.loads(models) if isinstance(models, str) else models or ()),  # JSON, as text
            max_duration=max_duration,
            max_active=max_active,
            spent=int(spent_total),
            active=int(active_total),
        )
        for group_id, name, budget, models, max_duration, max_active, spent_total, active_total in rows
    ]


_STAND_IN_USER, _STAND_IN_MONTH = -1, datetime(1900, 1, 2, tzinfo=UTC)  # values no call has


@functools.cache
def _lock_query(vendor: str) -> prepared.Prepared:
    """Lock the rules of one user's groups, in order (the stand-in: their number)."""
    policies = GroupPolicy.objects.filter(group__user=_STAND_IN_USER).order_by("pk").select_for_update(of=("self",))
    return prepared.prepare(policies.values_list("pk"), [_STAND_IN_USER])


@functools.cache
def _figures_query(vendor: str) -> prepared.Prepared:
    """`_figures`' SQL on this database (`vendor`)."""
    return prepared.prepare(_figures(_STAND_IN_USER, _STAND_IN_MONTH), [_STAND_IN_USER, _STAND_IN_MONTH])


def groups_budgets(*, month_from: datetime) -> list[tuple[int, str, int, int]]:
    """Each group with a shared budget: its number, name, budget and what its members spent in the
    month that begins at `month_from` (the budget alerts, services/alerts.py)."""
    with_budget = GroupPolicy.objects.filter(monthly_credits__gt=0).order_by("pk")
    figures = with_budget.annotate(name=F("group__name"), spent=_members_spent(month_from))
    return [tuple(row) for row in figures.values_list("pk", "name", "monthly_credits", "spent")]


def _members(*, depth: int) -> "QuerySet[Any, Any]":
    """The user numbers of the members of the group whose rules are the query `depth` levels out."""
    outer: Any = OuterRef("pk")
    for _ in range(depth - 1):
        outer = OuterRef(outer)
    return User.groups.through.objects.filter(group_id=outer).values("user_id")


def _members_spent(month_from: datetime) -> Coalesce:
    """What the members of each group spent from `month_from`: a SUM over their rows, as one value
    (no GROUP BY: a plain function)."""
    spent = SpendEntry.objects.since(month_from).filter(user_id__in=_members(depth=2)).order_by()
    return Coalesce(Subquery(spent.annotate(n=Func("credits", function="SUM")).values("n")), 0)


def _figures(user_id: int, month_from: datetime) -> "QuerySet[GroupPolicy, tuple[Any, ...]]":
    """Each of the user's groups' rules, name, and its members' spending this month (from
    `month_from`) and jobs in progress, in one query."""
    active = VideoGeneration.objects.active().filter(owner_id__in=_members(depth=2)).order_by()
    return (
        GroupPolicy.objects.filter(group__user=user_id)
        .order_by("pk")
        .annotate(
            name=F("group__name"),
            spent=_members_spent(month_from),
            active=Coalesce(Subquery(active.annotate(n=Func("pk", function="COUNT")).values("n")), 0),
        )
        .values_list("pk", "name", "monthly_credits", "allowed_models", "max_duration", "max_active", "spent", "active")
    )


def groups_refusal(
    standings: list[GroupStanding], *, offer: catalog.Offer, seconds: int, estimate: int, resets: str
) -> Refusal | None:
    """The first of the groups' rules that a request of `offer` for `seconds` (as it is billed),
    estimated at `estimate` credits, breaks; None when every group allows it. `resets` says when
    the month's budgets renew."""
    for group in standings:
        refusal = (
            _model_refusal(group, offer)
            or _duration_refusal(group, seconds)
            or _active_refusal(group)
            or _budget_refusal(group, estimate, resets)
        )
        if refusal is not None:
            return refusal
    return None


def _model_refusal(group: GroupStanding, offer: catalog.Offer) -> Refusal | None:
    if not group.allowed_models or offer.model in group.allowed_models:
        return None
    allowed = ", ".join(catalog.label_for(model) for model in group.allowed_models)
    return Refusal(f"Your group {group.name} may use these models only: {allowed}.", field="model")


def _duration_refusal(group: GroupStanding, seconds: int) -> Refusal | None:
    if group.max_duration is None or seconds <= group.max_duration:
        return None
    return Refusal(
        f"Your group {group.name} allows videos of up to {group.max_duration} s; this one would be {seconds} s. "
        "Choose a shorter duration (or a shorter clip).",
        field="duration",
    )


def _active_refusal(group: GroupStanding) -> Refusal | None:
    if group.max_active is None or group.active < group.max_active:
        return None
    return Refusal(
        f"Your group {group.name} already has {group.active} video{'s' if group.active != 1 else ''} in progress, "
        f"the most it may have at once ({group.max_active}). Wait for one of them to finish.",
        soon=True,
    )


def _budget_refusal(group: GroupStanding, estimate: int, resets: str) -> Refusal | None:
    if group.budget is None:
        return None
    if group.budget <= 0:
        return Refusal(
            f"Your group {group.name} has a monthly budget of 0 credits: its members cannot generate videos."
        )
    left = group.left or 0
    if estimate <= left:
        return None
    return Refusal(
        f"This video would cost about {ledger.credits_text(estimate)}, and {ledger.credits_text(left)} is left of "
        f"the {ledger.credits_text(group.budget)} a month your group {group.name} shares. It resets on {resets}; "
        "a shorter video or a cheaper model may fit."
    )
