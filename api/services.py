"""Making, finding and revoking API keys: the one place the command, the admin and the API's
authentication go through."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from api import addresses, keys
from api.models import ApiKey

# last_used_at is written at most this often per key: not a database write per request.
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedKey:
    """A key just made. `key` and `webhook_secret` exist only here: they are shown once."""

    api_key: ApiKey
    key: str
    webhook_secret: str


def api_key_create(*, user: User, name: str = "", webhook_url: str = "") -> CreatedKey:
    """A new key for `user`; ValidationError (nothing made) for a webhook URL it may not have."""
    if webhook_url:
        problem = addresses.url_problem(webhook_url, allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES)
        if problem:
            raise ValidationError({"webhook_url": [problem]})
    made = keys.new_key()
    secret = keys.new_webhook_secret() if webhook_url else ""
    api_key = ApiKey.objects.create(
        user=user,
        name=name[:100],
        prefix=made.prefix,
        hashed=made.hashed,
        webhook_url=webhook_url,
        webhook_secret=secret,
    )
    return CreatedKey(api_key, made.key, secret)


def api_key_authenticate(key: str) -> ApiKey | None:
    """The usable key that `key` is, noting its use; None for a wrong, unknown or revoked one (or an
    inactive user's)."""
    prefix = keys.key_prefix(key)
    if prefix is None:
        return None
    found = ApiKey.objects.usable().select_related("user").filter(prefix=prefix).first()
    if found is None or not keys.matches(key, found.hashed) or not found.user.is_active:
        return None
    moment = timezone.now()
    if found.last_used_at is None or moment - found.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=found.pk).update(last_used_at=moment)
        found.last_used_at = moment
    return found
