"""The one table of Runway models: which endpoint takes which model, with which ratios and durations.

A change at Runway is a change here. The form, the management command, the services and the
simulator all check requests against this table.
"""

from dataclasses import dataclass

TEXT_TO_VIDEO = "text_to_video"
IMAGE_TO_VIDEO = "image_to_video"
ENDPOINTS = (TEXT_TO_VIDEO, IMAGE_TO_VIDEO)

PROMPT_MAX_UTF16 = 1000
SEED_MAX = 4_294_967_295
DEFAULT_RATIO = "1280:720"
DEFAULT_DURATION = 5

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
IMAGE_URL_MAX_LENGTH = 2048
IMAGE_DATA_URI_MAX_LENGTH = 5 * 1024 * 1024

GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
GEN4_DURATIONS = tuple(range(2, 11))
VEO_DURATIONS = (4, 6, 8)


@dataclass(frozen=True)
class Offer:
    """What one model accepts on one endpoint."""

    model: str
    label: str
    endpoint: str
    ratios: tuple[str, ...]
    durations: tuple[int, ...]
    prompt_required: bool
    duration_required: bool
    accepts_seed: bool

    @property
    def default_ratio(self) -> str:
        return DEFAULT_RATIO if DEFAULT_RATIO in self.ratios else self.ratios[0]

    @property
    def default_duration(self) -> int:
        return min(self.durations, key=lambda d: abs(d - DEFAULT_DURATION))


def _offers() -> dict[tuple[str, str], Offer]:
    rows = [
        # model, label, endpoint, ratios, durations, prompt required, duration required, seed
        ("gen4_turbo", "Gen-4 Turbo", IMAGE_TO_VIDEO, GEN4_RATIOS, GEN4_DURATIONS, False, False, True),
        ("gen4.5", "Gen-4.5", IMAGE_TO_VIDEO, GEN4_RATIOS, GEN4_DURATIONS, True, True, True),
        ("gen4.5", "Gen-4.5", TEXT_TO_VIDEO, ("1280:720", "720:1280"), GEN4_DURATIONS, True, True, True),
        ("veo3.1", "Veo 3.1", IMAGE_TO_VIDEO, VEO_RATIOS, VEO_DURATIONS, False, False, False),
        ("veo3.1", "Veo 3.1", TEXT_TO_VIDEO, VEO_RATIOS, VEO_DURATIONS, True, False, False),
        ("veo3.1_fast", "Veo 3.1 Fast", IMAGE_TO_VIDEO, VEO_RATIOS, VEO_DURATIONS, False, False, False),
        ("veo3.1_fast", "Veo 3.1 Fast", TEXT_TO_VIDEO, VEO_RATIOS, VEO_DURATIONS, True, False, False),
    ]
    return {(row[0], row[2]): Offer(*row) for row in rows}


OFFERS = _offers()
MODELS = tuple(dict.fromkeys(model for model, _ in OFFERS))
ALL_RATIOS = tuple(dict.fromkeys(ratio for offer in OFFERS.values() for ratio in offer.ratios))
ALL_DURATIONS = tuple(sorted({duration for offer in OFFERS.values() for duration in offer.durations}))


def label_for(model: str) -> str:
    return next((offer.label for (name, _), offer in OFFERS.items() if name == model), model)


def offer_for(*, model: str, endpoint: str) -> Offer | None:
    return OFFERS.get((model, endpoint))


def utf16_length(text: str) -> int:
    """Length as Runway counts it: UTF-16 code units, so an emoji outside the BMP counts 2."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _is_valid_unicode(text: str) -> bool:
    """False for lone surrogates (from a mis-decoded command line or JSON), which no database stores."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_request(
    *,
    endpoint: str,
    model: str,
    prompt_text: str | None,
    ratio: str | None,
    duration: int | None,
    seed: int | None,
    has_image: bool,
) -> dict[str, str]:
    """Return the problems with a request as {field: message}; empty when it may be sent.

    Fields are named as in this project (prompt, model, ratio, duration, seed, image).
    """
    if endpoint not in ENDPOINTS:
        return {"endpoint": f"Unknown endpoint {endpoint!r}."}
    offer = offer_for(model=model, endpoint=endpoint)
    if offer is None:
        allowed = ", ".join(m for m, e in OFFERS if e == endpoint)
        kind = "with an image" if endpoint == IMAGE_TO_VIDEO else "from text alone"
        return {"model": f"Model {model!r} cannot make a video {kind}. Choose one of: {allowed}."}

    problems: dict[str, str] = {}
    if prompt_text is not None and not isinstance(prompt_text, str):
        problems["prompt"] = "The description must be text."
    elif prompt_text is None or not prompt_text.strip():
        if prompt_text is not None or offer.prompt_required:
            problems["prompt"] = "Please describe the video: the description cannot be empty."
    elif not _is_valid_unicode(prompt_text):
        problems["prompt"] = "The description contains characters that are not valid text."
    elif utf16_length(prompt_text) > PROMPT_MAX_UTF16:
        problems["prompt"] = (
            f"The description is too long: {utf16_length(prompt_text)} characters "
            f"(emoji count as two), at most {PROMPT_MAX_UTF16}."
        )

    if ratio is None:
        problems["ratio"] = "A ratio is required."
    elif ratio not in offer.ratios:
        problems["ratio"] = (
            f"{offer.label} does not offer the ratio {ratio!r}. Choose one of: {', '.join(offer.ratios)}."
        )

    if duration is None:
        if offer.duration_required:
            problems["duration"] = "A duration is required."
    elif isinstance(duration, bool) or not isinstance(duration, int) or duration not in offer.durations:
        allowed_durations = ", ".join(str(d) for d in offer.durations)
        problems["duration"] = f"{offer.label} makes videos of {allowed_durations} seconds, not {duration!r}."

    if seed is not None:
        if not offer.accepts_seed:
            problems["seed"] = f"{offer.label} does not take a seed."
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
            problems["seed"] = f"The seed must be a whole number from 0 to {SEED_MAX}."

    if endpoint == IMAGE_TO_VIDEO and not has_image:
        problems["image"] = "An image is required to make a video from an image."
    if endpoint == TEXT_TO_VIDEO and has_image:
        problems["image"] = "A text-to-video request takes no image."
    return problems


def offers_for_pickers() -> dict[str, dict[str, dict[str, object]]]:
    """The table as the form's script needs it: model → endpoint → ratios, durations, seed."""
    table: dict[str, dict[str, dict[str, object]]] = {}
    for (model, endpoint), offer in OFFERS.items():
        table.setdefault(model, {})[endpoint] = {
            "ratios": list(offer.ratios),
            "durations": list(offer.durations),
            "seed": offer.accepts_seed,
            "defaultRatio": offer.default_ratio,
            "defaultDuration": offer.default_duration,
        }
    return table
