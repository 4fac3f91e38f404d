"""The job record: a VideoGeneration, its states, the one table of moves between them, and the
questions every part of the product asks about jobs (which are active, whose next step is due).
Beside it, the account's CreditBalance, which the worker reads from Runway for the pages,
LastSweep, when beat's sweep last ran, and StrayMessages, another installation's messages that
reached this one's workers, for /healthz, and the spend ledger (SpendEntry) with the
per-user budgets staff set (UserBudget).
"""

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q, Subquery, Sum
from django.urls import reverse
from django.utils import timezone

from videos import catalog
from videos.events import job_ended


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
ACTIVE_STATUSES = frozenset(Status) - FINAL_STATUSES
# States in which Runway holds the task and we poll it.
AT_RUNWAY_STATUSES = frozenset({Status.PENDING, Status.THROTTLED, Status.RUNNING})
# Ended states from which "Try again" makes a new job with the same settings.
RETRYABLE_STATUSES = frozenset({Status.FAILED, Status.CANCELLED, Status.TIMED_OUT})
# A claimed step that has not finished after this long died with its worker: a step's calls to
# Runway each give up within a minute. Storing the video is the exception: its download may take
# up to runway.DOWNLOAD_SECONDS (ten minutes), so a store step is lost only after a minute more.
STEP_LOST_AFTER = timedelta(seconds=120)
STORE_STEP_LOST_AFTER = timedelta(seconds=660)
# A job whose next step is this many poll intervals late makes /healthz unhealthy.
LONG_OVERDUE_POLLS = 2


@dataclass(frozen=True)
class Transition:
    """A move the product makes from any of `sources` to any of `targets`, and what makes it."""

    sources: frozenset[Status]
    targets: frozenset[Status]
    cause: str


def _states(*statuses: Status) -> frozenset[Status]:
    return frozenset(statuses)


# Every change of `status` goes through VideoGeneration.move_to(), which refuses a move that is
# not here. docs/ARCHITECTURE.md draws this table; a test keeps the two the same.
TRANSITIONS = (
    Transition(_states(Status.QUEUED), _states(Status.SUBMITTING), "the submit step claims the job"),
    Transition(_states(Status.QUEUED), _states(Status.FAILED), "no RUNWAY_API_KEY is configured (at creation)"),
    Transition(_states(Status.SUBMITTING), _states(Status.PENDING), "Runway accepted the create and named its task"),
    Transition(
        _states(Status.SUBMITTING),
        _states(Status.QUEUED),
        "the create failed in a way that may pass (429, 503, no connection): sent again after a backoff",
    ),
    Transition(
        _states(Status.SUBMITTING),
        _states(Status.FAILED),
        "Runway refused the request; or nobody knows whether the create arrived (its answer was lost, or "
        "the worker died while it was out: the sweep), so it is never sent again; or the input image is gone",
    ),
    Transition(
        _states(Status.SUBMITTING),
        _states(Status.TIMED_OUT),
        "it could not be sent within RUNWAY_MAX_QUEUE_WAIT (no worker took it, or Runway kept refusing creates): "
        "never sent, nothing charged",
    ),
    Transition(AT_RUNWAY_STATUSES, AT_RUNWAY_STATUSES, "a poll reports Runway's state"),
    Transition(AT_RUNWAY_STATUSES, _states(Status.SUCCEEDED), "Runway finished it and our copy of the video is stored"),
    Transition(
        AT_RUNWAY_STATUSES,
        _states(Status.FAILED),
        "Runway failed it or has no such task, or its video cannot be kept (too large, not an MP4)",
    ),
    Transition(AT_RUNWAY_STATUSES, _states(Status.CANCELLED), "Runway reports it cancelled (from Runway's dashboard)"),
    Transition(
        AT_RUNWAY_STATUSES,
        _states(Status.TIMED_OUT),
        "still unfinished RUNWAY_MAX_WAIT after Runway accepted it: the task is deleted at Runway",
    ),
    Transition(
        ACTIVE_STATUSES,
        _states(Status.CANCELLED),
        "its owner or staff cancel it: the worker then deletes the task at Runway",
    ),
)
ALLOWED_MOVES = frozenset(
    (source, target) for transition in TRANSITIONS for source in transition.sources for target in transition.targets
)


