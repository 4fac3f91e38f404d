"""The pages and the endpoints they call; each view checks access and hands the work to a service."""

import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.cache import get_conditional_response, patch_cache_control
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from videos import catalog, serving
from videos.forms import GenerationForm, HistoryFilterForm, ShareForm, StatusQueryForm, generation_form_initial
from videos.models import VideoGeneration
from videos.services import actions, creation, ledger, queue, selectors

HISTORY_PAGE_SIZE = 10


class AuthenticatedRequest(HttpRequest):
    """What the views see behind login_required."""

    user: User


def _warn_if_queue_down(request: HttpRequest) -> None:
    """Say so when what the user just asked for waits for the broker (saved; the sweep sends it later)."""
    if queue.queue_unreachable():
        messages.warning(request, queue.QUEUE_DOWN_MESSAGE)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _own_generation(request: AuthenticatedRequest, pk: int) -> VideoGeneration:
    """The user's own job; anyone else's, or one being deleted, answers 404, as if it did not exist."""
    return get_object_or_404(VideoGeneration.objects.visible().with_cost(), pk=pk, owner=request.user)


def _visible_generation(request: AuthenticatedRequest, pk: int) -> VideoGeneration:
    """A job the user may see: their own, one shared with them, or any for staff
    (models.GenerationQuerySet.visible_to); anything else answers 404, as if it did not exist."""
    return get_object_or_404(VideoGeneration.objects.visible_to(request.user).with_cost(), pk=pk)


def _viewable_generation(request: AuthenticatedRequest, pk: int) -> VideoGeneration:
    """A job whose files the user may fetch: one they may see, or any job for staff (the admin plays
    every video, even one being deleted)."""
    if request.user.is_staff:
        return get_object_or_404(VideoGeneration, pk=pk)
    return _visible_generation(request, pk)


@login_required
@require_http_methods(["GET", "POST"])
def dashboard(request: AuthenticatedRequest) -> HttpResponse:
    if request.method == "GET":
        form = _form_from(request)
    else:
        form = GenerationForm(request.POST, request.FILES or None, owner=request.user)
    if request.method == "POST":
        generation = _create_from(form, request)
        if generation is not None and _wants_json(request):
            # A new one-time token for the next request made from this page.
            answer = {"id": generation.pk, "html": _card_html(request, generation), "token": str(uuid.uuid4())}
            if queue.queue_unreachable():
                answer["notice"] = queue.QUEUE_DOWN_MESSAGE
            return JsonResponse(answer, status=201)
        if generation is not None:
            messages.success(request, "Your video is on its way.")
            _warn_if_queue_down(request)
            return redirect("videos:dashboard")
        if _wants_json(request):
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    return _render_dashboard(request, form)


def _form_from(request: AuthenticatedRequest) -> GenerationForm:
    """An empty form, or, for Edit & re-run (`?from=<id>`), one filled in from the user's own job."""
    try:
        source = _visible_generation(request, int(request.GET.get("from", "")))
    except (ValueError, Http404):
        return GenerationForm(owner=request.user)  # not a job of theirs: a plain form, as if no `from`
    return GenerationForm(
        initial=generation_form_initial(source),
        owner=request.user,
        reused=source if source.image or source.clip else None,
    )


def _create_from(form: GenerationForm, request: AuthenticatedRequest) -> VideoGeneration | None:
    """The job the posted form asks for; None, with the reasons on the form, when there is none."""
    if not form.is_valid():
        _note_lost_file(form, request)
        return None
    video_request = form.to_request()
    try:
        return creation.generation_create(
            owner=request.user,
            request=video_request,
            request_token=form.cleaned_data["token"],
            notify=form.notify_wanted,
        )
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        _note_lost_file(form, request)
        return None
    finally:
        if video_request.image is not None:
            video_request.image.close()


def _note_lost_file(form: GenerationForm, request: AuthenticatedRequest) -> None:
    """A page sent back with errors cannot hold the chosen file (browsers refuse to pre-fill one):
    say so, rather than let the user find out from a video made without it. The page's script
    submits without reloading and keeps the file, so only a browser without it sees this."""
    if request.FILES.get("image") and not _wants_json(request):
        form.add_error("image", "Choose the image again: a page sent back with errors cannot keep a file.")


