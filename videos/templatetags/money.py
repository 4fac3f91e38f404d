"""Credits as the pages show them (1 credit = 1 US cent), written by the spend ledger's functions."""

from django import template

from videos.services.ledger import credits_text, dollars_text

register = template.Library()


@register.filter
def usd(credits: int | None) -> str:
    """`12345` → `US$123.45`; nothing for a missing figure."""
    return "" if credits is None else dollars_text(credits)


@register.filter
def credits(amount: int | None) -> str:
    """`1234` → `1,234 credits (US$12.34)`; nothing for a missing figure."""
    return "" if amount is None else credits_text(amount)
