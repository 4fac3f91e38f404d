"""Runway's API as this project knows it: the one table of models (which endpoint takes which
model, with which ratios and durations), the rules a request must pass, and a task's states.

A change at Runway is a change here. The form, the management command, the services and the
simulator all check requests with these functions, one per rule. Nothing here imports Django, so
the simulator (`runway_simulator/`) shares it.
"""

import ipaddress
from dataclasses import dataclass, field, replace
from typing import IO, TypeGuard
from urllib.parse import urlsplit

TEXT_TO_VIDEO = "text_to_video"
IMAGE_TO_VIDEO = "image_to_video"
ENDPOINTS = (TEXT_TO_VIDEO, IMAGE_TO_VIDEO)

# The states of a task at Runway, as they appear on the wire. Runway may add others.
PENDING = "PENDING"
THROTTLED = "THROTTLED"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
FINAL_TASK_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})


def is_moderation_failure(failure_code: str) -> bool:
    """A task that Runway's moderation failed, which Runway bills as if it had been made ("moderated
    generations have the same credit cost as successful generations")."""
    return failure_code.startswith(("SAFETY.", "INPUT_PREPROCESSING.SAFETY"))


PROMPT_MAX_UTF16 = 1000
SEED_MAX = 4_294_967_295
DEFAULT_RATIO = "1280:720"
DEFAULT_DURATION = 5

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
IMAGE_URL_MAX_LENGTH = 2048
IMAGE_DATA_URI_MAX_LENGTH = 5 * 1024 * 1024
# The largest file that still fits in a data URI once base64 has grown it by a third.
IMAGE_MAX_BYTES = (IMAGE_DATA_URI_MAX_LENGTH - 64) * 3 // 4

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
        # Veo takes a seed since runwayml 5.24's types (Veo3_1, Veo3_1Fast on both endpoints).
        ("veo3.1", "Veo 3.1", IMAGE_TO_VIDEO, VEO_RATIOS, VEO_DURATIONS, False, False, True),
        ("veo3.1", "Veo 3.1", TEXT_TO_VIDEO, VEO_RATIOS, VEO_DURATIONS, True, False, True),
        ("veo3.1_fast", "Veo 3.1 Fast", IMAGE_TO_VIDEO, VEO_RATIOS, VEO_DURATIONS, False, False, True),
        ("veo3.1_fast", "Veo 3.1 Fast", TEXT_TO_VIDEO, VEO_RATIOS, VEO_DURATIONS, True, False, True),
    ]
    return {(row[0], row[2]): Offer(*row) for row in rows}


OFFERS = _offers()
MODELS = tuple(dict.fromkeys(model for model, _ in OFFERS))
ALL_RATIOS = tuple(dict.fromkeys(ratio for offer in OFFERS.values() for ratio in offer.ratios))
ALL_DURATIONS = tuple(sorted({duration for offer in OFFERS.values() for duration in offer.durations}))


# Runway's published prices, in credits per second of video (1 credit = 1 US cent), as sent by
# this project (Veo with its audio, Runway's default). Runway's own figures on each task
# (`estimatedCost`, then `cost`) are the truth; this table gives the estimate shown and checked
# before anything is sent, and the simulator's bill.
CREDITS_PER_SECOND = {"gen4_turbo": 5, "gen4.5": 12, "veo3.1": 40, "veo3.1_fast": 15}
CENTS_PER_CREDIT = 1

# How long a model takes at Runway, in seconds, before any job of it has finished here: a first
# guess for the page's "about M:SS left", replaced by what the model's own jobs took as soon as one
# has (services/selectors.generation_estimate). Runway publishes no figures.
FIRST_GUESS_SECONDS = {"gen4_turbo": 40, "gen4.5": 75, "veo3.1": 90, "veo3.1_fast": 50}
FIRST_GUESS_DEFAULT = 60


def first_guess_seconds(model: str) -> int:
    return FIRST_GUESS_SECONDS.get(model, FIRST_GUESS_DEFAULT)


def estimated_credits(*, model: str, duration: int) -> int:
    """What a video of `duration` seconds from `model` costs at the published price."""
    return CREDITS_PER_SECOND[model] * duration


def label_for(model: str) -> str:
    return next((offer.label for (name, _), offer in OFFERS.items() if name == model), model)