class InvalidTransition(Exception):
    """A status change that TRANSITIONS does not allow: a bug, never a user's mistake."""


class Step(enum.StrEnum):
    """What a job's next step does. Each runs as the Celery task of the same name (videos/tasks.py)."""

    SUBMIT = "submit"
    POLL = "poll"
    STORE_VIDEO = "store_video"
    MAKE_POSTER = "make_poster"
    CANCEL_AT_RUNWAY = "cancel_at_runway"


def _has_next_step() -> Q:
    """The rows for which VideoGeneration.next_step is not None, as a query."""
    return (
        Q(status=Status.QUEUED)
        | Q(status__in=AT_RUNWAY_STATUSES)
        | Q(status__in=FINAL_STATUSES, cancel_pending=True)
        | Q(status=Status.SUCCEEDED, poster_pending=True)
    )


class Sharing(models.TextChoices):
    """Who else may see a done video (its owner always does, staff too)."""

    PRIVATE = "", "Only you"
    GROUPS = "groups", "Your groups"
    EVERYONE = "everyone", "Everyone with an account here"


class GenerationQuerySet(models.QuerySet["VideoGeneration"]):
    """The questions every part asks about jobs, each answered here once."""

    def visible(self) -> "GenerationQuerySet":
        """Jobs their owner sees: all but those deleted and waiting for the worker to remove them."""
        return self.filter(delete_pending=False)

    def visible_to(self, user: Any) -> "GenerationQuerySet":
        """Who may see what, in one place: the jobs `user` may watch, download and run again at their
        own cost. Their own; the done videos of others shared with a group they are both in (or
        with everyone, when SHARE_WITH_EVERYONE allows it); every job for staff. None being deleted:
        deleting, like unsharing, takes a video away at once."""
        if user.is_staff:
            return self.visible()
        return self.visible().filter(Q(owner=user) | _shared_with(user))

    def shared_with_user(self, user: Any) -> "GenerationQuerySet":
        """Others' done videos shared so that `user` may see them: the Team view (staff: every shared one)."""
        done = self.visible().filter(status=Status.SUCCEEDED).exclude(owner=user)
        if user.is_staff:
            return done.filter(~Q(shared_with=Sharing.PRIVATE) | _in_shared_collection())
        return done.filter(_shared_with(user))

    def active(self) -> "GenerationQuerySet":
        """Jobs that have not ended (they count towards a user's limit of unfinished jobs)."""
        return self.filter(status__in=ACTIVE_STATUSES)

    def with_next_step(self) -> "GenerationQuerySet":
        """Jobs with work left for the worker: those whose `next_step` is not None."""
        return self.filter(_has_next_step())

    def due(self, now: datetime) -> "GenerationQuerySet":
        """Jobs whose next step should run by `now`."""
        return self.with_next_step().filter(next_check_at__lte=now)

    def overdue(self, now: datetime, *, polls: int = 1) -> "GenerationQuerySet":
        """Jobs whose work was lost: a next step due more than `polls` poll intervals ago (its message
        is gone), or a step claimed more than STEP_LOST_AFTER ago (STORE_STEP_LOST_AFTER for storing
        the video) that never finished (its worker died).

        A poster is late only after STEP_LOST_AFTER: its job is done and shows, and when many videos
        end at once a worker makes their posters in turn, after the videos (videos/services/polling.py).

        The sweep asks with one interval, and puts these back to work; see long_overdue() for the
        operators' alarm.
        """
        grace = timedelta(seconds=polls * settings.RUNWAY_POLL_INTERVAL)
        poster = Q(status=Status.SUCCEEDED, poster_pending=True, cancel_pending=False)
        late = (~poster & Q(next_check_at__lte=now - grace)) | (
            poster & Q(next_check_at__lte=now - max(grace, STEP_LOST_AFTER))
        )
        lost = Q(video_pending=False, updated_at__lte=now - STEP_LOST_AFTER) | Q(
            video_pending=True, updated_at__lte=now - STORE_STEP_LOST_AFTER
        )
        stuck = Q(next_check_at__isnull=True) & lost
        return self.filter(_has_next_step() | Q(status=Status.SUBMITTING)).filter(late | stuck)

    def with_cost(self) -> "GenerationQuerySet":
        """Each job with what the spend ledger says it costs (`cost_credits`, None before any entry)
        and whether that figure is final (`cost_final`): two subqueries, however many jobs."""
        entries = SpendEntry.objects.filter(generation_number=OuterRef("pk")).order_by()
        total = entries.values("generation_number").annotate(total=Sum("credits")).values("total")
        return self.annotate(
            cost_credits=Subquery(total, output_field=models.IntegerField()),
            cost_final=Exists(entries.filter(kind=SpendKind.FINAL)),
        )

    def long_overdue(self, now: datetime) -> "GenerationQuerySet":
        """Jobs overdue by more than LONG_OVERDUE_POLLS poll intervals: what /healthz counts and the
        admin's "Overdue" filter lists. One interval late is the sweep's business; two means the
        worker is behind, down, or not being swept."""
        return self.overdue(now, polls=LONG_OVERDUE_POLLS)


