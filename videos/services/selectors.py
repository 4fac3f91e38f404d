"""Read-only questions for the views, the admin and the command: history, status, estimates, credits."""

import logging
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from videos.models import Status, VideoGeneration
from videos.runway import RunwayError, get_client

logger = logging.getLogger(__name__)

CREDITS_CACHE_KEY = "runway:credit-balance"
ESTIMATE_CACHE_KEY = "runway:estimate"
# The history's filters: the query-string value, and what the page calls it.
HISTORY_FILTERS = [("", "All"), ("active", "In progress"), ("succeeded", "Done"), ("failed", "Failed")]


def generation_history(*, owner: User, shown: str) -> tuple[QuerySet[VideoGeneration], str]:
    """The owner's jobs, newest first, under the filter `shown`; and the filter applied ("" for all)."""
    jobs = VideoGeneration.objects.visible().filter(owner=owner)
    if shown == "active":
        return jobs.active(), shown
    if shown in Status.values:
        return jobs.filter(status=shown), shown
    return jobs, ""


def generation_status(*, generation: VideoGeneration) -> dict[str, Any]:
    """What the page's status check learns about a job, as JSON."""
    finished_or_now = generation.finished_at or timezone.now()
    return {
        "id": generation.pk,
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
        "elapsed_seconds": round((finished_or_now - generation.created_at).total_seconds()),
        "estimated_seconds": None if generation.is_final else generation_estimate(model=generation.model),
        "finished_at": generation.finished_at.isoformat() if generation.finished_at else None,
    }


def generation_estimate(*, model: str) -> float | None:
    """Seconds a job of this model takes, from the last 20 that succeeded; None before there are any.

    Remembered for a minute: every open page asks for it with every status check.
    """
    key = f"{ESTIMATE_CACHE_KEY}:{model}"
    cached = cache.get(key)
    if cached is None:
        recent = (
            VideoGeneration.objects.filter(model=model, status=Status.SUCCEEDED, finished_at__isnull=False)
            .order_by("-finished_at")
            .values_list("created_at", "finished_at")[:20]
        )
        durations = [(finished - created).total_seconds() for created, finished in recent if finished]
        cached = {"seconds": sum(durations) / len(durations) if durations else None}
        cache.set(key, cached, timeout=60)
    seconds = cached["seconds"]
    return seconds if isinstance(seconds, float) else None


def account_credits() -> int | None:
    """The Runway account's credit balance (1 credit = 1 US cent), cached for a minute; None if unknown."""
    cached = cache.get(CREDITS_CACHE_KEY)
    if cached is None:
        # A failure is remembered for the minute too, so a Runway outage does not slow every page.
        cached = {"balance": None}
        try:
            balance = get_client().get_organization().get("creditBalance")
        except RunwayError as exc:
            logger.warning("Could not read the credit balance: %s", exc.message)
        else:
            if isinstance(balance, int):
                cached["balance"] = balance
        cache.set(CREDITS_CACHE_KEY, cached, timeout=60)
    balance = cached["balance"]
    return balance if isinstance(balance, int) else None
