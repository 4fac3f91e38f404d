"""A one-time token for each button that makes a job (re-run, try again): the same token posted
twice, by a double click or a replayed request, makes one job (the form's token does the same)."""

import uuid

from django import template

register = template.Library()


@register.simple_tag
def one_time_token() -> str:
    return str(uuid.uuid4())