def _shared_with(user: Any) -> Q:
    """Others' done videos shared with `user`: with the groups of an owner who shares one with them,
    or with everyone (while SHARE_WITH_EVERYONE allows it; a video shared with everyone is shared
    with its owner's groups too, so turning the setting off leaves it with them)."""
    memberships = Group.user_set.through.objects
    together = memberships.filter(
        user_id=OuterRef("owner_id"), group_id__in=memberships.filter(user_id=user.pk).values("group_id")
    )
    shared = (Q(shared_with__in=[Sharing.GROUPS, Sharing.EVERYONE]) | _in_shared_collection()) & Q(Exists(together))
    if settings.SHARE_WITH_EVERYONE:
        shared |= Q(shared_with=Sharing.EVERYONE)
    return Q(status=Status.SUCCEEDED) & shared


def _in_shared_collection() -> Q:
    """Videos in a collection its owner (theirs too: a collection holds its owner's videos only)
    shared with their groups: sharing a collection shares its done videos with them."""
    return Q(Exists(CollectionItem.objects.filter(generation_id=OuterRef("pk"), collection__shared_with_groups=True)))


class Origin(models.TextChoices):
    """Where a job was asked for."""

    WEB = "web", "Web"
    API = "api", "API"
    SHELL = "shell", "Command line"


