"""Runway's API as this project knows it: the rules a request must pass, read from the one table
of models (model_table.py), the prices, and a task's states.

A change at Runway is a change in the table, or a rule here. The form, the management command and
the services all check requests with these functions, one per rule. Nothing here imports Django.
The simulator (`runway_simulator/`) has its own statement of Runway's contract, from the SDK's
types, so that a wrong rule here is caught by it rather than shared with it.
"""

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import IO, TypeGuard
from urllib.parse import unquote, urlsplit

from videos.model_table import CHARACTER_PERFORMANCE as CHARACTER_PERFORMANCE
from videos.model_table import DEFAULT_DURATION as DEFAULT_DURATION
from videos.model_table import DEFAULT_RATIO as DEFAULT_RATIO
from videos.model_table import IMAGE_TO_VIDEO as IMAGE_TO_VIDEO
from videos.model_table import MAKERS
from videos.model_table import OFFERS as TABLE
from videos.model_table import TEXT_TO_VIDEO as TEXT_TO_VIDEO
from videos.model_table import VIDEO_TO_VIDEO as VIDEO_TO_VIDEO
from videos.model_table import VIDEO_UPSCALE as VIDEO_UPSCALE
from videos.model_table import Offer as Offer

# The endpoints the form sends its jobs to, the input deciding which: a performance clip →
# character_performance (the image or clip is then the character it drives), a clip →
# video_to_video, an image → image_to_video, none → text_to_video. A finished video's Upscale
# action sends its own copy to video_upscale.
FORM_ENDPOINTS = (TEXT_TO_VIDEO, IMAGE_TO_VIDEO, VIDEO_TO_VIDEO, CHARACTER_PERFORMANCE)
ENDPOINTS = (*FORM_ENDPOINTS, VIDEO_UPSCALE)

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


# The longest description the form takes from any model (Seedance 2.5's); each model's own limit,
# where the SDK states one, is its row's `prompt_max`.
PROMPT_MAX_UTF16 = 15000
SEED_MAX = 4_294_967_295
# Ours, for a model whose limit the SDK does not state (and for a negative prompt): Runway's own
# limits, where stated, run from 1,000 to 15,000.
UNSTATED_PROMPT_MAX = 2500
NEGATIVE_PROMPT_MAX = 1000

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
IMAGE_URL_MAX_LENGTH = 2048
# The longest data URI Runway takes for an image or a clip (runway-api.md, the SDK's docstrings);
# a larger file goes through Runway's uploads (services/inputs.py).
DATA_URI_MAX_LENGTH = 5 * 1024 * 1024
# Ours: far above any photo a model needs, far below what Runway's uploads take (200 MB).
IMAGE_MAX_BYTES = 20 * 1000 * 1000

OFFERS = {key: offer for key, offer in TABLE.items() if key[1] in ENDPOINTS}
# The form's models (an upscaler is chosen by the Upscale action, not in the form).
MODELS = tuple(dict.fromkeys(model for model, endpoint in OFFERS if endpoint in FORM_ENDPOINTS))
# Every model a job may have, the upscaler's too: what the history and the admin filter by.
ALL_MODELS = tuple(dict.fromkeys(model for model, _ in OFFERS))
ALL_RATIOS = tuple(dict.fromkeys(ratio for offer in OFFERS.values() for ratio in offer.ratios))
ALL_RESOLUTIONS = tuple(dict.fromkeys(r for offer in OFFERS.values() for r in offer.resolutions))
ALL_DURATIONS = tuple(sorted({duration for offer in OFFERS.values() for duration in offer.durations}))

CENTS_PER_CREDIT = 1
# What a model without a published price is reserved at, in credits per second, unless the
# operator names its price (the settings RUNWAY_PRICES and RUNWAY_PRICE_CEILING): more than any
# video model Runway prices (Veo 3.1 with sound, 40), so that a budget is never overspent.
DEFAULT_PRICE_CEILING = 100


@dataclass(frozen=True)
class Price:
    """What a model costs per second as sent, and whether that is a published (or operator's) price
    or the ceiling it is reserved at for want of one."""

    per_second: float
    known: bool


def price_for(
    offer: Offer, *, audio: bool | None = None, prices: Mapping[str, float] | None = None, ceiling: float
) -> Price:
    """The operator's price for the model (RUNWAY_PRICES), else Runway's published one (without
    audio where that differs), else the ceiling."""
    if prices and offer.model in prices:
        return Price(prices[offer.model], known=True)
    if offer.price is None:
        return Price(ceiling, known=False)
    if audio is False and offer.price_silent is not None:
        return Price(offer.price_silent, known=True)
    return Price(offer.price, known=True)