def offer_for(*, model: str, endpoint: str) -> Offer | None:
    return OFFERS.get((model, endpoint))


def utf16_length(text: str) -> int:
    """Length as Runway counts it: UTF-16 code units, so an emoji outside the BMP counts 2."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def image_type(head: bytes) -> str | None:
    """An image's MIME type from its first 16 bytes, or None if it is none that Runway takes."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class VideoRequest:
    """What a user asks for: built alike by the form, the command, re-run and try again.

    `model`, `ratio` and `duration` may be None for "the default"; `resolved()` fills them in. The
    image is a file (sent as a data URI) or an `https://` URL, never both.
    """

    prompt: str
    model: str | None = None
    ratio: str | None = None
    duration: int | None = None
    seed: int | None = None
    image: IO[bytes] | None = field(default=None, compare=False)
    image_url: str = ""

    @property
    def has_image(self) -> bool:
        return self.image is not None or bool(self.image_url)

    @property
    def endpoint(self) -> str:
        return IMAGE_TO_VIDEO if self.has_image else TEXT_TO_VIDEO

    def resolved(self, *, text_model: str, image_model: str) -> "VideoRequest":
        """The same request with the default model (by endpoint), ratio and duration filled in."""
        model = self.model or (image_model if self.has_image else text_model)
        offer = offer_for(model=model, endpoint=self.endpoint)
        if offer is None:
            return replace(self, model=model)  # check_request() says why
        duration = self.duration if self.duration is not None else offer.default_duration
        return replace(self, model=model, ratio=self.ratio or offer.default_ratio, duration=duration)


def check_request(request: VideoRequest) -> dict[str, str]:
    """The problems with a resolved request as {field: message}; empty when it may be sent."""
    problems = check_fields(
        endpoint=request.endpoint,
        model=request.model or "",
        # An empty description is no description (the form's empty field): fine where the model
        # needs none, as Runway's promptText may be left out; a blank one is still refused.
        prompt_text=request.prompt or None,
        ratio=request.ratio,
        duration=request.duration,
        seed=request.seed,
        has_image=request.has_image,
    )
    if request.image_url:
        problems.update(_problem("image_url", image_url_problem(request.image_url)))
    if request.image is not None:
        problems.update(_problem("image", image_file_problem(request.image)))
    return problems


def check_fields(
    *,
    endpoint: str,
    model: str,
    prompt_text: object,
    ratio: object,
    duration: object,
    seed: object,
    has_image: bool,
) -> dict[str, str]:
    """The problems with a request's fields as {field: message}; empty when they may be sent.

    Fields are named as in this project (prompt, model, ratio, duration, seed, image). The values
    may come straight from JSON (the simulator's), so each rule also checks the value's type.
    """
    if endpoint not in ENDPOINTS:
        return {"endpoint": f"Unknown endpoint {endpoint!r}."}
    offer = offer_for(model=model, endpoint=endpoint)
    if offer is None:
        return {"model": _unknown_model_problem(model, endpoint)}
    found = {
        "prompt": prompt_problem(offer, prompt_text),
        "ratio": ratio_problem(offer, ratio),
        "duration": duration_problem(offer, duration),
        "seed": seed_problem(offer, seed),
        "image": image_presence_problem(endpoint, has_image),
    }
    return {name: message for name, message in found.items() if message}


def _problem(name: str, message: str | None) -> dict[str, str]:
    return {name: message} if message else {}


def _unknown_model_problem(model: str, endpoint: str) -> str:
    """Why `model` cannot serve `endpoint`, with the models that can, by the names people know."""
    others = _in_words([label_for(m) for m, e in OFFERS if e == endpoint])
    if model in MODELS and endpoint == TEXT_TO_VIDEO:
        return f"{label_for(model)} needs an image to start from: add one, or choose {others} to start from text alone."
    if model in MODELS:
        return f"{label_for(model)} cannot start from an image: remove the image, or choose {others}."
    return f"There is no model {model!r}: choose {others}."


