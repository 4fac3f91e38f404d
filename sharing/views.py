"""The anonymous share pages (/s/<token>/ and its file), and the owner's create and revoke.

Each view checks access through sharing/services.py and renders; the rule is written there once.
"""

import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from runway_project.lockout import client_ip_address
from sharing import services
from sharing.forms import ShareLinkForm
from sharing.models import ShareLink
from videos import serving
from videos.views import AuthenticatedRequest

View = Callable[..., HttpResponseBase]
DOWNLOAD_NAME = "shared-video.mp4"  # not the prompt's words, which the page does not show either


def _unlisted(response: HttpResponseBase, *, revalidate: bool = False) -> HttpResponseBase:
    """No search engine indexes a share page, and no cache keeps one; or (`revalidate`, the file) a
    browser keeps it but asks again before each use, so that a revoke stops a replay from its cache."""
    response["X-Robots-Tag"] = "noindex, nofollow"
    del response["Cache-Control"]
    if revalidate:
        patch_cache_control(response, private=True, no_cache=True)
    else:
        patch_cache_control(response, private=True, no_store=True)
    return response


def _gone(request: HttpRequest) -> HttpResponseBase:
    """One answer for every link that does not open: unknown, mistyped, revoked, expired, its video gone."""
    return _unlisted(render(request, "sharing/gone.html", status=404))


def anonymous(view: View) -> View:
    """A share page: GET or HEAD, rate-limited per client address, then the link found or the 404 page."""

    @require_safe
    @wraps(view)
    def wrapped(request: HttpRequest, token: str) -> HttpResponseBase:
        wait = services.share_rate_wait(client_ip_address(request), now=time.time())
        if wait is not None:
            context = {"limit": settings.SHARE_LINK_RATE_PER_MINUTE, "wait": wait}
            response = render(request, "sharing/too_many.html", context, status=429)
            response["Retry-After"] = str(wait)
            return _unlisted(response)
        link = services.share_link_find(token)
        if link is None:
            return _gone(request)
        return view(request, link, token)

    return wrapped


@anonymous
def shared_page(request: HttpRequest, link: ShareLink, token: str) -> HttpResponseBase:
    """The video and a download link: nothing of its owner, its prompt or any other video."""
    services.share_link_viewed(link)
    return _unlisted(render(request, "sharing/shared.html", {"link": link, "token": token}))


@anonymous
def shared_file(request: HttpRequest, link: ShareLink, token: str) -> HttpResponseBase:
    """The video's file, with ranges and 304s; streamed (or the front server's), never a presigned
    redirect that would outlive a revoke."""
    response = serving.file_serve(
        request, file=link.video.video_file, content_type="video/mp4", filename=DOWNLOAD_NAME, presign=False
    )
    return _unlisted(response, revalidate=True)


@login_required
@never_cache  # the new link is on the page once: no cache may keep it
@require_POST
def create(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    video = services.video_owned(user=request.user, video_id=pk)
    if video is None:
        raise Http404("No such video.")
    form = ShareLinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how long the link works.")
        return redirect("videos:detail", pk=video.pk)
    try:
        made = services.share_link_create(user=request.user, video=video, days=form.cleaned_data["days"])
    except services.ShareRefused as exc:
        messages.error(request, str(exc))
        return redirect("videos:detail", pk=video.pk)
    url = request.build_absolute_uri(f"/s/{made.token}/")
    return render(request, "sharing/created.html", {"video": video, "made": made, "url": url}, status=201)


@login_required
@require_POST
def revoke(request: AuthenticatedRequest, pk: int, link_id: int) -> HttpResponse:
    link = services.share_link_revoke(user=request.user, video_id=pk, link_id=link_id)
    if link is None:  # another user's link, or none: as if none
        raise Http404("No such link.")
    messages.success(request, f"Link {link.prefix}… revoked: it no longer works.")
    return redirect("videos:detail", pk=pk)