class VideoGeneration(models.Model):
    """One user request for a video, and everything Runway told us about it."""

    # The job's id outside the product: what the API answers as a task's id (never Runway's).
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    origin = models.CharField(
        max_length=8, choices=Origin.choices, default=Origin.WEB, editable=False, help_text="Where it was asked for."
    )

    # Kept (owner emptied) when the user is deleted: the worker still has to stop the job's task at
    # Runway and remove its files before the row goes (services/actions.user_generations_remove).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="video_generations",
    )
    prompt = models.TextField()
    # The prompt case-folded (str.casefold, which knows every script), for the history's word search
    # on any database: SQLite's own LIKE ignores case for ASCII letters only (services/selectors.py).
    prompt_folded = models.TextField(blank=True, editable=False)
    endpoint = models.CharField(max_length=32, choices=[(e, e) for e in catalog.ENDPOINTS])
    model = models.CharField(max_length=64)
    # The request's settings as Runway's fields name them ("ratio", "duration", "seed", "resolution",
    # "audio", "negativePrompt"), those given only: checked by the catalog before they are stored,
    # sent as they are. The model's properties below read them by this project's names.
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text="The request's settings, as sent to Runway. The seed is chosen before submitting (when the "
        "model takes one) so a re-run can reproduce it.",
    )
    image = models.FileField(upload_to="inputs/%Y/%m/", blank=True)
    # The video's last frame, for the models that take one (videos/model_table.py's `frames`).
    last_image = models.FileField(upload_to="inputs/%Y/%m/", blank=True)
    image_url = models.URLField(max_length=catalog.IMAGE_URL_MAX_LENGTH, blank=True)
    # The clip a video-to-video job edits (checked by videos/clips.py), kept so a re-run can send it
    # again long after Runway's copy of an upload has expired; its length prices the edit.
    clip = models.FileField(upload_to="inputs/%Y/%m/", blank=True)
    clip_seconds = models.FloatField(null=True, blank=True, help_text="The clip's length, as ffmpeg read it.")
    # Act-Two's performance clip (face and body), which drives the character (the image or the clip).
    performance = models.FileField(upload_to="inputs/%Y/%m/", blank=True)
    performance_seconds = models.FloatField(
        null=True, blank=True, help_text="The performance's length, as ffmpeg read it: what Act-Two is billed by."
    )
    # The job this one was made from by its Upscale action (its stored copy is this job's clip).
    source = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="derived", editable=False
    )
    request_token = models.UUIDField(
        null=True, blank=True, editable=False, help_text="The form's one-time token: a re-post makes no second job."
    )
    # Defaults in the database too: processes of the version before them still make jobs while they are migrated.
    shared_with = models.CharField(
        max_length=8,
        choices=Sharing.choices,
        default=Sharing.PRIVATE,
        db_default=Sharing.PRIVATE,
        blank=True,
        help_text="Who else may see it once done: its owner's groups, or everyone (SHARE_WITH_EVERYONE).",
    )
    notify_when_done = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Its owner asked to be emailed when it ends (videos/services/alerts.py): a mail when it is done, "
        "fails or times out; none when it is cancelled.",
    )

    runway_task_id = models.CharField(max_length=64, blank=True, db_index=True)
    runway_status = models.CharField(
        max_length=32,
        blank=True,
        help_text="What Runway last said of the task (PENDING, RUNNING, ...): its status when it was cancelled "
        "decides whether Runway refunds it.",
    )
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
    delete_pending = models.BooleanField(
        default=False,
        help_text="Deleted by its owner or staff, and gone from the owner's pages: the worker deletes the task "
        "at Runway, then our files and this row.",
    )
    video_pending = models.BooleanField(
        default=False, help_text="Runway made the video; our copy of it is still to store."
    )
    poster_pending = models.BooleanField(default=False, help_text="The video is done; its poster is still to make.")
    next_check_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status", "next_check_at"]),
            # The time estimate: the last jobs of a model that succeeded.
            models.Index(fields=["model", "status", "-finished_at"], name="videos_recent_by_model"),
            # The Team view: the few videos shared, newest first.
            models.Index(fields=["-created_at"], condition=~models.Q(shared_with=""), name="videos_shared"),
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

    # Set by move_to() when the job ends, until the write that saves the ending records it.
    ending_unrecorded = False

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.ending_unrecorded:
            super().save(*args, **kwargs)
            return
        with transaction.atomic():  # the ending and its event are written together, or neither
            super().save(*args, **kwargs)
            self.record_ending()

    def get_absolute_url(self) -> str:
        """Its own page (the admin's "View on site": staff may read anyone's)."""
        return reverse("videos:detail", args=[self.pk])

    def record_ending(self) -> None:
        """Write the JobEvent of the ending move_to() made, in the caller's transaction (call it right
        after the write that saved the final status); once that commits, `job_ended` is sent with it."""
        if not self.ending_unrecorded:
            return
        self.ending_unrecorded = False
        event = JobEvent.objects.create(
            generation=self, generation_number=self.pk, owner_id=self.owner_id, status=self.status
        )
        ended = partial(job_ended.send, sender=JobEvent, event=event, origin=self.origin, notify=self.notify_when_done)
        transaction.on_commit(ended, robust=True)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_cancelling(self) -> bool:
        """Cancelled by its owner or staff, and the worker has yet to delete its task at Runway."""
        return self.status == Status.CANCELLED and self.cancel_pending

    @property
    def is_settled(self) -> bool:
        """Ended, and what its page shows will not change any more: the page stops asking.
        A done video's poster is still to come while the worker makes it."""
        return (
            self.is_final and not self.is_cancelling and not (self.status == Status.SUCCEEDED and self.poster_pending)
        )

    @property
    def status_label(self) -> str:
        """What pages, the status JSON and the admin call the job's state."""
        if self.delete_pending:
            return "Deleting…"  # only staff see it: the owner's pages have forgotten it
        if self.is_cancelling:
            return "Cancelling…"
        return self.get_status_display()

    @property
    def next_step(self) -> Step | None:
        """The step this job waits for, or None when the worker has nothing left to do for it."""
        if self.status == Status.QUEUED:
            return Step.SUBMIT
        if self.status in AT_RUNWAY_STATUSES:
            return Step.STORE_VIDEO if self.video_pending else Step.POLL
        if self.is_final and self.cancel_pending:
            # Also how a deleted job goes: its files and row follow the task at Runway.
            return Step.CANCEL_AT_RUNWAY
        if self.status == Status.SUCCEEDED and self.poster_pending:
            return Step.MAKE_POSTER
        return None

    def move_to(self, status: Status) -> None:
        """Set a new status if TRANSITIONS allows the move; nothing is saved. A move that ends the
        job is recorded as a JobEvent by the write that saves it (save(), or save_claimed())."""
        if status != self.status and (self.status, status) not in ALLOWED_MOVES:
            raise InvalidTransition(f"Video #{self.pk} cannot go from {self.status} to {status}.")
        if status in FINAL_STATUSES and self.status not in FINAL_STATUSES:
            self.ending_unrecorded = True
        self.status = status

    @property
    def step_lost_after(self) -> timedelta:
        """How long the step this job waits for may run before it counts as lost with its worker."""
        return STORE_STEP_LOST_AFTER if self.video_pending else STEP_LOST_AFTER

    @property
    def has_image(self) -> bool:
        return bool(self.image or self.image_url)

    # -- the request's settings, kept in `params` ---------------------------------------------------

    def _text_param(self, name: str) -> str:
        value = self.params.get(name)
        return value if isinstance(value, str) else ""

    def _number_param(self, name: str) -> int | None:
        value = self.params.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _set_param(self, name: str, value: object) -> None:
        if value is None or value == "":
            self.params.pop(name, None)
        else:
            self.params[name] = value

    @property
    def ratio(self) -> str:
        """The ratio sent ("" when the model takes none, or it was left to Runway)."""
        return self._text_param("ratio")

    @ratio.setter
    def ratio(self, value: str | None) -> None:
        self._set_param("ratio", value)

    @property
    def duration(self) -> int | None:
        return self._number_param("duration")

    @duration.setter
    def duration(self, value: int | None) -> None:
        self._set_param("duration", value)

    @property
    def seed(self) -> int | None:
        return self._number_param("seed")

    @seed.setter
    def seed(self, value: int | None) -> None:
        self._set_param("seed", value)

    @property
    def resolution(self) -> str:
        return self._text_param("resolution")

    @property
    def audio(self) -> bool | None:
        """Sound on (True) or off (False) where the model has the choice; None: the model's default."""
        value = self.params.get("audio")
        return value if isinstance(value, bool) else None

    @property
    def negative_prompt(self) -> str:
        return self._text_param("negativePrompt")

    @property
    def model_label(self) -> str:
        """The model as people know it ("Gen-4.5", "Veo 3.1 Fast"), not its API id."""
        return catalog.label_for(self.model)

    @property
    def source_label(self) -> str:
        labels = {
            catalog.IMAGE_TO_VIDEO: "from an image",
            catalog.VIDEO_TO_VIDEO: "from a clip",
            catalog.VIDEO_UPSCALE: "upscaled",
            catalog.CHARACTER_PERFORMANCE: "a character driven by a performance",
        }
        return labels.get(self.endpoint, "from text")

    @property
    def image_url_host(self) -> str:
        """The host of the image URL a job started from (shown, never loaded: the page's policy
        loads images from this site only, and a stranger's server would learn who looked)."""
        try:
            return urlsplit(self.image_url).hostname or ""
        except ValueError:
            return ""


