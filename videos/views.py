import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from videos import catalog, services
from videos.forms import GenerationForm
from videos.models import FINAL_STATUSES, Status, VideoGeneration

HISTORY_PAGE_SIZE = 10
HISTORY_FILTERS = [("", "All"), ("active", "In progress"), ("succeeded", "Done"), ("failed", "Failed")]


class AuthenticatedRequest(HttpRequest):
    """What the views see behind login_required."""

    user: User


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _own_generation(request: AuthenticatedRequest, pk: int) -> VideoGeneration:
    """The user's own job; anyone else's answers 404, as if it did not exist."""
    return get_object_or_404(VideoGeneration, pk=pk, owner=request.user)


def _viewable_generation(request: AuthenticatedRequest, pk: int) -> VideoGeneration:
    """The user's own job, or any job for staff (the admin plays every video)."""
    if request.user.is_staff:
        return get_object_or_404(VideoGeneration, pk=pk)
    return _own_generation(request, pk)


@login_required
@require_http_methods(["GET", "POST"])
def dashboard(request: AuthenticatedRequest) -> HttpResponse:
    form = GenerationForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            generation = services.generation_create(
                owner=request.user, request=form.to_request(), request_token=form.cleaned_data["token"]
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            if _wants_json(request):
                card = render_to_string("videos/_generation.html", {"generation": generation}, request=request)
                # A new one-time token for the next request made from this page.
                return JsonResponse({"id": generation.pk, "html": card, "token": str(uuid.uuid4())}, status=201)
            messages.success(request, "Your video is on its way.")
            return redirect("videos:dashboard")
    if request.method == "POST" and _wants_json(request):
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)

    shown = request.GET.get("status", "")
    jobs = VideoGeneration.objects.filter(owner=request.user)
    if shown == "active":
        jobs = jobs.exclude(status__in=FINAL_STATUSES)
    elif shown in Status.values:
        jobs = jobs.filter(status=shown)
    else:
        shown = ""
    history = Paginator(jobs, HISTORY_PAGE_SIZE)
    return render(
        request,
        "videos/dashboard.html",
        {
            "form": form,
            "page": history.get_page(request.GET.get("page")),
            "shown": shown,
            "filters": HISTORY_FILTERS,
            "credits": services.account_credits() if settings.RUNWAY_API_KEY else None,
            "pickers": {
                "offers": catalog.offers_for_pickers(),
                "defaults": {
                    "text_to_video": settings.RUNWAY_TEXT_MODEL,
                    "image_to_video": settings.RUNWAY_IMAGE_MODEL,
                },
            },
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_GET
def detail(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    return render(request, "videos/detail.html", {"generation": _own_generation(request, pk)})


@login_required
@require_GET
def status(request: AuthenticatedRequest, pk: int) -> JsonResponse:
    generation = _own_generation(request, pk)
    return JsonResponse(
        {
            "id": generation.pk,
            "status": generation.status,
            "status_label": generation.get_status_display(),
            "is_final": generation.is_final,
            "progress": generation.progress,
            "message": generation.message,
            # Our copy, never Runway's URL (it expires, and Runway asks that users not see it).
            "output_url": reverse("videos:file", args=[generation.pk]) if generation.video_file else "",
            "poster_url": reverse("videos:poster", args=[generation.pk]) if generation.poster else "",
            "created_at": generation.created_at.isoformat(),
            "elapsed_seconds": round(
                ((generation.finished_at or timezone.now()) - generation.created_at).total_seconds()
            ),
            "estimated_seconds": None if generation.is_final else services.generation_estimate(model=generation.model),
            "finished_at": generation.finished_at.isoformat() if generation.finished_at else None,
        }
    )


@login_required
@require_POST
def cancel(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    generation = _own_generation(request, pk)
    try:
        services.generation_cancel(generation_id=generation.pk)
    except services.GenerationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The video was cancelled.")
    return redirect("videos:detail", pk=generation.pk)


@login_required
@require_POST
def retry(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    generation = _own_generation(request, pk)
    return _start_again(
        request,
        generation,
        lambda: services.generation_retry(generation_id=generation.pk),
        "Trying again with the same settings.",
    )


def _start_again(
    request: AuthenticatedRequest,
    generation: VideoGeneration,
    start: Callable[[], VideoGeneration],
    success: str,
) -> HttpResponse:
    """Start a new job from an ended one; show the new job, or the old one with the reason it did not start."""
    try:
        new = start()
    except services.GenerationError as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, success)
        return redirect("videos:detail", pk=new.pk)
    return redirect("videos:detail", pk=generation.pk)


@login_required
@require_GET
def video_file(request: AuthenticatedRequest, pk: int) -> FileResponse:
    """The stored copy of a finished video, for its owner and staff."""
    return _stored_file(_viewable_generation(request, pk).video_file, "video/mp4")


@login_required
@require_GET
def poster(request: AuthenticatedRequest, pk: int) -> FileResponse:
    """A frame of a finished video, for the history's thumbnails; for its owner and staff."""
    return _stored_file(_viewable_generation(request, pk).poster, "image/jpeg")


def _stored_file(file: FieldFile, content_type: str) -> FileResponse:
    if not file:
        raise Http404("There is no such file for this video.")
    return FileResponse(file.open("rb"), content_type=content_type)


@login_required
@require_POST
def rerun(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    generation = _own_generation(request, pk)
    new_seed = request.POST.get("seed") == "new"
    return _start_again(
        request,
        generation,
        lambda: services.generation_rerun(generation_id=generation.pk, new_seed=new_seed),
        "Running it again with a new seed." if new_seed else "Running it again, same seed.",
    )


@login_required
@require_POST
def delete(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    generation = _own_generation(request, pk)
    try:
        services.generation_delete(generation_id=generation.pk)
    except services.GenerationError as exc:
        messages.error(request, str(exc))
        return redirect("videos:detail", pk=generation.pk)
    messages.success(request, "The video was deleted.")
    return redirect("videos:dashboard")