def _render_dashboard(request: AuthenticatedRequest, form: GenerationForm) -> HttpResponse:
    search = HistoryFilterForm(request.GET)
    wanted = search.filters()
    history = Paginator(selectors.generation_history(owner=request.user, **wanted), HISTORY_PAGE_SIZE)
    return render(
        request,
        "videos/dashboard.html",
        {
            "form": form,
            "page": history.get_page(request.GET.get("page")),
            "search": search,
            "shown": wanted["status"],
            "filters": selectors.HISTORY_FILTERS,
            **_account_context(request),
            # The cost and limit of the form's defaults; the script follows the chosen model.
            **_default_offer_context(),
            "pickers": _pickers(),
            "status_ids_max": selectors.STATUS_IDS_MAX,
        },
        status=400 if form.errors else 200,
    )


def _account_context(request: AuthenticatedRequest) -> dict[str, object]:
    """The account's lines above the form (templates/videos/_account.html)."""
    return {
        # The balance as the worker last read it: the page never waits on Runway.
        "show_credits": bool(settings.RUNWAY_API_KEY),
        "credits": selectors.account_credits() if settings.RUNWAY_API_KEY else None,
        # This month's spend against the user's budget, and today's videos against the daily limit.
        "spend": selectors.spend_summary(user=request.user),
    }


@login_required
@require_GET
@never_cache
def account(request: AuthenticatedRequest) -> HttpResponse:
    """The account's lines as the dashboard shows them, for the page to swap in when they change."""
    return render(request, "videos/_account.html", _account_context(request))


def _default_offer_context() -> dict[str, object]:
    offer = catalog.offer_for(model=settings.RUNWAY_TEXT_MODEL, endpoint=catalog.TEXT_TO_VIDEO)
    if offer is None:  # a setting naming no text model: the form says so when it is used
        return {"estimate": 0, "prompt_max": catalog.UNSTATED_PROMPT_MAX}
    estimate = ledger.catalog_estimate(model=offer.model, duration=offer.default_duration)
    return {"estimate": estimate, "prompt_max": catalog.prompt_limit(offer)}


def _pickers() -> dict[str, object]:
    """What the form's script needs to follow the chosen model as the server would check it: the
    model table, the defaults, the prices, the limits of an image, and the server's own messages."""
    return {
        "offers": catalog.offers_for_pickers(prices=settings.RUNWAY_PRICES, ceiling=settings.RUNWAY_PRICE_CEILING),
        "defaults": {
            catalog.TEXT_TO_VIDEO: settings.RUNWAY_TEXT_MODEL,
            catalog.IMAGE_TO_VIDEO: settings.RUNWAY_IMAGE_MODEL,
            catalog.VIDEO_TO_VIDEO: settings.RUNWAY_VIDEO_MODEL,
            catalog.CHARACTER_PERFORMANCE: "act_two",
        },
        "free": settings.RUNWAY_SIMULATED,
        "modelProblems": catalog.model_problems(),
        "image": {
            "maxBytes": catalog.IMAGE_MAX_BYTES,
            "types": list(catalog.IMAGE_TYPES),
            "notAnImage": catalog.NOT_AN_IMAGE,
            "tooLarge": catalog.image_too_large("{size}"),
        },
    }