class JobEvent(models.Model):
    """A job's ending, written in the same transaction as its final status: the one place that
    knows a job ended, whichever of the worker's steps, the sweep, a cancel or creation ended it.

    Once the write commits, the `job_ended` signal (videos/events.py) is sent with the event: the
    API's webhooks (api/webhooks.py) listen there, and make up later for a signal a process did
    not live to send, from these rows.
    """

    generation = models.ForeignKey(
        VideoGeneration, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    generation_number = models.PositiveBigIntegerField(help_text="The job's id, kept when the job is deleted.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    mailed_at = models.DateTimeField(
        null=True, blank=True, help_text="When its owner, who asked to be told, was emailed that it ended."
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Video #{self.generation_number} ended {self.status}"


class CreditBalance(models.Model):
    """The Runway account's credit balance as the worker last read it: one row, which pages read
    instead of asking Runway (beat refreshes it every RUNWAY_CREDITS_REFRESH seconds)."""

    ONLY = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=ONLY, editable=False)
    credits = models.IntegerField(null=True, blank=True, help_text="1 credit = 1 US cent; empty until Runway said.")
    fetched_at = models.DateTimeField(null=True, blank=True, help_text="When Runway gave that figure.")
    checked_at = models.DateTimeField(null=True, blank=True, help_text="When Runway was last asked, answering or not.")
    last_error = models.TextField(blank=True, help_text="Why the last asking failed; empty after an answer.")
    requested_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a page last asked the worker for a fresh figure (at most once an interval).",
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="one_credit_balance")]

    def __str__(self) -> str:
        return f"Runway credits: {self.credits if self.credits is not None else 'unknown'}"


