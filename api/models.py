"""An API key of ours: for one user, named, stored as its hash, revocable; with the webhook its
jobs' endings are delivered to (issue 23's webhooks), if any."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def usable(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True, help_text="What the key is for, as its owner named it.")
    prefix = models.CharField(
        max_length=16, unique=True, editable=False, help_text="The key's first part: names it, grants nothing."
    )
    hashed = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the whole key.")
    webhook_url = models.URLField(max_length=2048, blank=True)
    # Needed as it is to sign each delivery (Standard Webhooks): kept, never shown after creation.
    webhook_secret = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix}… of user {self.user_id}>"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
