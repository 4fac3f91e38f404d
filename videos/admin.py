import csv
from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.defaultfilters import truncatechars
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from videos import catalog, serving
from videos.models import (
    Alert,
    GenerationQuerySet,
    GroupPolicy,
    SpendEntry,
    SpendKind,
    Status,
    UsageCheck,
    UsageDay,
    UserBudget,
    VideoGeneration,
)
from videos.services import actions, queue, usage

# The jobs' list needs the width of a 1280-pixel screen; every admin page has its breadcrumbs and
# home page for getting around, so not the navigation column beside each list too.
admin.site.enable_nav_sidebar = False


class WorkFilter(admin.SimpleListFilter):
    """Jobs by the work the worker has left for them, as the worker and the sweep see it."""

    title = "work left"
    parameter_name = "work"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("waiting", "A step to come"),
            ("due", "Due now"),
            ("overdue", "Overdue (as /healthz counts)"),
            ("none", "Nothing left"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[VideoGeneration]) -> QuerySet[VideoGeneration]:
        jobs = cast(GenerationQuerySet, queryset)  # the model's own manager made it
        if self.value() == "waiting":
            return jobs.with_next_step()
        if self.value() == "due":
            return jobs.due(timezone.now())
        if self.value() == "overdue":
            # The jobs /healthz counts, so that its alarm leads here; a job due a little while ago
            # (the sweep's business) is under "Due now".
            return jobs.long_overdue(timezone.now())
        if self.value() == "none":
            return jobs.exclude(pk__in=jobs.with_next_step().values("pk"))
        return queryset


