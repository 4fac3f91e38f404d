"""The API's answers in Runway's shapes (runwayml's types: TaskRetrieveResponse, the create's
answer, OrganizationRetrieveResponse, and its error bodies), made from the product's records.

A job's states map onto Runway's: queued and sending are PENDING (Runway has not started it),
waiting for capacity THROTTLED, generating RUNNING with its `progress` (0 to 1); done SUCCEEDED
(only once our copy is stored: `output` links to it); failed and timed out FAILED, with the
product's message as `failure` and its code as `failureCode` (TIMED_OUT for a time-out when it has
none); cancelled CANCELLED. A task not yet ended carries `estimatedCost`, an ended one `cost`, both
from the spend ledger.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone

from api import links
from api.wire import Issue
from videos import catalog
from videos.models import Status, VideoGeneration
from videos.services import ledger

DOC_URL = "/v1/openapi.json"  # this API's document (Runway's own point at its docs)
TIMED_OUT_CODE = "TIMED_OUT"

_RUNWAY_STATUS = {
    Status.QUEUED: "PENDING",
    Status.SUBMITTING: "PENDING",
    Status.PENDING: "PENDING",
    Status.THROTTLED: "THROTTLED",
    Status.RUNNING: "RUNNING",
    Status.SUCCEEDED: "SUCCEEDED",
    Status.FAILED: "FAILED",
    Status.TIMED_OUT: "FAILED",
    Status.CANCELLED: "CANCELLED",
}


def iso(moment: datetime) -> str:
    """A time as Runway writes it: ISO 8601 in UTC, to the millisecond, with a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def runway_status(generation: VideoGeneration) -> str:
    return _RUNWAY_STATUS[Status(generation.status)]


def task(generation: VideoGeneration, *, base_url: str) -> dict[str, Any]:
    """The job as GET /v1/tasks/{id} shows it; `generation` carries with_cost()'s figures.
    `base_url` (scheme and host) starts the output links."""
    status = runway_status(generation)
    answer: dict[str, Any] = {
        "id": str(generation.public_id),
        "createdAt": iso(generation.created_at),
        "status": status,
    }
    credits = getattr(generation, "cost_credits", None) or 0
    if generation.is_final:
        answer["cost"] = {"credits": int(credits)}
    else:
        answer["estimatedCost"] = {"credits": credits}
    if status == "RUNNING":
        answer["progress"] = generation.progress / 100
    elif status == "SUCCEEDED":
        answer["output"] = [base_url + links.output_path(generation.public_id)]
    elif status == "FAILED":
        code = generation.failure_code or (TIMED_OUT_CODE if generation.status == Status.TIMED_OUT else "")
        answer["failure"] = generation.message or "The video could not be made."
        if code:
            answer["failureCode"] = code
    return answer


def created(generation: VideoGeneration) -> dict[str, Any]:
    """A create's answer: the task's id and the most it may cost."""
    credits = getattr(generation, "cost_credits", None) or 0
    return {"id": str(generation.public_id), "estimatedCost": {"credits": credits}}


def organization(*, user_id: int, now: datetime | None = None) -> dict[str, Any]:
    """GET /v1/organization for a key's owner: their budget as Runway's account figures.

    `creditBalance` is what is left of the month's budget, `maxMonthlyCreditSpend` the budget; each
    model lists the per-user limits (which count every model together, unlike Runway's per model),
    and `dailyGenerations` the jobs of that model in the last 24 hours, from the spend ledger.
    """
    now = now or timezone.now()
    budget = ledger.monthly_budget(user_id=user_id)
    spent = ledger.spent_this_month(user_id=user_id, now=now)
    limits = {
        "maxConcurrentGenerations": settings.RUNWAY_MAX_ACTIVE_PER_USER,
        "maxDailyGenerations": settings.RUNWAY_DAILY_LIMIT_PER_USER,
    }
    daily = ledger.generations_by_model_since(user_id=user_id, start=now - timedelta(days=1))
    return {
        "creditBalance": max(0, budget - spent),
        "tier": {"maxMonthlyCreditSpend": budget, "models": dict.fromkeys(catalog.ALL_MODELS, limits)},
        "usage": {"models": {model: {"dailyGenerations": daily.get(model, 0)} for model in catalog.ALL_MODELS}},
    }


def error(
    status: int, message: str, *, retry_after: int | None = None, issues: list[Issue] | None = None
) -> JsonResponse:
    """An error as Runway words them: {"error", "issues" (for bad input), "docUrl"}."""
    body: dict[str, Any] = {"error": message}
    if issues is not None:
        body["issues"] = [{"path": list(path), "message": text} for path, text in issues]
    body["docUrl"] = DOC_URL
    response = JsonResponse(body, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def not_allowed(method: str | None, allowed: tuple[str, ...]) -> JsonResponse:
    """405, naming the methods the path answers (Allow)."""
    response = error(405, f"Method {method} not allowed.")
    response["Allow"] = ", ".join(allowed)
    return response
