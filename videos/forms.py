import uuid

from django import forms

from videos import catalog


def _choices(values: list[str]) -> list[tuple[str, str]]:
    return [("", "Default"), *((v, v) for v in values)]


class GenerationForm(forms.Form):
    """What a user asks for. The rules per model live in the catalog, checked by the services."""

    prompt = forms.CharField(
        label="Describe your video",
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "placeholder": "A serene mountain landscape at sunset",
                "maxlength": catalog.PROMPT_MAX_UTF16,
            }
        ),
        error_messages={"required": "Please describe the video: the description cannot be empty."},
    )
    model = forms.ChoiceField(
        required=False,
        choices=[("", "Default"), *((m, catalog.label_for(m)) for m in catalog.MODELS)],
        help_text="Default: Gen-4.5 from text, Gen-4 Turbo from an image.",
    )
    ratio = forms.ChoiceField(required=False, choices=_choices(list(dict.fromkeys(catalog.ALL_RATIOS))))
    duration = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Default"), *((str(d), f"{d} s") for d in catalog.ALL_DURATIONS)],
    )
    seed = forms.IntegerField(required=False, min_value=0, max_value=catalog.SEED_MAX)
    image = forms.FileField(required=False, label="First frame (JPEG, PNG or WebP)")
    image_url = forms.CharField(
        required=False, label="…or an image URL (https)", max_length=catalog.IMAGE_URL_MAX_LENGTH
    )
    # One per page load: posting the same form twice (a double click, a re-post) makes one job.
    token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4, required=False)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("image") and cleaned.get("image_url"):
            self.add_error("image_url", "Give an image file or an image URL, not both.")
        return cleaned

    def to_request(self) -> catalog.VideoRequest:
        """The valid form's request; an empty choice means the default."""
        data = self.cleaned_data
        return catalog.VideoRequest(
            prompt=data["prompt"],
            model=data["model"] or None,
            ratio=data["ratio"] or None,
            duration=data["duration"],
            seed=data["seed"],
            image=data["image"] or None,
            image_url=data["image_url"],
        )
