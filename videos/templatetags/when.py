"""Times as the pages show them: one format everywhere, in the user's time zone (the `tz` cookie,
runway_project/timezones.py), with the exact instant in UTC for machines."""

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

SHORT = "M j, H:i"  # Nov 29, 14:05
LONG = "M j, Y, H:i T"  # Nov 29, 2026, 14:05 CET


@register.filter
def when(value: datetime | None) -> SafeString | str:
    """`<time datetime="2026-11-29T13:05:00+00:00" title="Nov 29, 2026, 14:05 CET">Nov 29, 14:05</time>`."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.astimezone(UTC).isoformat(),
        date_format(local, LONG),
        date_format(local, SHORT),
    )


@register.filter
def zone_name(value: datetime | None) -> str:
    """The time zone a time is shown in, as its abbreviation (`CET`, `UTC`) for that instant."""
    return "" if value is None else date_format(timezone.localtime(value), "T")
