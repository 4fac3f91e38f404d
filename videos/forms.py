import re
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from videos import catalog
from videos.models import Sharing, VideoGeneration
from videos.services import selectors


def _choices(values: list[str]) -> list[tuple[str, str]]:
    return [("", "Default"), *((v, v) for v in values)]


class GenerationForm(forms.Form):
    """What a user asks for. The rules per model live in the catalog, checked by the services."""

    # No maxlength: the browser would cut a pasted prompt without a word. The page counts as Runway
    # does (UTF-16 code units) and the catalog refuses a long one with its length. Not required
    # here: whether a model needs a prompt is the catalog's rule (Gen-4 Turbo from an image does not).
    prompt = forms.CharField(
        label="Describe your video",
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "placeholder": "A serene mountain landscape at sunset",
                "aria-describedby": "prompt-count prompt-keys",
            }
        ),
    )
    # Every model, grouped by its maker; the page's script shows only the chosen one's fields.
    model = forms.ChoiceField(
        required=False,
        choices=[("", "Default"), *catalog.models_by_maker()],
        help_text="Default: Gen-4.5 from text, Gen-4 Turbo from an image.",
    )
    ratio = forms.ChoiceField(required=False, choices=_choices(list(catalog.ALL_RATIOS)))
    resolution = forms.ChoiceField(required=False, choices=_choices(list(catalog.ALL_RESOLUTIONS)))
    duration = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Default"), *((str(d), f"{d} s") for d in catalog.ALL_DURATIONS)],
    )
    seed = forms.IntegerField(required=False, min_value=0, max_value=catalog.SEED_MAX)
    audio = forms.TypedChoiceField(
        required=False,
        label="Sound",
        coerce=lambda value: value == "on",
        empty_value=None,
        choices=[("", "Default (with sound)"), ("on", "With sound"), ("off", "Without sound")],
    )
    # No maxlength, as for the prompt: the catalog refuses a long one with its length.
    negative_prompt = forms.CharField(required=False, label="Avoid (negative prompt)")
    image = forms.FileField(required=False, label="First frame (JPEG, PNG or WebP)")
    last_image = forms.FileField(required=False, label="Last frame (for the models that take one)")
    # A clip makes the request an edit of it (video to video); checked by videos/clips.py.
    video = forms.FileField(required=False, label="…or a clip to edit (MP4, MOV or WebM)")
    # A performance makes the request Act-Two's: the image or clip above is the character it drives.
    performance = forms.FileField(required=False, label="A performance to drive the character (a clip of a face)")
    body_control = forms.TypedChoiceField(
        required=False,
        label="Body",
        coerce=lambda value: value == "on",
        empty_value=None,
        choices=[("", "Default"), ("on", "The body follows the performance"), ("off", "The face only")],
    )
    expression_intensity = forms.TypedChoiceField(
        required=False,
        label="Expression intensity",
        coerce=int,
        empty_value=None,
        choices=[("", "Default"), *((str(i), str(i)) for i in range(1, 6))],
    )
    image_url = forms.CharField(
        required=False, label="…or an image URL (https)", max_length=catalog.IMAGE_URL_MAX_LENGTH
    )
    # Edit & re-run: the earlier job whose stored image this request reuses (a checkbox the
    # template renders, ticked; unticked, nothing is sent and the image is not used).
    from_generation = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    # One per page load: posting the same form twice (a double click, a re-post) makes one job.
    token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4, required=False)
    # Offered only when mail can reach the user (EMAIL_URL, and an address on their account).
    notify = forms.BooleanField(required=False, label="Email me when it is done")

    def __init__(self, *args: Any, owner: User | None = None, reused: VideoGeneration | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.owner = owner
        # The job whose image the form offers again (Edit & re-run), checked for its owner.
        self.reused = reused
        if not (settings.EMAIL_CONFIGURED and owner is not None and owner.email):
            del self.fields["notify"]
        else:
            self.fields["notify"].label = f"Email me at {owner.email} when it is done"

    @property
    def notify_wanted(self) -> bool:
        """Whether the valid form asks for an email when the job ends (never when it could not be sent)."""
        return bool(self.cleaned_data.get("notify"))

    def clean_from_generation(self) -> int | None:
        pk: int | None = self.cleaned_data.get("from_generation")
        if pk is None:
            self.reused = None
            return None
        # Only the image or clip of a job the user may see (their own, or one shared with them):
        # anyone else's answers as if it did not exist.
        found = (
            VideoGeneration.objects.visible_to(self.owner).filter(pk=pk).exclude(image="", clip="").first()
            if self.owner is not None
            else None
        )
        # A file gone from storage is as unavailable as a job gone (and must not fail the request).
        stored = (found.image or found.clip) if found is not None else None
        self.reused = found if stored and stored.storage.exists(stored.name) else None
        return pk

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("from_generation") and self.reused is None:
            # Said next to the image field, where the user can choose a file instead.
            self.add_error("image", "The earlier video's image or clip is no longer available: choose a file.")
        if cleaned.get("image") and cleaned.get("image_url"):
            self.add_error("image_url", "Give an image file or an image URL, not both.")
        return cleaned

    def to_request(self) -> catalog.VideoRequest:
        """The valid form's request; an empty choice means the default.

        A new file or URL wins over a reused image or clip. The caller closes the request's files."""
        data = self.cleaned_data
        image, video = self._files(_given(data["image"]), _given(data["video"]))
        return catalog.VideoRequest(
            prompt=data["prompt"],
            model=_given(data["model"]),
            ratio=_given(data["ratio"]),
            duration=data["duration"],
            seed=data["seed"],
            image=image,
            image_url=data["image_url"],
            video=video,
            performance=_given(data["performance"]),
            last_image=_given(data["last_image"]),
            resolution=_given(data["resolution"]),
            audio=data["audio"],
            negative_prompt=data["negative_prompt"],
            body_control=data["body_control"],
            expression_intensity=data["expression_intensity"],
        )

    def _files(self, image: Any, video: Any) -> tuple[Any, Any]:
        """The image and clip to send: those given, or else the earlier job's (Edit & re-run)."""
        if image is not None or video is not None or self.cleaned_data["image_url"] or self.reused is None:
            return image, video
        reused = _opened(self.reused.image or self.reused.clip)
        return (reused, None) if self.reused.image else (None, reused)


def _given(value: Any) -> Any:
    """A field's value, or None for an empty one: an empty choice is "the default"."""
    return value or None


def _opened(stored: FieldFile) -> "File[Any]":
    """A stored image or clip of an earlier job, open to be sent again."""
    return File(stored.open("rb"), name=str(stored.name).rsplit("/", 1)[-1])


def _on_off(value: object) -> str:
    """A yes-or-no setting as the form's choice names it ("" for the model's default)."""
    return {True: "on", False: "off"}.get(value, "") if isinstance(value, bool) else ""


def generation_form_initial(generation: VideoGeneration) -> dict[str, object]:
    """The Generate form filled in with an earlier job's request (Edit & re-run)."""
    return {
        "prompt": generation.prompt,
        "model": generation.model,
        "ratio": generation.ratio,
        "duration": generation.duration,
        "seed": generation.seed,
        "resolution": generation.resolution,
        "audio": _on_off(generation.audio),
        "negative_prompt": generation.negative_prompt,
        "body_control": _on_off(generation.params.get("bodyControl")),
        "expression_intensity": generation.params.get("expressionIntensity"),
        "image_url": generation.image_url,
        "from_generation": generation.pk if generation.image or generation.clip else None,
    }


class ShareForm(forms.Form):
    """Who else may see a done video: only its owner, their groups, or everyone (when allowed)."""

    shared_with = forms.ChoiceField(label="Who may see it", required=False, choices=Sharing.choices)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not settings.SHARE_WITH_EVERYONE:
            field = self.fields["shared_with"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [(value, label) for value, label in Sharing.choices if value != Sharing.EVERYONE]


# The date filter's presets: how many days back from the start of today (in the user's zone).
WHEN_PRESETS = {"today": 0, "7d": 6, "30d": 29}


class HistoryFilterForm(forms.Form):
    """The history's search and filters, from the query string. A value that does not parse is
    ignored (the filter is simply not applied), never an error page."""

    q = forms.CharField(required=False, max_length=200, label="Search descriptions")
    model = forms.ChoiceField(
        required=False,
        label="Model",
        choices=[("", "All models"), *((m, catalog.label_for(m)) for m in catalog.ALL_MODELS)],
    )
    status = forms.ChoiceField(required=False, choices=selectors.HISTORY_FILTERS, widget=forms.HiddenInput)
    when = forms.ChoiceField(
        required=False,
        label="Made",
        choices=[("", "Any time"), ("today", "Today"), ("7d", "Last 7 days"), ("30d", "Last 30 days")],
    )
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: the Generate form on the same page has a `model` field too.
        kwargs.setdefault("auto_id", "history-%s")
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def filters(self, *, now: datetime | None = None) -> dict[str, Any]:
        """The keyword arguments for selectors.generation_history; dates are days in the active time zone."""
        self.is_valid()
        data = self.cleaned_data  # only the fields that parsed
        now = timezone.localtime(now or timezone.now())
        since: date | None = data.get("since")
        until: date | None = data.get("until")
        when = data.get("when") or ""
        if when in WHEN_PRESETS:
            preset = now.date() - timedelta(days=WHEN_PRESETS[when])
            since = max(since, preset) if since else preset
        return {
            "search": data.get("q") or "",
            "model": data.get("model") or "",
            "status": data.get("status") or "",
            "since": _day_start(since),
            "before": _day_start(until + timedelta(days=1)) if until and until < date.max else None,
        }

    @property
    def dates_problem(self) -> str:
        """Why no day can match, when the From date is after the To date; "" otherwise."""
        self.is_valid()
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        if since and until and since > until:
            return (
                f"The From date ({since:%b %-d, %Y}) is after the To date ({until:%b %-d, %Y}): no day is in between."
            )
        return ""

    @property
    def is_filtered(self) -> bool:
        """Whether anything but the status narrows the history (the status has its own links)."""
        self.is_valid()
        return any(self.cleaned_data.get(name) for name in ("q", "model", "when", "since", "until"))


def _day_start(day: date | None) -> datetime | None:
    """Midnight of `day` in the active time zone; None for none, or a year no video was made in
    (which some zones could not even express in UTC)."""
    if day is None or not 1970 <= day.year <= 9000:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


# A job's number as the database keeps it (at most selectors.JOB_NUMBER_MAX, a bigint).
_JOB_NUMBER = re.compile(r"[1-9][0-9]{0,18}")


class StatusQueryForm(forms.Form):
    """The jobs one status request asks about: `?ids=3,8,12`, each a job's number, at most
    selectors.STATUS_IDS_MAX of them (the page asks about its live cards in groups of that many)."""

    ids = forms.CharField()

    def clean_ids(self) -> list[int]:
        given = self.cleaned_data["ids"].split(",")
        if len(given) > selectors.STATUS_IDS_MAX:
            raise forms.ValidationError(
                f"Ask about at most {selectors.STATUS_IDS_MAX} videos at once, not {len(given)}.", code="too_many"
            )
        for part in given:
            if not _JOB_NUMBER.fullmatch(part) or int(part) > selectors.JOB_NUMBER_MAX:
                raise forms.ValidationError(f"“{part[:20]}” is not a video's number.", code="invalid")
        return sorted({int(part) for part in given})
