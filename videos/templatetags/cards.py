"""What a card (templates/videos/_generation.html) shows beyond the job's own fields: its place in
line and its version, from the one selector the status check uses too, wherever the card is drawn."""

from django import template

from videos.models import VideoGeneration
from videos.services import selectors

register = template.Library()


@register.simple_tag
def card_state(generation: VideoGeneration) -> selectors.CardState:
    return selectors.generation_card_state(generation=generation)