class Alert(models.Model):
    """Whether an alert is raised now: its email goes out when it becomes so, once per crossing of its
    threshold, never again while it stays raised (videos/services/alerts.py)."""

    name = models.CharField(max_length=100, unique=True, help_text="What is watched, e.g. credits_low.")
    raised = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True, help_text="When it was last raised or cleared.")

    def __str__(self) -> str:
        return f"{self.name}: {'raised' if self.raised else 'clear'}"


class LastSweep(models.Model):
    """When beat's sweep last ran to the end and how many jobs it put back to work: one row, which
    /healthz reads. The sweep runs on a worker, sent by beat through the broker, so a recent one
    shows that all three work together."""

    ONLY = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=ONLY, editable=False)
    ran_at = models.DateTimeField(help_text="When the last sweep that went to the end ran.")
    recovered = models.PositiveIntegerField(default=0, help_text="Jobs whose lost work that sweep sent again.")
    queue = models.CharField(
        max_length=200, blank=True, help_text="The queue of the worker that ran it: where this installation's work is."
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="one_last_sweep")]

    def __str__(self) -> str:
        return f"Last sweep: {self.ran_at:%Y-%m-%d %H:%M:%S} UTC, {self.recovered} recovered"


class StrayMessages(models.Model):
    """Task messages that this installation's workers received from another installation, through a
    queue the two share (videos/services/installation.py): one row, counted, which /healthz reports.
    Each was left alone, for its own installation's sweep to send again."""

    ONLY = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=ONLY, editable=False)
    count = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(help_text="When the first one came.")
    last_at = models.DateTimeField(help_text="When the last one came.")
    last_task = models.CharField(max_length=200, help_text="The task of the last one.")
    last_database = models.CharField(max_length=300, help_text="The database of the installation that sent it.")
    queue = models.CharField(max_length=200, help_text="The queue it came through.")

    class Meta:
        verbose_name_plural = "stray messages"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="one_stray_messages_count")]

    def __str__(self) -> str:
        return f"{self.count} message(s) from another installation, the last at {self.last_at:%Y-%m-%d %H:%M:%S} UTC"


