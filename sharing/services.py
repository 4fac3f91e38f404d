"""Share links: made, found, counted and revoked here, and nowhere else.

Who may see what:

- Only a video's owner may make or revoke its links, and only for a video that succeeded, has its
  file, and is visible (not being deleted): `video_shareable`.
- Anyone holding a link (no login) sees that one video's page and file, and nothing else, while
  the link is *usable*: not revoked, not expired, made by the video's owner whose account is
  active, for a video that is still shareable. `share_link_find` is that rule, the only one the
  anonymous views use; every other link (unknown, mistyped, revoked, expired, its video or owner
  gone) is None alike, so that the page and its timing tell a guesser nothing.
- The anonymous pages are rate-limited per client address (`share_rate_wait`).

A token is `secrets.token_urlsafe(32)` (256 random bits): it is returned once by
`share_link_create` and only its SHA-256 is stored, so a fast hash is as good as a slow one, and a
lookup is one query on a unique index followed by a constant-time comparison.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from runway_project import ratelimit
from sharing.models import ShareLink
from videos.models import Status, VideoGeneration

_TOKEN_BYTES = 32
TOKEN_LENGTH = 43  # characters of token_urlsafe(32)
PREFIX_LENGTH = 6
# What the owner may pick; SHARE_LINK_MAX_DAYS caps it (and is offered itself).
DAY_CHOICES = (1, 7, 30)


class ShareRefused(Exception):
    """The owner's video cannot be shared (yet): the message says why."""


@dataclass(frozen=True)
class CreatedLink:
    """A link just made. `token` exists only here: it is shown once, never stored."""

    link: ShareLink
    token: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def day_choices() -> list[int]:
    """How long a new link may work, in days: the usual choices up to SHARE_LINK_MAX_DAYS, and it."""
    longest = settings.SHARE_LINK_MAX_DAYS
    return sorted({days for days in DAY_CHOICES if days <= longest} | {longest})


def _shareable() -> "QuerySet[VideoGeneration]":
    return VideoGeneration.objects.visible().filter(status=Status.SUCCEEDED).exclude(video_file="")


def video_owned(*, user: User, video_id: int) -> VideoGeneration | None:
    """The user's own visible video; None for anyone else's, or one being deleted (as if none)."""
    return VideoGeneration.objects.visible().filter(pk=video_id, owner=user).first()


def video_shareable(video: VideoGeneration) -> bool:
    return _shareable().filter(pk=video.pk).exists()


def share_link_create(*, user: User, video: VideoGeneration, days: int, now: datetime | None = None) -> CreatedLink:
    """A new link to the user's own video, working for `days`; ShareRefused when it cannot be shared."""
    if video.owner_id != user.pk:
        raise ShareRefused("Only the video's owner may share it.")
    if days not in day_choices():
        raise ShareRefused(f"A link works for one of {', '.join(map(str, day_choices()))} days.")
    now = now or timezone.now()
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    with transaction.atomic():
        # Locked, so that a delete that starts now waits, and this link dies with the video.
        if not _shareable().select_for_update().filter(pk=video.pk).exists():
            raise ShareRefused("Only a finished video can be shared.")
        link = ShareLink.objects.create(
            video=video,
            created_by=user,
            token_hash=token_hash(token),
            prefix=token[:PREFIX_LENGTH],
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    return CreatedLink(link, token)


def share_links_of(*, user: User, video: VideoGeneration) -> "QuerySet[ShareLink]":
    """The user's links to their video, newest first, revoked and expired ones too."""
    return ShareLink.objects.filter(video=video, created_by=user, video__owner=user)


def share_link_revoke(*, user: User, video_id: int, link_id: int, now: datetime | None = None) -> ShareLink | None:
    """Revoke the user's own link (at once: the next request for it is a 404); None when it is not theirs."""
    link = ShareLink.objects.filter(pk=link_id, video_id=video_id, created_by=user, video__owner=user).first()
    if link is None:
        return None
    share_links_revoke(ShareLink.objects.filter(pk=link.pk), now=now)
    link.refresh_from_db()
    return link


def share_links_revoke(links: "QuerySet[ShareLink]", *, now: datetime | None = None) -> int:
    """Revoke those links not already revoked (the owner's button, staff's admin action); how many."""
    return links.filter(revoked_at__isnull=True).update(revoked_at=now or timezone.now())


def share_link_find(token: str, *, now: datetime | None = None) -> ShareLink | None:
    """The usable link that `token` opens, with its video; None for any other (see the module's rule)."""
    if len(token) != TOKEN_LENGTH:
        return None
    hashed = token_hash(token)
    link = (
        ShareLink.objects.select_related("video")
        .filter(
            token_hash=hashed,
            revoked_at__isnull=True,
            expires_at__gt=now or timezone.now(),
            created_by__is_active=True,
            video__owner=F("created_by"),
            video__in=_shareable(),
        )
        .first()
    )
    if link is None or not hmac.compare_digest(link.token_hash, hashed):
        return None
    return link


def share_link_viewed(link: ShareLink, *, now: datetime | None = None) -> None:
    """Count a visit of the link's page (not each range of its file, which a player asks for many)."""
    ShareLink.objects.filter(pk=link.pk).update(view_count=F("view_count") + 1, last_viewed_at=now or timezone.now())


def share_rate_wait(address: str, *, now: float) -> int | None:
    """Seconds until `address` may ask again when it is over SHARE_LINK_RATE_PER_MINUTE this minute;
    None while under. Counted in Django's cache (CACHE_URL), one counter per address and minute."""
    limit = settings.SHARE_LINK_RATE_PER_MINUTE
    if limit <= 0:
        return None
    return ratelimit.minute_wait(
        f"share-rate:{hashlib.sha256(address.encode()).hexdigest()[:32]}", limit=limit, now=now
    )