def estimated_credits(offer: Offer, *, duration: int | None, price: Price, clip_seconds: float | None = None) -> int:
    """What a video costs at `price`: per second of its billed seconds, rounded up to whole credits."""
    return math.ceil(price.per_second * billed_seconds(offer, duration=duration, clip_seconds=clip_seconds))


def billed_seconds(offer: Offer, *, duration: int | None, clip_seconds: float | None = None) -> int:
    """The seconds a video is billed (and counted) by: its duration; without one, the clip it edits
    (rounded up), or the model's longest video (what Runway bills a default or "auto" at)."""
    if duration is not None:
        return duration
    if clip_seconds is not None:
        return math.ceil(clip_seconds)
    return max(offer.durations, default=DEFAULT_DURATION)


# How long a model takes at Runway, in seconds, before any job of it has finished here: a first
# guess for the page's "about M:SS left", replaced by what the model's own jobs took as soon as one
# has (services/selectors.generation_estimate). Runway publishes no figures.
FIRST_GUESS_SECONDS = {"gen4_turbo": 40, "gen4.5": 75, "veo3.1": 90, "veo3.1_fast": 50}
FIRST_GUESS_DEFAULT = 60


def first_guess_seconds(model: str) -> int:
    return FIRST_GUESS_SECONDS.get(model, FIRST_GUESS_DEFAULT)


def label_for(model: str) -> str:
    return next((offer.label for (name, _), offer in TABLE.items() if name == model), model)


def prompt_limit(offer: Offer) -> int:
    """The longest description `offer` takes: the SDK's figure, or ours where it states none."""
    return offer.prompt_max or UNSTATED_PROMPT_MAX


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

    `model`, `ratio` and `duration` may be None for "the default"; `resolved()` fills them in where
    the model takes them. `resolution`, `audio` and `negative_prompt` are sent only when given. The
    image is a file (sent as a data URI) or an `https://` URL, never both.
    """

    prompt: str
    model: str | None = None
    ratio: str | None = None
    duration: int | None = None
    seed: int | None = None
    image: IO[bytes] | None = field(default=None, compare=False)
    image_url: str = ""
    video: IO[bytes] | None = field(default=None, compare=False)
    upscale: bool = False  # the video is to be upscaled, not edited
    performance: IO[bytes] | None = field(default=None, compare=False)  # a clip that drives the character
    last_image: IO[bytes] | None = field(default=None, compare=False)  # the last frame, where the model takes one
    resolution: str | None = None
    audio: bool | None = None
    negative_prompt: str = ""
    body_control: bool | None = None
    expression_intensity: int | None = None

    @property
    def has_image(self) -> bool:
        return self.image is not None or bool(self.image_url)

    @property
    def has_video(self) -> bool:
        return self.video is not None

    @property
    def has_performance(self) -> bool:
        return self.performance is not None

    @property
    def endpoint(self) -> str:
        if self.has_performance:
            return CHARACTER_PERFORMANCE
        if self.has_video:
            return VIDEO_UPSCALE if self.upscale else VIDEO_TO_VIDEO
        return IMAGE_TO_VIDEO if self.has_image else TEXT_TO_VIDEO

    def resolved(
        self,
        *,
        text_model: str,
        image_model: str,
        video_model: str = "aleph2",
        upscale_model: str = "magnific_video_upscaler_creative",
    ) -> "VideoRequest":
        """The same request with the default model (by endpoint), ratio and duration filled in."""
        defaults = {
            TEXT_TO_VIDEO: text_model,
            IMAGE_TO_VIDEO: image_model,
            VIDEO_TO_VIDEO: video_model,
            VIDEO_UPSCALE: upscale_model,
            CHARACTER_PERFORMANCE: "act_two",
        }
        model = self.model or defaults[self.endpoint]
        offer = offer_for(model=model, endpoint=self.endpoint)
        if offer is None:
            return replace(self, model=model)  # check_request() says why
        if self.has_video or self.has_performance:
            # An edit or a performance keeps its clip's own length and shape unless asked otherwise.
            return replace(self, model=model)
        duration = self.duration if self.duration is not None else offer.default_duration
        return replace(self, model=model, ratio=self.ratio or offer.default_ratio, duration=duration)

    @property
    def params(self) -> dict[str, object]:
        """The request's settings as Runway's fields name them, those given only (the job's `params`)."""
        found = {
            "ratio": self.ratio,
            "resolution": self.resolution,
            "duration": self.duration,
            "seed": self.seed,
            "audio": self.audio,
            "negativePrompt": self.negative_prompt or None,
            "bodyControl": self.body_control,
            "expressionIntensity": self.expression_intensity,
        }
        return {name: value for name, value in found.items() if value is not None}


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
        has_video=request.has_video,
        resolution=request.resolution,
        audio=request.audio,
        negative_prompt=request.negative_prompt or None,
        has_performance=request.has_performance,
        body_control=request.body_control,
        expression_intensity=request.expression_intensity,
    )
    if request.image_url:
        problems.update(_problem("image_url", image_url_problem(request.image_url)))
    if request.image is not None:
        problems.update(_problem("image", image_file_problem(request.image)))
    if request.last_image is not None:
        problems.update(_problem("last_image", last_frame_problem(request)))
    return problems