def _in_words(names: list[str]) -> str:
    """["A", "B", "C"] → "A, B or C"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def prompt_problem(offer: Offer, prompt_text: object) -> str | None:
    """None (no prompt) is fine where the model does not need one; an empty or blank one never is."""
    if prompt_text is not None and not isinstance(prompt_text, str):
        return "The description must be text."
    if prompt_text is None or not prompt_text.strip():
        if prompt_text is not None or offer.prompt_required:
            return "Please describe the video: the description cannot be empty."
        return None
    if not _is_valid_unicode(prompt_text):
        return "The description contains characters that are not valid text."
    if utf16_length(prompt_text) > PROMPT_MAX_UTF16:
        return (
            f"The description is too long: {utf16_length(prompt_text)} characters "
            f"(emoji count as two), at most {PROMPT_MAX_UTF16}."
        )
    return None


def _is_valid_unicode(text: str) -> bool:
    """False for lone surrogates (from a mis-decoded command line or JSON), which no database stores."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def ratio_problem(offer: Offer, ratio: object) -> str | None:
    if ratio is None:
        return "A ratio is required."
    if ratio not in offer.ratios:
        return f"{offer.label} does not offer the ratio {ratio!r}. Choose one of: {', '.join(offer.ratios)}."
    return None


def duration_problem(offer: Offer, duration: object) -> str | None:
    if duration is None:
        return "A duration is required." if offer.duration_required else None
    if _is_whole_number(duration) and duration in offer.durations:
        return None
    allowed = ", ".join(str(d) for d in offer.durations)
    return f"{offer.label} makes videos of {allowed} seconds, not {duration!r}."


def seed_problem(offer: Offer, seed: object) -> str | None:
    if seed is None:
        return None
    if not offer.accepts_seed:
        return f"{offer.label} does not take a seed."
    if not (_is_whole_number(seed) and 0 <= seed <= SEED_MAX):
        return f"The seed must be a whole number from 0 to {SEED_MAX}."
    return None


def _is_whole_number(value: object) -> TypeGuard[int]:
    """An int, and not a bool (which Python counts as one, and JSON does not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def image_presence_problem(endpoint: str, has_image: bool) -> str | None:
    if endpoint == IMAGE_TO_VIDEO and not has_image:
        return "An image is required to make a video from an image."
    if endpoint == TEXT_TO_VIDEO and has_image:
        return "A text-to-video request takes no image."
    return None


def image_url_problem(url: str) -> str | None:
    """Runway's rules for an image URL: HTTPS, at most 2,048 characters, and a public domain name
    (not an IP address, nor localhost, which Runway's servers could only reach on themselves)."""
    if not url.startswith("https://"):
        return "The image URL must start with https://."
    if len(url) > IMAGE_URL_MAX_LENGTH:
        return f"The image URL is longer than {IMAGE_URL_MAX_LENGTH} characters."
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return "The image URL is not a valid URL."
    if not host:
        return "The image URL has no host."
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return "The image URL must use a domain name, not an IP address."
    if host == "localhost" or host.endswith(".localhost") or "." not in host:
        return "The image URL must use a public domain name: Runway cannot fetch it otherwise."
    return None


def image_file_problem(image: IO[bytes]) -> str | None:
    """Whether an uploaded image is one Runway takes, by its first bytes and its size; leaves it at its start."""
    head = image.read(16)
    image.seek(0, 2)
    size = image.tell()
    image.seek(0)
    if image_type(head) is None:
        return NOT_AN_IMAGE
    if size > IMAGE_MAX_BYTES:
        return image_too_large(f"{size / 1e6:.1f}")
    return None


NOT_AN_IMAGE = "The file is not a JPEG, PNG or WebP image."


def image_too_large(megabytes: str) -> str:
    """What an image over IMAGE_MAX_BYTES is told, its size given in MB ("20.0")."""
    return f"The image is {megabytes} MB; Runway takes at most {IMAGE_MAX_BYTES / 1e6:.1f} MB."


def model_problems() -> dict[str, dict[str, str]]:
    """For each endpoint, what each model that does not serve it is told (the form's script shows it
    as soon as such a model is chosen, in the words the server would answer with)."""
    missing = [(model, endpoint) for endpoint in ENDPOINTS for model in MODELS if (model, endpoint) not in OFFERS]
    problems: dict[str, dict[str, str]] = {endpoint: {} for endpoint in ENDPOINTS}
    for model, endpoint in missing:
        problems[endpoint][model] = _unknown_model_problem(model, endpoint)
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
