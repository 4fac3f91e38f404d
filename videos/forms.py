from django import forms

from videos import catalog


class GenerationForm(forms.Form):
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