def last_frame_problem(request: VideoRequest) -> str | None:
    """A last frame goes with a first frame, to a model that takes one, and is an image Runway takes."""
    if request.endpoint != IMAGE_TO_VIDEO:
        return "A last frame needs a first frame: add an image to start from."
    offer = offer_for(model=request.model or "", endpoint=request.endpoint)
    if offer is not None and not offer.takes_last_frame:
        return f"{offer.label} takes no last frame: only a first one."
    return image_file_problem(request.last_image) if request.last_image is not None else None


def check_fields(
    *,
    endpoint: str,
    model: str,
    prompt_text: object,
    ratio: object,
    duration: object,
    seed: object,
    has_image: bool,
    has_video: bool = False,
    resolution: object = None,
    audio: object = None,
    negative_prompt: object = None,
    has_performance: bool = False,
    body_control: object = None,
    expression_intensity: object = None,
) -> dict[str, str]:
    """The problems with a request's fields as {field: message}; empty when they may be sent.

    Fields are named as in this project (prompt, model, ratio, duration, seed, image, resolution,
    audio, negative_prompt); None is "not given". The values may come straight from JSON, so each
    rule also checks the value's type.
    """
    if endpoint not in ENDPOINTS:
        return {"endpoint": f"Unknown endpoint {endpoint!r}."}
    offer = offer_for(model=model, endpoint=endpoint)
    if offer is None:
        return {"model": _unknown_model_problem(model, endpoint)}
    found = {
        "prompt": prompt_problem(offer, prompt_text),
        "ratio": ratio_problem(offer, ratio),
        "resolution": resolution_problem(offer, resolution),
        "duration": duration_problem(offer, duration),
        "seed": seed_problem(offer, seed),
        "audio": audio_problem(offer, audio),
        "negative_prompt": negative_prompt_problem(offer, negative_prompt),
        "body_control": body_control_problem(offer, body_control),
        "expression_intensity": expression_intensity_problem(offer, expression_intensity),
        **input_problems(endpoint, has_image=has_image, has_video=has_video, has_performance=has_performance),
    }
    return {name: message for name, message in found.items() if message}


def _problem(name: str, message: str | None) -> dict[str, str]:
    return {name: message} if message else {}


def _unknown_model_problem(model: str, endpoint: str) -> str:
    """Why `model` cannot serve `endpoint`, in the words of what it does take."""
    takes = {e for (m, e) in TABLE if m == model}
    label = label_for(model)
    if not takes:
        return f"There is no model {model!r}: choose one of the models the form lists."
    if endpoint == CHARACTER_PERFORMANCE:
        return f"{label} cannot drive a character: remove the performance clip, or choose Act-Two."
    if takes == {CHARACTER_PERFORMANCE}:
        return f"{label} drives a character with a performance clip: add one, or choose another model."
    if endpoint == VIDEO_TO_VIDEO:
        return f"{label} cannot edit a clip: remove the clip, or choose a model that edits one."
    if takes == {VIDEO_TO_VIDEO}:
        return f"{label} edits a clip: add one, or choose another model."
    if endpoint == TEXT_TO_VIDEO:
        return f"{label} needs an image to start from: add one, or choose a model that starts from text alone."
    return f"{label} cannot start from an image: remove the image, or choose another model."


