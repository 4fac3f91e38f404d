"""The collections' pages and actions, thin over videos/services/collections.py: a collection or a
video the user may not see answers 404, as if it did not exist."""

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from videos.models import Collection, VideoGeneration
from videos.services import collections
from videos.views import AuthenticatedRequest

T = TypeVar("T")


def _owned(action: Callable[[], T]) -> T:
    """Run an owner's action; a collection or video that is not theirs is a 404."""
    try:
        return action()
    except (Collection.DoesNotExist, VideoGeneration.DoesNotExist):
        raise Http404("No such collection or video.") from None


@login_required
@require_http_methods(["GET", "POST"])
def collection_list(request: AuthenticatedRequest) -> HttpResponse:
    """The user's collections and those shared with them; a POST makes a new one."""
    if request.method == "POST":
        try:
            made = collections.collection_create(owner=request.user, name=request.POST.get("name", ""))
        except collections.CollectionError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Collection “{made.name}” made: add videos to it from their pages.")
            return redirect("videos:collection", pk=made.pk)
        return redirect("videos:collections")
    found = collections.collections_visible_to(request.user)
    context = {"mine": found.filter(owner=request.user), "shared": found.exclude(owner=request.user)}
    return render(request, "videos/collections.html", context)


@login_required
def collection_page(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    collection = _owned(lambda: collections.collections_visible_to(request.user).get(pk=pk))
    videos = collections.collection_videos(collection=collection, viewer=request.user)
    mine = collection.owner_id == request.user.pk
    return render(request, "videos/collection.html", {"collection": collection, "videos": videos, "mine": mine})


@login_required
@require_POST
def collection_share(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    shared = request.POST.get("shared") == "on"
    try:
        _owned(lambda: collections.collection_share(owner=request.user, collection_id=pk, shared=shared))
    except collections.CollectionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Shared with your groups." if shared else "Only you see it now.")
    return redirect("videos:collection", pk=pk)


@login_required
@require_POST
def collection_delete(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    name = _owned(lambda: collections.collection_delete(owner=request.user, collection_id=pk))
    messages.success(request, f"Collection “{name}” deleted; its videos are still yours.")
    return redirect("videos:collections")


@login_required
@require_POST
def collection_remove(request: AuthenticatedRequest, pk: int, video: int) -> HttpResponse:
    _owned(lambda: collections.collection_remove(owner=request.user, collection_id=pk, generation_id=video))
    messages.success(request, "Taken out of the collection.")
    return redirect("videos:collection", pk=pk)


@login_required
@require_POST
def collection_add(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """Put the user's video `pk` into one of their collections (`collection`, its id)."""
    try:
        collection_id = int(request.POST.get("collection", ""))
    except ValueError:
        raise Http404("No such collection.") from None
    added = _owned(
        lambda: collections.collection_add(owner=request.user, collection_id=collection_id, generation_id=pk)
    )
    messages.success(request, f"Added to “{added.name}”.")
    return redirect("videos:detail", pk=pk)
