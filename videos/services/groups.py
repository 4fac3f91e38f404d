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

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Count, Sum

from videos import catalog
from videos.models import GroupPolicy, SpendEntry, VideoGeneration
from videos.services import ledger


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
    caller's transaction ends."""
    policies = GroupPolicy.objects.filter(group__user=user_id).order_by("pk")
    if lock:
        policies = policies.select_for_update(of=("self",))
    rules = list(
        policies.values_list("pk", "group__name", "monthly_credits", "allowed_models", "max_duration", "max_active")
    )
    if not rules:
        return []
    members = list(
        User.groups.through.objects.filter(group_id__in=[rule[0] for rule in rules]).values_list("group_id", "user_id")
    )
    member_ids = {user for _, user in members}
    spent_by = dict(
        SpendEntry.objects.since(month_from)
        .filter(user_id__in=member_ids)
        .order_by()
        .values("user_id")
        .annotate(total=Sum("credits"))
        .values_list("user_id", "total")
    )
    active_by = Counter(
        dict(
            VideoGeneration.objects.active()
            .filter(owner_id__in=member_ids)
            .order_by()
            .values("owner_id")
            .annotate(n=Count("pk"))
            .values_list("owner_id", "n")
        )
    )
    return [
        GroupStanding(
            group_id=group_id,
            name=name,
            budget=budget,
            allowed_models=tuple(models or ()),
            max_duration=max_duration,
            max_active=max_active,
            spent=sum(spent_by.get(user, 0) or 0 for group, user in members if group == group_id),
            active=sum(active_by[user] for group, user in members if group == group_id),
        )
        for group_id, name, budget, models, max_duration, max_active in rules
    ]


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