def prompt_problem(offer: Offer, prompt_text: object) -> str | None:
    """None (no prompt) is fine where the model does not need one; an empty or blank one never is.
    A model that takes no prompt (an upscaler) is sent none: the job's description is only its label."""
    if not offer.accepts_prompt:
        return None
    if prompt_text is not None and not isinstance(prompt_text, str):
        return "The description must be text."
    if prompt_text is None or not prompt_text.strip():
        if prompt_text is not None or offer.prompt_required:
            return "Please describe the video: the description cannot be empty."
        return None
    return _text_problem(prompt_text, limit=prompt_limit(offer), what="The description", model=offer.label)


def _text_problem(text: str, *, limit: int, what: str, model: str) -> str | None:
    if not _is_valid_unicode(text):
        return f"{what} contains characters that are not valid text."
    if utf16_length(text) > limit:
        return f"{what} is too long: {utf16_length(text)} characters (emoji count as two), at most {limit} for {model}."
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
        return "A ratio is required." if offer.ratio_required else None
    if not offer.ratios:
        return f"{offer.label} takes no ratio{_from_image(offer)}."
    if ratio not in offer.ratios:
        return f"{offer.label} does not offer the ratio {ratio!r}. Choose one of: {', '.join(offer.ratios)}."
    return None


def _from_image(offer: Offer) -> str:
    wheres = {IMAGE_TO_VIDEO: " from an image", VIDEO_TO_VIDEO: " when it edits a clip"}
    return wheres.get(offer.endpoint, "")


def resolution_problem(offer: Offer, resolution: object) -> str | None:
    if resolution is None:
        return None
    if not offer.resolutions:
        return f"{offer.label} takes no resolution{_from_image(offer)}."
    if resolution not in offer.resolutions:
        choices = ", ".join(offer.resolutions)
        return f"{offer.label} does not offer the resolution {resolution!r}. Choose one of: {choices}."
    return None


def audio_problem(offer: Offer, audio: object) -> str | None:
    if audio is None:
        return None
    if not offer.accepts_audio:
        return f"{offer.label} has no choice of sound."
    if not isinstance(audio, bool):
        return "Sound is on or off."
    return None


def negative_prompt_problem(offer: Offer, negative_prompt: object) -> str | None:
    if negative_prompt is None:
        return None
    if not offer.accepts_negative_prompt:
        return f"{offer.label} takes no list of what to avoid."
    if not isinstance(negative_prompt, str) or not negative_prompt.strip():
        return "What to avoid must be text, or left empty."
    return _text_problem(negative_prompt, limit=NEGATIVE_PROMPT_MAX, what="What to avoid", model=offer.label)


def duration_problem(offer: Offer, duration: object) -> str | None:
    if duration is None:
        return "A duration is required." if offer.duration_required else None
    if not offer.durations:
        return f"{offer.label} takes no duration{_from_image(offer)}."
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


def input_problems(
    endpoint: str, *, has_image: bool, has_video: bool, has_performance: bool = False
) -> dict[str, str | None]:
    """What is wrong with the request's image, clip and performance for `endpoint`, by field."""
    if endpoint == CHARACTER_PERFORMANCE:
        return _performance_problems(has_image=has_image, has_video=has_video, has_performance=has_performance)
    if has_performance:
        return {"performance": "Only a character performance (Act-Two) takes a performance clip."}
    if endpoint in (VIDEO_TO_VIDEO, VIDEO_UPSCALE):
        return {
            "video": None if has_video else "A clip is required to edit a video.",
            "image": "Give a clip to edit or an image to start from, not both." if has_image else None,
        }
    if has_video:
        return {"video": "Only a video-to-video request takes a clip."}
    if endpoint == IMAGE_TO_VIDEO and not has_image:
        return {"image": "An image is required to make a video from an image."}
    if endpoint == TEXT_TO_VIDEO and has_image:
        return {"image": "A text-to-video request takes no image."}
    return {}


def _performance_problems(*, has_image: bool, has_video: bool, has_performance: bool) -> dict[str, str | None]:
    if not has_performance:
        return {"performance": "A performance clip is required to drive a character."}
    if has_image and has_video:
        return {"video": "The character is an image or a clip, not both."}
    if not (has_image or has_video):
        return {"image": "Give the character to drive: an image or a clip of them."}
    return {}


def body_control_problem(offer: Offer, body_control: object) -> str | None:
    if body_control is None:
        return None
    if not offer.accepts_body_control:
        return f"{offer.label} has no choice of body control."
    return None if isinstance(body_control, bool) else "Body control is on or off."


