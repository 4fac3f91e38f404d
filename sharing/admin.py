from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from sharing.models import ShareLink
from sharing.services import share_links_revoke


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Staff see every link by its prefix and revoke any; nothing else changes here, and the token
    is not stored to be shown (only its hash, which is not shown either)."""

    list_display = ("prefix", "video", "created_by", "created_at", "expires_at", "revoked_at", "view_count")
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("prefix", "created_by__username", "=video__id")
    list_select_related = ("video", "created_by")
    fields = (
        "prefix",
        "video",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "view_count",
        "last_viewed_at",
    )
    readonly_fields = fields
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by the video's owner, who alone is shown the link

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # read-only: the page shows the fields, the action revokes

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # revoked, so that the owner still sees what became of it

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("sharing.change_sharelink")

    @admin.action(description="Revoke", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ShareLink]) -> None:
        count = share_links_revoke(queryset)
        self.message_user(request, f"{count} link{'s' if count != 1 else ''} revoked.", messages.SUCCESS)
