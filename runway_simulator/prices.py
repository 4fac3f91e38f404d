"""What a task costs, in credits per second of the video it makes: the simulator's own price table.

Runway publishes prices for its own models and Google's (runway-api.md): those are PUBLISHED. For
the partner models no official table was found, so each has a figure the simulator made up
(INVENTED), of the same order as the published ones: a stand-in for billing arithmetic, never a
statement of what Runway charges. The product must take its own prices from Runway's answers (a
task's `estimatedCost` and `cost`), not from here.

A task is billed for the seconds it asks for: its `duration` when that is a number; without one (or
with "auto") the longest the contract lets the model make (Runway bills "auto" at the maximum up
front), or DEFAULT_SECONDS when the contract states no limit. A video_to_video, video_upscale or
character_performance task without a duration is billed for CLIP_SECONDS: its output is as long as
its input clip, which the simulator never reads.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Price:
    per_second: int
    without_audio: int | None = None  # per second when the body says "audio": false
    output_formats: bool = False  # whether a non-mp4 outputFormat costs more (OUTPUT_FORMAT_SURCHARGES)


PUBLISHED = {
    "gen4_turbo": Price(5),
    "gen4.5": Price(12, output_formats=True),
    "veo3.1": Price(40, without_audio=20),
    "veo3.1_fast": Price(15, without_audio=10),
}
# The simulator's invention: no official price is published for these.
INVENTED = {
    "aleph2": Price(20, output_formats=True),
    "kling_4": Price(20),
    "kling3.0_pro": Price(18),
    "kling3.0_standard": Price(12),
    "kling3.0_4k": Price(30),
    "klingO3_pro": Price(18),
    "klingO3_standard": Price(12),
    "klingO3_4k": Price(30),
    "kling2.5_turbo_pro": Price(14),
    "hailuo3": Price(16),
    "h3_max": Price(22),
    "happyhorse_1_0": Price(10),
    "seedance2": Price(18),
    "seedance2_fast": Price(12),
    "seedance2_mini": Price(10),
    "seedance2_5": Price(24),
    "gemini_omni_flash": Price(15),
    "gemini_omni_flash_1.1": Price(18),
    "grok_imagine_1_5": Price(14),
    "grok_imagine_1_5_lite": Price(10),
    "wan3": Price(12),
    "wan3_prime": Price(20),
    "magnific_video_upscaler_creative": Price(25),
    "enhance_frame_rate": Price(10),
    "act_two": Price(10),
}
PRICES = {**PUBLISHED, **INVENTED}

# Per second, on top of the model's price (Gen-4.5's and Aleph's docstrings in the SDK): ProRes and
# PNG frames +5, every other format but mp4 (the 10-bit and deeper ones) +20. (Runway's +40 for
# outputs above 4 megapixels is not simulated.)
OUTPUT_FORMAT_SURCHARGES = {"mp4": 0, "prores": 5, "png_sequence": 5}
OTHER_FORMAT_SURCHARGE = 20

DEFAULT_SECONDS = 10
CLIP_SECONDS = 5
CLIP_ENDPOINTS = ("video_to_video", "video_upscale", "character_performance")


def estimated_credits(endpoint: str, body: dict[str, Any], schema: dict[str, Any]) -> int:
    """The most a valid create of `body` (checked against `schema`, its model's) may charge."""
    price = PRICES[body["model"]]
    per_second = price.per_second
    if price.without_audio is not None and body.get("audio") is False:
        per_second = price.without_audio
    if price.output_formats:
        output_format = body.get("outputFormat", "mp4")
        per_second += OUTPUT_FORMAT_SURCHARGES.get(output_format, OTHER_FORMAT_SURCHARGE)
    return per_second * billed_seconds(endpoint, body, schema)


def billed_seconds(endpoint: str, body: dict[str, Any], schema: dict[str, Any]) -> int:
    duration = body.get("duration")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return int(duration)
    if endpoint in CLIP_ENDPOINTS:
        return CLIP_SECONDS
    longest = longest_duration(schema["properties"].get("duration", {}))
    return DEFAULT_SECONDS if longest is None else longest


def longest_duration(schema: dict[str, Any]) -> int | None:
    """The longest duration a schema allows: its largest number in an enum or its maximum; None if unbounded."""
    bounds = [int(value) for value in schema.get("enum", []) if isinstance(value, int | float)]
    if "maximum" in schema:
        bounds.append(int(schema["maximum"]))
    bounds += [b for branch in schema.get("anyOf", []) if (b := longest_duration(branch)) is not None]
    return max(bounds, default=None)
