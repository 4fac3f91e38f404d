from django import forms


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, label="What it is for", help_text="e.g. “nightly batch”")
    webhook_url = forms.CharField(
        max_length=2048, required=False, label="Webhook URL (optional)", help_text="Where each job's ending is sent."
    )