class SpendKind(models.TextChoices):
    """What an entry of the spend ledger records. Each job has at most one entry of each kind."""

    RESERVED = "reserved", "Reserved (our estimate, when the job was made)"
    ESTIMATE = "estimate", "Runway's estimate (the create was accepted)"
    FINAL = "final", "Final (what Runway charged, or the estimate kept)"


class SpendQuerySet(models.QuerySet["SpendEntry"]):
    """The ledger's questions, each answered here once. The limits read these, never the jobs."""

    def of(self, user_id: int) -> "SpendQuerySet":
        return self.filter(user_id=user_id)

    def since(self, start: datetime) -> "SpendQuerySet":
        """Entries of jobs made from `start` on: every charge counts in the month its job was made."""
        return self.filter(job_created_at__gte=start)

    def generations(self) -> "SpendQuerySet":
        """One entry per job made (its reservation): what the daily limit counts."""
        return self.filter(kind=SpendKind.RESERVED)

    def credits(self) -> int:
        """The sum of the entries: estimates of unfinished jobs plus what finished ones cost."""
        return int(self.aggregate(total=Sum("credits"))["total"] or 0)


class SpendEntry(models.Model):
    """One line of the append-only spend ledger (1 credit = 1 US cent).

    A job's entries add up to what it costs: its reservation (our catalog estimate, written with the
    job, so the limits see it at once), then the change to Runway's estimate when Runway accepts the
    create, then the change to Runway's final figure when the task ends (a correction, negative
    where Runway billed less; the reservation given back when nothing reached Runway). The entries
    stay when the job or the user is deleted, so deleting cannot reset a limit. Nothing in the
    product updates or deletes one; the admin shows them read-only.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="spend_entries"
    )
    username = models.CharField(max_length=150, help_text="A copy, kept when the user is deleted.")
    generation = models.ForeignKey(
        VideoGeneration, on_delete=models.SET_NULL, null=True, blank=True, related_name="spend_entries"
    )
    generation_number = models.PositiveBigIntegerField(help_text="The job's id, kept when the job is deleted.")
    job_created_at = models.DateTimeField(help_text="When the job was made: the day and month its spend counts in.")
    model = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=SpendKind.choices)
    credits = models.IntegerField(help_text="What this entry adds to the job's cost (negative: a correction down).")
    runway_credits = models.IntegerField(
        null=True, blank=True, help_text="Runway's own figure in the answer this entry records; empty if none."
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = SpendQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "spend entries"
        indexes = [models.Index(fields=["user", "job_created_at"], name="videos_spend_by_user")]
        constraints = [
            models.UniqueConstraint(fields=["generation_number", "kind"], name="one_spend_entry_per_job_and_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.credits:+} credits for video #{self.generation_number}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValueError("The spend ledger is append-only: an entry is never changed.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError("The spend ledger is append-only: an entry is never deleted.")


class UserBudget(models.Model):
    """A user's own monthly credit budget, set by staff; without one, RUNWAY_MONTHLY_BUDGET_PER_USER."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="video_budget"
    )
    monthly_credits = models.PositiveIntegerField(
        help_text="Credits this user may spend a calendar month (UTC); 1 credit = 1 US cent. 0 stops them generating."
    )

    def __str__(self) -> str:
        return f"{self.monthly_credits} credits a month"


