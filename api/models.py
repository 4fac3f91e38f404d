"""An API key of ours: for one user, named, stored as its hash, revocable; with the webhook its
jobs' endings are delivered to (issue 23's webhooks), if any."""

import uuid

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


class ApiCreate(models.Model):
    """A job made through the API: by which key, with which Idempotency-Key, from which body.

    What makes a repeated create answer the first task (api/services.py): the same Idempotency-Key
    within a day, or an official SDK's own retry (`x-stainless-retry-count` of 1 or more) of the
    same body from the same key within minutes.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="creates")
    generation = models.OneToOneField("videos.VideoGeneration", on_delete=models.CASCADE, related_name="api_create")
    idempotency_key = models.CharField(max_length=255, blank=True)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the endpoint and the request's JSON body.")
    # Where the script reached us (scheme and host): the webhook's output links start with it.
    base_url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["api_key", "-created_at"])]
        verbose_name = "API create"

    def __str__(self) -> str:
        return f"Video #{self.generation_id} through {self.api_key.prefix}…"


class ApiUpload(models.Model):
    """A file sent to POST /v1/uploads, as Runway's ephemeral uploads: its `runway://` URI works
    in a create of the same user's keys until it expires, and the file is then deleted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=255)
    file = models.FileField(upload_to="uploads/%Y/%m/", blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    arrived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API upload"

    def __str__(self) -> str:
        return f"{self.filename} ({self.id})"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Being delivered"
    DELIVERED = "delivered", "Delivered"
    GAVE_UP = "gave_up", "Gave up"


class WebhookDelivery(models.Model):
    """One job's ending, to be posted to the webhook of the key that made it (api/webhooks.py):
    the exact body signed, its attempts, and when the next one is due."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("videos.JobEvent", on_delete=models.SET_NULL, null=True, related_name="deliveries")
    generation_number = models.PositiveBigIntegerField()
    url = models.URLField(max_length=2048)
    body = models.TextField(help_text="The JSON posted, byte for byte as signed.")
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["state", "next_attempt_at"])]
        constraints = [models.UniqueConstraint(fields=["event", "api_key"], name="one_delivery_per_event_and_key")]

    def __str__(self) -> str:
        return f"Video #{self.generation_number} to {self.url} ({self.state})"

    @property
    def message_id(self) -> str:
        """The `webhook-id` header: the same on every attempt, so the receiver can drop a repeat."""
        return f"msg_{self.id.hex}"


class WebhookAttempt(models.Model):
    """One POST of a delivery, and what the receiver answered."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    answer = models.CharField(max_length=300, blank=True, help_text="The start of the receiver's answer.")
    error = models.CharField(max_length=300, blank=True)
    seconds = models.FloatField()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.status_code or self.error} at {self.at:%Y-%m-%d %H:%M:%S}"
