"""Making a job: check the request, apply the per-user limits, store it, and hand it to the worker."""

import logging
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from videos import catalog
from videos.catalog import VideoRequest
from videos.models import Status, Step, VideoGeneration
from videos.services.bookkeeping import NextStep, enqueue_on_commit, finish

logger = logging.getLogger(__name__)

NO_API_KEY_MESSAGE = "Runway API key is not configured"


def generation_create(
    *,
    owner: User,
    request: VideoRequest,
    request_token: uuid.UUID | None = None,
    enqueue: bool = True,
) -> VideoGeneration:
    """Check a request, store it, and (after commit) hand it to the worker.

    Raises ValidationError with messages per field (or under NON_FIELD_ERRORS for the per-user
    limits); nothing is stored or sent then. A `request_token` already used by this owner
    returns that earlier job instead of making a second one.
    """
    request = request.resolved(text_model=settings.RUNWAY_TEXT_MODEL, image_model=settings.RUNWAY_IMAGE_MODEL)
    problems = catalog.check_request(request)
    if problems:
        raise ValidationError(problems)
    try:
        with transaction.atomic():
            # Lock the owner's row, so that two requests at once cannot both pass the counts below.
            User.objects.select_for_update().only("pk").get(pk=owner.pk)
            if request_token is not None:
                twin = VideoGeneration.objects.filter(owner=owner, request_token=request_token).first()
                if twin is not None:
                    return twin  # the same form posted again: no second job
            _check_limits(owner)
            generation = _store(owner, request, request_token)
            if enqueue and not generation.is_final:
                enqueue_on_commit(NextStep(generation.pk, Step.SUBMIT, generation.step, 0))
    except IntegrityError:
        # The same form posted twice at once: the other request made the job.
        if request_token is None:
            raise
        return VideoGeneration.objects.get(owner=owner, request_token=request_token)
    logger.info("Generation %s created (%s, %s)", generation.pk, generation.model, generation.status)
    return generation


def _check_limits(owner: User) -> None:
    """Refuse a new job past the owner's limits; call with the owner's row locked."""
    jobs = VideoGeneration.objects.filter(owner=owner)
    active_limit = settings.RUNWAY_MAX_ACTIVE_PER_USER
    if jobs.active().count() >= active_limit:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: [
                    f"You already have {active_limit} video{'s' if active_limit != 1 else ''} in progress. "
                    "Wait for one to finish, or cancel one, before starting another."
                ]
            }
        )
    day_ago = timezone.now() - timedelta(days=1)
    recent = jobs.filter(created_at__gt=day_ago).order_by("created_at").values_list("created_at", flat=True)
    daily_limit = settings.RUNWAY_DAILY_LIMIT_PER_USER
    if len(recent) >= daily_limit:
        free_at = recent[len(recent) - daily_limit] + timedelta(days=1)
        raise ValidationError(
            {
                NON_FIELD_ERRORS: [
                    f"You have made {daily_limit} videos in the last 24 hours, the most allowed. "
                    f"You can make another after {free_at:%Y-%m-%d %H:%M} UTC."
                ]
            }
        )


def _store(owner: User, request: VideoRequest, request_token: uuid.UUID | None) -> VideoGeneration:
    """Save a checked, resolved request as a new job (failed at once when there is no API key)."""
    offer = catalog.offer_for(model=request.model or "", endpoint=request.endpoint)
    assert offer is not None and request.model is not None and request.ratio is not None
    seed = request.seed
    if seed is None and offer.accepts_seed:
        seed = secrets.randbelow(catalog.SEED_MAX + 1)  # stored, so a re-run can reproduce the video
    generation = VideoGeneration(
        owner=owner,
        prompt=request.prompt,
        endpoint=request.endpoint,
        model=request.model,
        ratio=request.ratio,
        duration=request.duration,
        seed=seed,
        image_url=request.image_url,
        request_token=request_token,
        next_check_at=timezone.now(),
    )
    if request.image is not None:
        generation.image.save(getattr(request.image, "name", "image") or "image", request.image, save=False)
    if not settings.RUNWAY_API_KEY:
        finish(generation, Status.FAILED, message=NO_API_KEY_MESSAGE)
    generation.save()
    return generation