class ModelFilter(admin.SimpleListFilter):
    """Jobs by model, each by the name people know it by."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(model, catalog.label_for(model)) for model in catalog.ALL_MODELS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(model=self.value()) if self.value() else queryset


@admin.register(VideoGeneration)
class VideoGenerationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    # Few columns, so that the prompt has room on a 1280-pixel screen; the rest is on each job's page.
    list_display = ("id", "owner", "short_prompt", "model_name", "status_label", "cost", "created_at")
    list_filter = ("status", WorkFilter, ModelFilter, "endpoint", "origin", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("prompt", "runway_task_id", "=public_id")
    list_select_related = ("owner",)
    # Fifty rows render in about half the time of Django's hundred, and a page of thousands of jobs
    # needs no exact total on every load (the filters' counts say what matters).
    list_per_page = 50
    show_full_result_count = False
    actions = ("poll_now", "cancel", "upscale", "delete_selected")
    readonly_fields = (
        "public_id",
        "origin",
        "notify_when_done",
        "endpoint",
        "model",
        "ratio",
        "duration",
        "seed",
        "params",
        "source",
        "runway_task_id",
        "status",
        "progress",
        "output_url",
        "video_link",
        "player",
        "failure_code",
        "message",
        "last_error",
        "poll_count",
        "error_count",
        "step",
        "next_step",
        "video_pending",
        "cancel_pending",
        "delete_pending",
        "poster_pending",
        "next_check_at",
        "created_at",
        "submitted_at",
        "finished_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("owner", "prompt", "image", "image_url", "clip", "clip_seconds")}),
        (
            "Request",
            {
                "fields": (
                    "origin",
                    "public_id",
                    "endpoint",
                    "model",
                    "ratio",
                    "duration",
                    "seed",
                    "params",
                    "source",
                    "notify_when_done",
                )
            },
        ),
        (
            "Runway",
            {
                "fields": (
                    "runway_task_id",
                    "status",
                    "progress",
                    "player",
                    "video_link",
                    "output_url",
                    "failure_code",
                    "message",
                    "last_error",
                )
            },
        ),
        (
            "Bookkeeping",
            {
                "fields": (
                    "poll_count",
                    "error_count",
                    "step",
                    "next_step",
                    "video_pending",
                    "poster_pending",
                    "cancel_pending",
                    "delete_pending",
                    "next_check_at",
                )
            },
        ),
        ("Times", {"fields": ("created_at", "submitted_at", "finished_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[VideoGeneration]:
        # Each job's figures from the spend ledger, in the page's one query.
        jobs: QuerySet[VideoGeneration] = super().get_queryset(request)
        return jobs.annotate(
            ledger_estimate=_job_credits(exclude_final=True),
            ledger_total=_job_credits(exclude_final=False),
            ledger_settled=Subquery(
                SpendEntry.objects.filter(generation_number=OuterRef("pk"), kind=SpendKind.FINAL).values("kind")[:1]
            ),
        )

    @admin.display(description="Credits")
    def cost(self, obj: VideoGeneration) -> str:
        """What Runway charged once the job has ended; "about" the estimate until then (the ledger's)."""
        if getattr(obj, "ledger_settled", None):
            return f"{getattr(obj, 'ledger_total', 0) or 0:,}"
        estimate = getattr(obj, "ledger_estimate", None)
        return "—" if estimate is None else f"about {estimate:,}"

    @admin.display(description="Model", ordering="model")
    def model_name(self, obj: VideoGeneration) -> str:
        return obj.model_label

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Jobs are created through the dashboard or the command, which validate and enqueue them.
        return False

    def has_change_permission(self, request: HttpRequest, obj: VideoGeneration | None = None) -> bool:
        # Every field is read-only, so no Save buttons; staff still view the page (view permission)
        # and delete through the service (delete permission).
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: VideoGeneration | None = None) -> tuple[str, ...]:
        # The request itself is what was paid for: staff can read it, not rewrite it.
        return (*self.readonly_fields, "owner", "prompt", "image", "image_url", "clip", "clip_seconds")

    def delete_model(self, request: HttpRequest, obj: VideoGeneration) -> None:
        # Through the service, so our files go too and the task is deleted at Runway (by the worker:
        # until then the row stays here, "Deleting…").
        self._apply(request, VideoGeneration.objects.filter(pk=obj.pk), actions.generation_delete, "deleted")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[VideoGeneration]) -> None:
        self._apply(request, queryset, actions.generation_delete, "deleted")

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: int) -> HttpResponse:
        # delete_model has said what became of it (deleted, or why not): not a second message.
        return redirect("admin:videos_videogeneration_changelist")

    @admin.action(description="Delete selected videos", permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[VideoGeneration]) -> HttpResponse | None:
        """Django's own confirmation page first; once confirmed, one message of what was done (Django's
        action would add its own "Successfully deleted", even for the videos that were not)."""
        if not request.POST.get("post"):
            return cast(HttpResponse | None, django_delete_selected(self, request, queryset))
        self.delete_queryset(request, queryset)
        return None

    @admin.display(description="Our copy")
    def player(self, obj: VideoGeneration) -> str:
        if not obj.video_file:
            return "—"
        if not _stored(obj):
            return serving.MISSING_MESSAGE
        return format_html(
            '<video controls preload="metadata" width="480" src="{}"></video>', reverse("videos:file", args=[obj.pk])
        )

    @admin.display(description="Video file")
    def video_link(self, obj: VideoGeneration) -> str:
        # Through the permission-checked view (staff may view every video), never MEDIA_URL.
        if not obj.video_file:
            return "—"
        if not _stored(obj):
            return f"{obj.video_file.name}: {serving.MISSING_MESSAGE}"
        return format_html('<a href="{}">{}</a>', reverse("videos:file", args=[obj.pk]), obj.video_file.name)

    @admin.display(description="Next step")
    def next_step(self, obj: VideoGeneration) -> str:
        step = obj.next_step
        if step is None:
            return "— (a step is running)" if not obj.is_final else "—"
        due = f", due {obj.next_check_at:%Y-%m-%d %H:%M:%S} UTC" if obj.next_check_at else ""
        return f"{step.value}{due}"

    @admin.display(description="Status", ordering="status")
    def status_label(self, obj: VideoGeneration) -> str:
        running = obj.status == Status.RUNNING
        return f"{obj.status_label} · {obj.progress}%" if running else obj.status_label

    @admin.display(description="Prompt")
    def short_prompt(self, obj: VideoGeneration) -> str:
        return truncatechars(obj.prompt, 60)

    @admin.action(description="Poll now")
    def poll_now(self, request: HttpRequest, queryset: QuerySet[VideoGeneration]) -> None:
        # Queued for the worker, never run here: the admin does not wait on Runway.
        for generation in queryset.order_by("pk"):
            try:
                queued = actions.generation_poll_now(generation_id=generation.pk)
            except actions.GenerationError as exc:
                self.message_user(request, f"#{generation.pk}: {exc}", messages.WARNING)
                continue
            when = f"in {queued.countdown:.0f} s" if queued.countdown >= 1 else "now"
            self.message_user(request, f"#{generation.pk}: {queued.step.value} queued, runs {when}.", messages.SUCCESS)
        self._warn_if_queue_down(request)

    @admin.action(description="Cancel")
    def cancel(self, request: HttpRequest, queryset: QuerySet[VideoGeneration]) -> None:
        self._apply(request, queryset, actions.generation_cancel, "cancelled")

    @admin.action(description="Upscale (a new video from each one's stored copy, billed to its owner)")
    def upscale(self, request: HttpRequest, queryset: QuerySet[VideoGeneration]) -> None:
        self._apply(request, queryset, actions.generation_upscale, "sent to be upscaled")

    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[VideoGeneration],
        action: Callable[..., Any],
        verb: str,
    ) -> None:
        done = 0
        for generation in queryset.order_by("pk"):
            try:
                action(generation_id=generation.pk)
            except actions.GenerationError as exc:
                self.message_user(request, f"#{generation.pk}: {exc}", messages.WARNING)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} video{'s' if done != 1 else ''} {verb}.", messages.SUCCESS)
        self._warn_if_queue_down(request)

    def _warn_if_queue_down(self, request: HttpRequest) -> None:
        if queue.queue_unreachable():
            self.message_user(request, queue.QUEUE_DOWN_MESSAGE, messages.WARNING)


