"""A share link: one video's page and file for anyone holding the link, until it expires or its
owner revokes it. Only the token's SHA-256 is stored; the token itself exists once, when made."""

from django.conf import settings
from django.db import models


class ShareLink(models.Model):
    # Deleting the video or its owner deletes the links with it; sharing.services.share_link_find
    # also refuses a link as soon as its video is being deleted (delete_pending).
    video = models.ForeignKey("videos.VideoGeneration", on_delete=models.CASCADE, related_name="share_links")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_links")
    token_hash = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the token.")
    prefix = models.CharField(
        max_length=8, editable=False, help_text="The token's first characters: tells links apart, opens nothing."
    )
    created_at = models.DateTimeField(editable=False)
    expires_at = models.DateTimeField(editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    view_count = models.PositiveIntegerField(default=0, editable=False, help_text="Visits of the link's page.")
    last_viewed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["video", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.prefix}… for video #{self.video_id}"

    def __repr__(self) -> str:
        return f"<ShareLink {self.prefix}… of video {self.video_id}>"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
