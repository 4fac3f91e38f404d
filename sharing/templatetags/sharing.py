"""`{% share_links generation %}`: the owner's share links on a video's page, and the form for a new one."""

from typing import Any

from django import template
from django.utils import timezone

from sharing import services
from sharing.forms import ShareLinkForm

register = template.Library()


@register.inclusion_tag("sharing/_links.html", takes_context=True)
def share_links(context: template.Context, generation: Any) -> dict[str, Any]:
    """Nothing for anyone but the video's owner (staff reading it use the admin)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or generation.owner_id != user.pk:
        return {"shown": False}
    return {
        "shown": True,
        "generation": generation,
        "shareable": services.video_shareable(generation),
        "links": list(services.share_links_of(user=user, video=generation)),
        "form": ShareLinkForm(),
        "now": timezone.now(),
        "csrf_token": context.get("csrf_token"),
    }