def _stored(obj: VideoGeneration) -> bool:
    """Whether the job's stored video is still in storage (a file can go missing by hand)."""
    return bool(obj.video_file.name) and obj.video_file.storage.exists(obj.video_file.name)


def _job_credits(*, exclude_final: bool) -> Subquery:
    """The sum of a job's ledger entries (without its final one: the estimate), for an annotation."""
    entries = SpendEntry.objects.filter(generation_number=OuterRef("pk"))
    if exclude_final:
        entries = entries.exclude(kind=SpendKind.FINAL)
    summed = entries.order_by().values("generation_number").annotate(total=Sum("credits")).values("total")
    return Subquery(summed, output_field=IntegerField())


CSV_COLUMNS = (
    "created_at",
    "username",
    "user_id",
    "generation_number",
    "model",
    "kind",
    "credits",
    "runway_credits",
    "note",
    "job_created_at",
)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The alerts by email and whether each is raised now (services/alerts.py), read-only: a raised
    one is mailed again only after it has cleared (a user's budget ones, once a month)."""

    list_display = ("name", "raised", "changed_at")
    list_filter = ("raised",)
    search_fields = ("name",)
    ordering = ("-changed_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False


@admin.register(SpendEntry)
class SpendEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The spend ledger, read-only: entries are only ever appended, by the services."""

    list_display = ("created_at", "username", "generation_number", "model", "kind", "credits", "runway_credits", "note")
    list_filter = ("kind", "model", "username", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("username", "=generation_number")
    list_per_page = 100
    actions = ("export_csv",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SpendEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SpendEntry | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data and "cl" in response.context_data:
            # Totals of what the filters selected (all pages): per user, model or day, as filtered.
            totals = response.context_data["cl"].queryset.aggregate(
                credits=Sum("credits"), jobs=Count("generation_number", distinct=True)
            )
            credits = totals["credits"] or 0
            response.context_data["spend_totals"] = {
                "credits": credits,
                "dollars": f"US${credits / 100:,.2f}",
                "jobs": totals["jobs"],
            }
        return response

    @admin.action(description="Export the selected entries as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[SpendEntry]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="spend.csv"'
        writer = csv.writer(response)
        writer.writerow(CSV_COLUMNS)
        for row in queryset.order_by("created_at", "pk").values_list(*CSV_COLUMNS):
            writer.writerow([_csv_safe(value) for value in row])
        return response


def _csv_safe(value: object) -> object:
    """A cell a spreadsheet will not run as a formula (a username or note starting with = + - @)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class DifferenceFilter(admin.SimpleListFilter):
    title = "Runway's figure"
    parameter_name = "matches"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Differs"), ("yes", "Matches")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[UsageDay]) -> QuerySet[UsageDay]:
        matching = Q(runway_credits=F("ledger_credits")) | Q(runway_credits__isnull=True, ledger_credits=0)
        if self.value() == "no":
            return queryset.exclude(matching)
        if self.value() == "yes":
            return queryset.filter(matching)
        return queryset


class UsedModelFilter(ModelFilter):
    """The models of the usage rows by name (Runway's usage may name models the catalog has not)."""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        models = UsageDay.objects.order_by("model").values_list("model", flat=True).distinct()
        return [(model, catalog.label_for(model)) for model in models]


@admin.register(UsageDay)
class UsageDayAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Runway's figures of what was spent per day and model beside the ledger's (services/usage.py), read-only."""

    list_display = ("day", "model_name", "ledger", "runway", "difference_shown")
    list_filter = (DifferenceFilter, UsedModelFilter)
    date_hierarchy = "day"
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageDay | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UsageDay | None = None) -> bool:
        return False

    @admin.display(description="Model", ordering="model")
    def model_name(self, obj: UsageDay) -> str:
        return catalog.label_for(obj.model)

    @admin.display(description="Our ledger (credits)", ordering="ledger_credits")
    def ledger(self, obj: UsageDay) -> str:
        return f"{obj.ledger_credits:,}"

    @admin.display(description="Runway's (credits)", ordering="runway_credits")
    def runway(self, obj: UsageDay) -> str:
        return "none" if obj.runway_credits is None else f"{obj.runway_credits:,}"

    @admin.display(description="Difference (Runway − ours)")
    def difference_shown(self, obj: UsageDay) -> str:
        return "—" if not obj.difference else f"{obj.difference:+,}"

    def get_urls(self) -> list[URLPattern]:
        check = path("check/", self.admin_site.admin_view(self.check_now), name="videos_usageday_check")
        return [check, *super().get_urls()]

    def check_now(self, request: HttpRequest) -> HttpResponse:
        """Have the worker read Runway's figures now (the admin never waits on Runway)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if usage.usage_check_request():
            self.message_user(request, "The worker is reading Runway's figures: reload in a moment.", messages.SUCCESS)
        else:
            self.message_user(request, queue.QUEUE_DOWN_MESSAGE, messages.WARNING)
        return redirect("admin:videos_usageday_changelist")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data and "cl" in response.context_data:
            rows = response.context_data["cl"].queryset
            response.context_data["usage_differing"] = sum(1 for row in rows if row.difference)
            response.context_data["usage_check"] = UsageCheck.objects.filter(pk=UsageCheck.ONLY).first()
        return response


class UserBudgetInline(admin.StackedInline):  # type: ignore[type-arg]
    model = UserBudget
    can_delete = True
    verbose_name = "monthly video budget"
    verbose_name_plural = "monthly video budget (empty: RUNWAY_MONTHLY_BUDGET_PER_USER)"


class UserWithBudgetAdmin(UserAdmin):  # type: ignore[type-arg]
    inlines = (*UserAdmin.inlines, UserBudgetInline)


admin.site.unregister(User)
admin.site.register(User, UserWithBudgetAdmin)


class GroupPolicyForm(forms.ModelForm):  # type: ignore[type-arg]
    """The group's allowed models as boxes to tick, from the model table (videos/catalog.py)."""

    allowed_models = forms.MultipleChoiceField(
        required=False,
        choices=[(model, catalog.label_for(model)) for model in catalog.ALL_MODELS],
        widget=forms.CheckboxSelectMultiple,
        help_text="The models the members may use. None ticked: every model.",
    )

    class Meta:
        model = GroupPolicy
        fields = ("monthly_credits", "allowed_models", "max_duration", "max_active")


class GroupPolicyInline(admin.StackedInline):  # type: ignore[type-arg]
    model = GroupPolicy
    form = GroupPolicyForm
    can_delete = True
    verbose_name = "video rules"
    verbose_name_plural = "video rules (on top of each member's own limits; none: the members' own alone)"


class GroupWithRulesAdmin(GroupAdmin):
    inlines = (*GroupAdmin.inlines, GroupPolicyInline)


admin.site.unregister(Group)
admin.site.register(Group, GroupWithRulesAdmin)
