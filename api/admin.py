from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from api.models import ApiKey, ApiUpload, WebhookAttempt, WebhookDelivery


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Staff see every key by its prefix and revoke any; a key itself is never stored to be shown."""

    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("user", "prefix", "name", "webhook_url", "created_at", "last_used_at", "revoked_at")
    fields = readonly_fields
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by their owner or `manage.py api_key create`, which show the key once

    @admin.action(description="Revoke")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            key.revoke()
        self.message_user(request, f"{len(keys)} key{'s' if len(keys) != 1 else ''} revoked.", messages.SUCCESS)


class WebhookAttemptInline(admin.TabularInline):  # type: ignore[type-arg]
    model = WebhookAttempt
    fields = ("at", "status_code", "error", "answer", "seconds")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Every delivery of a job's ending to a key's webhook, its attempts and each receiver's answer."""

    list_display = ("created_at", "generation_number", "api_key", "url", "state", "attempts", "next_attempt_at")
    list_filter = ("state", "created_at")
    search_fields = ("=generation_number", "url", "api_key__prefix", "api_key__user__username")
    list_select_related = ("api_key",)
    readonly_fields = (
        "api_key",
        "generation_number",
        "url",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
        "delivered_at",
        "body",
    )
    fields = readonly_fields
    inlines = (WebhookAttemptInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ApiUpload)
class ApiUploadAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Files sent to POST /v1/uploads; each is deleted a day after it was made."""

    list_display = ("created_at", "filename", "api_key", "size", "arrived_at")
    readonly_fields = ("id", "api_key", "filename", "file", "size", "created_at", "arrived_at")
    fields = readonly_fields
    list_select_related = ("api_key",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