def expression_intensity_problem(offer: Offer, intensity: object) -> str | None:
    if intensity is None:
        return None
    if not offer.expression_intensities:
        return f"{offer.label} takes no expression intensity."
    if _is_whole_number(intensity) and intensity in offer.expression_intensities:
        return None
    low, high = offer.expression_intensities[0], offer.expression_intensities[-1]
    return f"The expression intensity is a whole number from {low} to {high}."


def image_url_problem(url: str) -> str | None:
    """Runway's rules for an image URL: HTTPS, at most 2,048 characters, and a public domain name
    (not an IP address in any spelling a URL parser reads as one, nor localhost, which Runway's
    servers could only reach on themselves)."""
    if not url.startswith("https://"):
        return "The image URL must start with https://."
    if len(url) > IMAGE_URL_MAX_LENGTH:
        return f"The image URL is longer than {IMAGE_URL_MAX_LENGTH} characters."
    try:
        if _NOT_IN_URLS.search(url):
            raise ValueError(url)
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not one
    except ValueError:
        return "The image URL is not a valid URL."
    return _host_problem(parts.hostname or "")


# Characters no valid URL carries as they are, and that parsers read differently (a backslash is a
# slash to browsers, not to Python).
_NOT_IN_URLS = re.compile(r"[\x00-\x20\x7f\\]")
# A last label a URL parser reads as a number, so the host as an IPv4 address (WHATWG URL's "ends
# in a number"): 127.1, 0177.0.0.1, 2130706433, 0x7f.1 all reach 127.0.0.1.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")


def _host_problem(raw_host: str) -> str | None:
    # As a URL parser compares it: percent-decoded, full-width forms folded, lower case, without
    # the trailing dot of a fully qualified name ("localhost." is localhost).
    host = unicodedata.normalize("NFKC", unquote(raw_host)).lower()
    host = host.replace("\u3002", ".").replace("\uff0e", ".").replace("\uff61", ".").rstrip(".")
    if not host:
        return "The image URL has no host."
    if ":" in host or _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
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
    return f"The image is {megabytes} MB; images of up to {IMAGE_MAX_BYTES / 1e6:.0f} MB can be used."


def model_problems() -> dict[str, dict[str, str]]:
    """For each endpoint, what each model that does not serve it is told (the form's script shows it
    as soon as such a model is chosen, in the words the server would answer with)."""
    missing = [(model, endpoint) for endpoint in FORM_ENDPOINTS for model in MODELS if (model, endpoint) not in OFFERS]
    problems: dict[str, dict[str, str]] = {endpoint: {} for endpoint in FORM_ENDPOINTS}
    for model, endpoint in missing:
        problems[endpoint][model] = _unknown_model_problem(model, endpoint)
    return problems


def models_by_maker() -> list[tuple[str, list[tuple[str, str]]]]:
    """The form's model menu: each maker's models (model id, label), in the table's order."""
    groups: dict[str, dict[str, str]] = {maker: {} for maker in MAKERS}
    for offer in OFFERS.values():
        if offer.endpoint in FORM_ENDPOINTS:
            groups[offer.maker][offer.model] = offer.label
    return [(maker, list(models.items())) for maker, models in groups.items() if models]


def offers_for_pickers(*, prices: Mapping[str, float], ceiling: float) -> dict[str, dict[str, dict[str, object]]]:
    """The table as the form's script needs it: model → endpoint → what it takes, and its price per
    second (with sound and without) at `prices` (the operator's) or, for want of one, at `ceiling`."""
    table: dict[str, dict[str, dict[str, object]]] = {}
    for (model, endpoint), offer in OFFERS.items():
        if endpoint not in FORM_ENDPOINTS:
            continue
        price = price_for(offer, prices=prices, ceiling=ceiling)
        table.setdefault(model, {})[endpoint] = {
            "label": offer.label,
            "ratios": list(offer.ratios),
            "resolutions": list(offer.resolutions),
            "durations": list(offer.durations),
            "seed": offer.accepts_seed,
            "audio": offer.accepts_audio,
            "negativePrompt": offer.accepts_negative_prompt,
            "bodyControl": offer.accepts_body_control,
            "lastFrame": offer.takes_last_frame,
            "expressionIntensities": list(offer.expression_intensities),
            "promptRequired": offer.prompt_required,
            "promptSent": offer.accepts_prompt,
            "promptMax": prompt_limit(offer),
            "defaultRatio": offer.default_ratio,
            "defaultDuration": offer.default_duration,
            "price": price.per_second,
            "priceSilent": price_for(offer, audio=False, prices=prices, ceiling=ceiling).per_second,
            "priceKnown": price.known,
        }
    return table
