"""Credits as people read them: Runway bills in credits, and 1 credit is 1 US cent."""

from django import template

from videos.catalog import CENTS_PER_CREDIT

register = template.Library()


@register.filter
def usd(credits: int | None) -> str:
    """`60` → `US$0.60`; `12345` → `US$123.45`; nothing for a missing figure."""
    if credits is None:
        return ""
    return f"US${credits * CENTS_PER_CREDIT / 100:,.2f}"