class Collection(models.Model):
    """A user's named set of their own videos (a video may be in several), which they may share with
    their groups: its page, and its done videos with it (videos/services/collections.py)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="video_collections")
    name = models.CharField(max_length=100)
    shared_with_groups = models.BooleanField(
        default=False, help_text="Its page and its done videos are seen by the members of its owner's groups."
    )
    videos: "models.ManyToManyField[VideoGeneration, CollectionItem]" = models.ManyToManyField(
        VideoGeneration, through="CollectionItem", related_name="collections"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="one_collection_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class CollectionItem(models.Model):
    """A video in a collection, and when it was put there."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="items")
    generation = models.ForeignKey(VideoGeneration, on_delete=models.CASCADE, related_name="collection_items")
    added_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-added_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["collection", "generation"], name="a_video_once_per_collection")]

    def __str__(self) -> str:
        return f"Video #{self.generation_id} in collection #{self.collection_id}"


class GroupPolicy(models.Model):
    """A group's rules for its members' videos, set by staff on the group's admin page, on top of each
    member's own limits: a budget the members share, the models they may use, the longest video,
    and how many may be in progress at once among them. A member of several groups is held to
    every one's rules (services/creation.py checks them under the members' group locks)."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, primary_key=True, related_name="video_policy")
    monthly_credits = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Credits the members may spend together a calendar month (UTC), on top of each one's own "
        "budget; 1 credit = 1 US cent. Empty: no shared budget. 0 stops them generating.",
    )
    allowed_models = models.JSONField(
        default=list, blank=True, help_text="The models the members may use (API ids). Empty: every model."
    )
    max_duration = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The longest video a member may make, in seconds (an edit counts its clip's length). Empty: "
        "the model's longest.",
    )
    max_active = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Videos the members may have in progress at once, together. Empty: no cap but each one's own.",
    )

    class Meta:
        verbose_name = "group video rules"
        verbose_name_plural = "group video rules"

    def __str__(self) -> str:
        return f"Video rules of {self.group}"


class UsageDay(models.Model):
    """Credits spent on one day (UTC) on one model: Runway's own figure (POST /v1/organization/usage,
    net of that day's refunds) beside what our spend ledger says of the jobs made that day, as the
    last reconciliation found them (videos/services/usage.py). Staff see where the two differ."""

    day = models.DateField()
    model = models.CharField(max_length=64)
    runway_credits = models.IntegerField(
        null=True, blank=True, help_text="What Runway says was spent; empty: Runway reported no use of it that day."
    )
    ledger_credits = models.IntegerField(default=0, help_text="What our spend ledger says the jobs made that day cost.")
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "model"]
        verbose_name = "day's usage"
        verbose_name_plural = "days' usage against Runway's"
        constraints = [models.UniqueConstraint(fields=["day", "model"], name="one_usage_row_per_day_and_model")]

    def __str__(self) -> str:
        return f"{self.day} {self.model}: ledger {self.ledger_credits}, Runway {self.runway_credits}"

    @property
    def difference(self) -> int:
        """Runway's figure less ours: above 0, Runway billed more than the ledger says."""
        return (self.runway_credits or 0) - self.ledger_credits


class UsageCheck(models.Model):
    """The last reconciliation against Runway's usage: when, and what went wrong if it failed (one row)."""

    ONLY = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=ONLY, editable=False)
    checked_at = models.DateTimeField()
    error = models.TextField(blank=True, help_text="Why Runway's figures could not be read; empty after a reading.")
    start = models.DateField(null=True, blank=True, help_text="The first day the last reading covered.")

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="one_usage_check")]

    def __str__(self) -> str:
        failed = f" (failed: {self.error})" if self.error else ""
        return f"Usage checked at {self.checked_at:%Y-%m-%d %H:%M} UTC{failed}"