@login_required
@require_GET
def detail(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """A job's own page: its owner's, with its actions and its sharing; a video shared with the user,
    to watch, download and run again at their cost; staff may read anyone's (the admin's "View on
    site"), without actions: what staff do to a job is done in the admin."""
    try:
        generation = _visible_generation(request, pk)
    except Http404:
        if not request.user.is_staff:
            raise
        generation = get_object_or_404(VideoGeneration.objects.with_cost(), pk=pk)
    mine = generation.owner_id == request.user.pk
    context = {
        "generation": generation,
        "read_only": not mine,
        # Anyone but staff sees another's job only when it is shared with them (staff: when it is shared).
        "shared_to_me": not mine and (not request.user.is_staff or bool(generation.shared_with)),
        "sharing": ShareForm(initial={"shared_with": generation.shared_with}) if mine else None,
        "collections": list(request.user.video_collections.all()) if mine else [],
        "in_collections": list(generation.collections.filter(owner=request.user)) if mine else [],
        "status_ids_max": selectors.STATUS_IDS_MAX,
    }
    return render(request, "videos/detail.html", context)


@login_required
@require_GET
def team(request: AuthenticatedRequest) -> HttpResponse:
    """The Team view: others' done videos shared with the user, with the history's search and filters."""
    search = HistoryFilterForm(request.GET)
    shared = Paginator(selectors.team_history(viewer=request.user, **search.filters()), HISTORY_PAGE_SIZE)
    context = {
        "page": shared.get_page(request.GET.get("page")),
        "search": search,
        "share_with_everyone": settings.SHARE_WITH_EVERYONE,
    }
    return render(request, "videos/team.html", context)


@login_required
@require_POST
def share(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """Share the user's done video with their groups or everyone, or take it back."""
    generation = _own_generation(request, pk)
    choice = request.POST.get("shared_with", "")  # the service says what may be chosen here
    try:
        actions.generation_share(generation_id=generation.pk, owner=request.user, shared_with=choice)
    except actions.GenerationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, SHARED_MESSAGES[choice])
    return redirect("videos:detail", pk=generation.pk)


SHARED_MESSAGES = {
    "": "Only you see it now.",
    "groups": "Shared with your groups: they find it under Team.",
    "everyone": "Shared with everyone here: they find it under Team.",
}


@login_required
@require_GET
def statuses(request: AuthenticatedRequest) -> HttpResponse:
    """The page's one status check for all its live cards (`?ids=3,8,12`): each of the user's jobs
    asked about (anyone else's, or a deleted one, is simply left out), with an ETag of all but the
    clock; 304 with no body when the page already has that (static/js/videos.js keeps its data and
    the time it received it, from which it moves the clock on)."""
    query = StatusQueryForm(request.GET)
    if not query.is_valid():
        return JsonResponse({"errors": query.errors.get_json_data()}, status=400)
    ids = query.cleaned_data["ids"]
    found = selectors.generation_statuses(owner=request.user, ids=ids)
    etag = selectors.generation_statuses_tag(ids=ids, statuses=found)
    response = get_conditional_response(request, etag=etag) or JsonResponse({"jobs": found})
    response["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)  # the browser keeps it for the user only, and asks again
    return response


@login_required
@require_GET
def status(request: AuthenticatedRequest, pk: int) -> JsonResponse:
    """One job's status, as `statuses` gives it: for scripts and tools that follow a single job."""
    found = selectors.generation_statuses(owner=request.user, ids=[pk])
    if not found:
        raise Http404("No such video.")
    return JsonResponse(found[0])


@login_required
@require_GET
@never_cache  # it carries the page's CSRF token and the buttons' one-time tokens
def card(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """The job's card as the page shows it: the page swaps it in when the status check says it changed."""
    return HttpResponse(_card_html(request, _own_generation(request, pk)))


def _card_html(request: HttpRequest, generation: VideoGeneration) -> str:
    return render_to_string("videos/_generation.html", {"generation": generation}, request=request)


def _action_answer(
    request: AuthenticatedRequest, *, message: str, generation: VideoGeneration, status: int = 200
) -> JsonResponse:
    """What the page's script gets for an action done in place: what to tell the user, and the job's
    card as it now is (the new job's, for a re-run), read again with its cost."""
    generation = VideoGeneration.objects.visible().with_cost().get(pk=generation.pk)
    answer: dict[str, object] = {"message": message, "id": generation.pk, "html": _card_html(request, generation)}
    if queue.queue_unreachable():
        answer["notice"] = queue.QUEUE_DOWN_MESSAGE
    return JsonResponse(answer, status=status)


@login_required
@require_POST
def cancel(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    generation = _own_generation(request, pk)
    try:
        cancelled = actions.generation_cancel(generation_id=generation.pk)
    except actions.GenerationError as exc:
        if _wants_json(request):
            return JsonResponse({"error": str(exc)}, status=409)
        messages.error(request, str(exc))
    else:
        # The worker stops its task at Runway in a moment; the card says "Cancelling…" until then.
        said = "The video is being cancelled." if cancelled.is_cancelling else "The video was cancelled."
        if _wants_json(request):
            return _action_answer(request, message=said, generation=cancelled)
        messages.success(request, said)
        _warn_if_queue_down(request)
    return redirect("videos:detail", pk=generation.pk)


@login_required
@require_POST
def retry(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    generation = _own_generation(request, pk)
    token = _one_time_token(request)
    return _start_again(
        request,
        generation,
        lambda: actions.generation_retry(generation_id=generation.pk, request_token=token),
        "Trying again with the same settings.",
    )


@login_required
@require_POST
def rerun(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """Run the user's ended job again, or a video shared with them, at their own cost."""
    generation = _visible_generation(request, pk)
    new_seed = request.POST.get("seed") == "new"
    token = _one_time_token(request)
    return _start_again(
        request,
        generation,
        lambda: actions.generation_rerun(
            generation_id=generation.pk, new_seed=new_seed, request_token=token, owner=request.user
        ),
        "Running it again with a new seed." if new_seed else "Running it again, same seed.",
    )


@login_required
@require_POST
def upscale(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    generation = _own_generation(request, pk)
    token = _one_time_token(request)
    return _start_again(
        request,
        generation,
        lambda: actions.generation_upscale(generation_id=generation.pk, request_token=token),
        "Upscaling it: a new video, made from this one.",
    )


def _one_time_token(request: HttpRequest) -> uuid.UUID | None:
    """The button's one-time token (templatetags/one_time.py): posted twice, it makes one job."""
    try:
        return uuid.UUID(request.POST.get("token", ""))
    except ValueError:
        return None  # a page from before tokens: no protection against a double click, as then


def _start_again(
    request: AuthenticatedRequest,
    generation: VideoGeneration,
    start: Callable[[], VideoGeneration],
    success: str,
) -> HttpResponse:
    """Start a new job from an ended one; show the new job, or the old one with the reason it did not start."""
    try:
        new = start()
    except (actions.GenerationError, ValidationError) as exc:
        refused = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        if _wants_json(request):
            return JsonResponse({"error": refused}, status=409)
        messages.error(request, refused)
    else:
        if _wants_json(request):
            return _action_answer(request, message=success, generation=new, status=201)
        messages.success(request, success)
        _warn_if_queue_down(request)
        return redirect("videos:detail", pk=new.pk)
    return redirect("videos:detail", pk=generation.pk)


@login_required
@require_POST
def delete(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    generation = _own_generation(request, pk)
    try:
        actions.generation_delete(generation_id=generation.pk)
    except actions.GenerationError as exc:
        if _wants_json(request):
            return JsonResponse({"error": str(exc)}, status=409)
        messages.error(request, str(exc))
        return redirect("videos:detail", pk=generation.pk)
    if _wants_json(request):
        return JsonResponse({"message": "The video was deleted.", "deleted": generation.pk})
    messages.success(request, "The video was deleted.")
    _warn_if_queue_down(request)
    return redirect("videos:dashboard")


@login_required
@require_GET
def video_file(request: AuthenticatedRequest, pk: int) -> HttpResponseBase:
    """The stored copy of a finished video, for its owner and staff; with ranges, for seeking."""
    generation = _viewable_generation(request, pk)
    return serving.file_serve(
        request,
        file=generation.video_file,
        content_type="video/mp4",
        filename=serving.download_name(generation.prompt, generation.pk, "mp4"),
    )


# What an input image is served as, by the extension videos/images.py stored it under.
IMAGE_CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@login_required
@require_GET
def input_image(request: AuthenticatedRequest, pk: int) -> HttpResponseBase:
    """The image a job started from, as the user uploaded it; for its owner and staff."""
    generation = _viewable_generation(request, pk)
    extension = str(generation.image.name).rsplit(".", 1)[-1].lower()
    if extension not in IMAGE_CONTENT_TYPES:
        raise Http404("This video has no stored image.")
    return serving.file_serve(
        request,
        file=generation.image,
        content_type=IMAGE_CONTENT_TYPES[extension],
        filename=serving.download_name(generation.prompt, generation.pk, extension),
    )


# What an input clip is served as, by the extension videos/clips.py stored it under.
CLIP_CONTENT_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}


@login_required
@require_GET
def input_clip(request: AuthenticatedRequest, pk: int) -> HttpResponseBase:
    """The clip a video-to-video job edited, as the user uploaded it; for its owner and staff."""
    generation = _viewable_generation(request, pk)
    extension = str(generation.clip.name).rsplit(".", 1)[-1].lower()
    if extension not in CLIP_CONTENT_TYPES:
        raise Http404("This video has no stored clip.")
    return serving.file_serve(
        request,
        file=generation.clip,
        content_type=CLIP_CONTENT_TYPES[extension],
        filename=serving.download_name(generation.prompt, generation.pk, extension),
    )


@login_required
@require_GET
def poster(request: AuthenticatedRequest, pk: int) -> HttpResponseBase:
    """A frame of a finished video, for the history's thumbnails; for its owner and staff."""
    generation = _viewable_generation(request, pk)
    return serving.file_serve(
        request,
        file=generation.poster,
        content_type="image/jpeg",
        filename=serving.download_name(generation.prompt, generation.pk, "jpg"),
    )
