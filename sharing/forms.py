from django import forms

from sharing.services import day_choices


def _label(days: int) -> str:
    return f"{days} day{'s' if days != 1 else ''}"


class ShareLinkForm(forms.Form):
    """How long a new link works, up to SHARE_LINK_MAX_DAYS."""

    days = forms.TypedChoiceField(label="Works for", coerce=int, choices=())

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        choices = day_choices()
        field = self.fields["days"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [(days, _label(days)) for days in choices]
        field.initial = 7 if 7 in choices else choices[0]
