from django.conf import settings
from django.db import models

from videos import catalog


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Sending to Runway"
    PENDING = "pending", "Waiting to start"
    THROTTLED = "throttled", "Waiting for capacity"
    RUNNING = "running", "Generating"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"


FINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT})
# States in which Runway holds the task and we poll it.
AT_RUNWAY_STATUSES = frozenset({Status.PENDING, Status.THROTTLED, Status.RUNNING})
# Ended states from which "Try again" makes a new job with the same settings.
RETRYABLE_STATUSES = frozenset({Status.FAILED, Status.CANCELLED, Status.TIMED_OUT})


class VideoGeneration(models.Model):
    """One user request for a video, and everything Runway told us about it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="video_generations")
    prompt = models.TextField()
    endpoint = models.CharField(max_length=32, choices=[(e, e) for e in catalog.ENDPOINTS])
    model = models.CharField(max_length=64)
    ratio = models.CharField(max_length=16)
    duration = models.PositiveSmallIntegerField(null=True, blank=True)
    seed = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Chosen before submitting (when the model takes one) so a re-run can reproduce it.",
    )
    image = models.FileField(upload_to="inputs/%Y/%m/", blank=True)
    image_url = models.URLField(max_length=catalog.IMAGE_URL_MAX_LENGTH, blank=True)
    request_token = models.UUIDField(
        null=True, blank=True, editable=False, help_text="The form's one-time token: a re-post makes no second job."
    )

    runway_task_id = models.CharField(max_length=64, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0 to 100.")
    output_url = models.TextField(
        blank=True, help_text="Runway's signed URL, for staff only; it expires within 24-48 hours."
    )
    video_file = models.FileField(upload_to="videos/%Y/%m/", blank=True, help_text="Our own copy of the video.")
    poster = models.FileField(upload_to="posters/%Y/%m/", blank=True, help_text="A frame of the video, as a JPEG.")
    failure_code = models.CharField(max_length=64, blank=True, help_text="Runway's failureCode, or one of ours.")
    message = models.TextField(blank=True, help_text="What the user is told when the job did not succeed.")
    last_error = models.TextField(blank=True, help_text="The last problem met, for staff.")

    poll_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveSmallIntegerField(default=0, help_text="Temporary errors in a row.")
    step = models.PositiveIntegerField(
        default=0, help_text="Counts claimed steps; a task message runs only for the step it names."
    )
    cancel_pending = models.BooleanField(default=False, help_text="The task still has to be deleted at Runway.")
    poster_pending = models.BooleanField(default=False, help_text="The video is done; its poster is still to make.")
    next_check_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status", "next_check_at"]),
            # The time estimate: the last jobs of a model that succeeded.
            models.Index(fields=["model", "status", "-finished_at"], name="videos_recent_by_model"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "request_token"],
                condition=models.Q(request_token__isnull=False),
                name="one_job_per_form_token",
            ),
        ]

    def __str__(self) -> str:
        return f"Video #{self.pk} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def has_image(self) -> bool:
        return bool(self.image or self.image_url)
