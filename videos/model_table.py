"""The one table of Runway's video models: per model and endpoint, what it takes, its limits, its
maker and its price per second where Runway publishes one.

It is written by hand from the pinned SDK's own types (`runwayml/types/*_create_params.py`), and
tests/test_model_table.py reads those types and fails on any model, ratio, resolution, duration or
required field on which the two disagree, so an SDK bump shows exactly what changed at Runway.
Where the SDK says only `int` for a duration, the table's seconds are the maker's own
(`durations_stated=False`): the test then checks only that they are whole seconds.

The catalog (catalog.py) turns each row into the rules a request must pass and the form's fields;
the README's model table is this one, in words. Nothing here imports Django.
"""

from dataclasses import dataclass
from typing import Any, Literal

TEXT_TO_VIDEO = "text_to_video"
IMAGE_TO_VIDEO = "image_to_video"
VIDEO_TO_VIDEO = "video_to_video"
VIDEO_UPSCALE = "video_upscale"
CHARACTER_PERFORMANCE = "character_performance"
GENERATION_ENDPOINTS = (TEXT_TO_VIDEO, IMAGE_TO_VIDEO, VIDEO_TO_VIDEO)

Frame = Literal["first", "last"]

# What a request that leaves them to us is given, where the model offers them.
DEFAULT_RATIO = "1280:720"
DEFAULT_DURATION = 5


@dataclass(frozen=True)
class Offer:
    """What one model takes on one endpoint, in this project's words (the wire's name in brackets)."""

    model: str
    label: str
    maker: str
    endpoint: str
    ratios: tuple[str, ...] = ()  # [ratio]; () when the model takes none
    ratio_required: bool = False
    resolutions: tuple[str, ...] = ()  # [resolution]; () when the model takes none
    durations: tuple[int, ...] = ()  # [duration] in seconds; () when the model takes none
    durations_stated: bool = True  # False: the SDK says only `int`, the seconds are the maker's
    duration_required: bool = False
    duration_auto: bool = False  # also takes "auto": the model chooses (billed at its longest)
    accepts_prompt: bool = True  # [promptText]
    prompt_required: bool = False
    prompt_max: int | None = None  # in UTF-16 code units, where the SDK states a limit
    accepts_seed: bool = False  # [seed]
    accepts_audio: bool = False  # [audio]: with sound (the default) or without
    accepts_negative_prompt: bool = False  # [negativePrompt]
    accepts_body_control: bool = False  # character_performance: [bodyControl], the body follows too
    expression_intensities: tuple[int, ...] = ()  # character_performance: [expressionIntensity]
    frames: tuple[Frame, ...] = ()  # image_to_video: the positions its [promptImage] takes
    video_field: str = ""  # video_to_video, video_upscale: the wire's name of the clip
    price: float | None = None  # credits per second, where Runway publishes it
    price_silent: float | None = None  # the same without audio, where it differs
    good_for: str = ""  # one line for the README and the form

    @property
    def default_ratio(self) -> str | None:
        if not self.ratios:
            return None
        return DEFAULT_RATIO if DEFAULT_RATIO in self.ratios else self.ratios[0]

    @property
    def default_duration(self) -> int | None:
        if not self.durations:
            return None
        return min(self.durations, key=lambda d: abs(d - DEFAULT_DURATION))

    @property
    def takes_ratio(self) -> bool:
        return bool(self.ratios)

    @property
    def takes_duration(self) -> bool:
        return bool(self.durations)

    @property
    def takes_last_frame(self) -> bool:
        return "last" in self.frames


# -- the ratios, by family, as the SDK lists them ---------------------------------------------------

GEN4_RATIOS = ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672")
ACT_TWO_RATIOS = ("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672")
GEN45_IMAGE_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")
VEO_RATIOS = ("1280:720", "720:1280", "1080:1920", "1920:1080")
KLING_STANDARD_RATIOS = ("1280:720", "720:1280", "960:960")
KLING_PRO_RATIOS = ("1920:1080", "1080:1920", "1440:1440")
KLING_4K_RATIOS = ("3840:2160", "2160:3840", "2880:2880")
KLING_25_RATIOS = ("1920:1080", "1440:1440", "1080:1920", "1280:720", "720:720", "720:1280")
KLING_4_RATIOS = (
    "1280:720", "720:1280", "940:940", "1460:624", "1920:1080", "1080:1920", "1440:1440", "2200:940",
    "auto_720p", "auto_1080p",
)  # fmt: skip
KLING_4_AUTO_RATIOS = ("auto_720p", "auto_1080p")
HAILUO_RATIOS = ("adaptive", "21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
HAILUO_RESOLUTIONS = ("768p", "2k", "768P", "2K")
SEEDANCE_SMALL_RATIOS = (
    "992:432", "864:496", "752:560", "640:640", "560:752", "496:864", "1470:630", "1280:720",
    "1112:834", "960:960", "834:1112", "720:1280",
)  # fmt: skip
SEEDANCE_RATIOS = (
    *SEEDANCE_SMALL_RATIOS, "2206:946", "1920:1080", "1664:1248", "1440:1440", "1248:1664", "1080:1920",
    "3840:1646", "3840:2160", "3840:2880", "3840:3840", "2880:3840", "2160:3840",
)  # fmt: skip
SEEDANCE_25_RATIOS = (
    "992:432", "854:480", "752:560", "640:640", "560:752", "480:854", "1470:630", "1280:720",
    "1112:834", "960:960", "834:1112", "720:1280", "2206:946", "1920:1080", "1664:1248", "1440:1440",
    "1248:1664", "1080:1920",
)  # fmt: skip
GEMINI_RATIOS = ("1280:720", "720:1280")
GEMINI_11_RATIOS = ("640:360", "360:640", "1280:720", "720:1280", "1920:1080", "1080:1920", "3840:2160", "2160:3840")
GROK_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
GROK_RESOLUTIONS = ("480p", "720p", "1080p")
GROK_LITE_RATIOS = (
    "848:480", "480:848", "480:480", "640:480", "480:640", "720:480", "480:720", "1280:720", "720:1280",
    "720:720", "960:720", "720:960", "1088:720", "720:1088", "1904:1072", "1072:1904", "1424:1424",
    "1648:1232", "1232:1648", "1744:1152", "1152:1744",
)  # fmt: skip
GROK_LITE_IMAGE_RATIOS = ("auto_480p", "auto_720p", "auto_1080p")
HAPPYHORSE_RATIOS = (
    "1280:720", "720:1280", "960:960", "1108:832", "832:1108", "1920:1080", "1080:1920", "1440:1440",
    "1662:1248", "1248:1662",
)  # fmt: skip
HAPPYHORSE_RESOLUTIONS = ("720p", "1080p", "720P", "1080P")
WAN_RATIOS = (
    "832:480", "720:544", "624:624", "544:720", "480:832", "1280:720", "1104:832", "960:960", "832:1104",
    "720:1280", "1920:1080", "1648:1248", "1440:1440", "1248:1648", "1080:1920", "auto_480p", "auto_720p",
    "auto_1080p",
)  # fmt: skip
H3_RESOLUTIONS = ("480p", "768p")

GEN4_DURATIONS = tuple(range(2, 11))
VEO_DURATIONS = (4, 6, 8)
GEMINI_DURATIONS = tuple(range(3, 11))
# Seconds the SDK does not state (its type is a bare `int`), as the makers publish them.
KLING_3_DURATIONS = tuple(range(3, 16))
SEEDANCE_DURATIONS = tuple(range(4, 16))
FIVE_OR_TEN = (5, 10)
SIX_OR_TEN = (6, 10)

FIRST: tuple[Frame, ...] = ("first",)
FIRST_AND_LAST: tuple[Frame, ...] = ("first", "last")

RUNWAY = "Runway"
GOOGLE = "Google"
KLING = "Kling (Kuaishou)"
MINIMAX = "MiniMax"
BYTEDANCE = "ByteDance"
XAI = "xAI"
ALIBABA = "Alibaba"
HAPPYHORSE = "HappyHorse"
MAGNIFIC = "Magnific"


def _both(model: str, label: str, maker: str, *, good_for: str, **fields: Any) -> list[Offer]:
    """A model's text-to-video and image-to-video rows where they take the same fields (`frames` and
    the image row's differences given as image_<field>)."""
    image_fields = {name[len("image_") :]: value for name, value in fields.items() if name.startswith("image_")}
    common = {name: value for name, value in fields.items() if not name.startswith("image_")}
    frames = image_fields.pop("frames", FIRST)
    text = Offer(model, label, maker, TEXT_TO_VIDEO, good_for=good_for, **common)
    image = Offer(model, label, maker, IMAGE_TO_VIDEO, good_for=good_for, frames=frames, **{**common, **image_fields})
    return [text, image]


def _runway() -> list[Offer]:
    gen45: dict[str, Any] = {"ratio_required": True, "durations": GEN4_DURATIONS, "duration_required": True}
    return [
        Offer(
            "gen4.5",
            "Gen-4.5",
            RUNWAY,
            TEXT_TO_VIDEO,
            ratios=("1280:720", "720:1280"),
            prompt_required=True,
            prompt_max=1000,
            accepts_seed=True,
            price=12,
            good_for="Runway's best: motion, physics, prompt adherence.",
            **gen45,
        ),
        Offer(
            "gen4.5",
            "Gen-4.5",
            RUNWAY,
            IMAGE_TO_VIDEO,
            ratios=GEN45_IMAGE_RATIOS,
            prompt_required=True,
            prompt_max=1000,
            accepts_seed=True,
            frames=FIRST,
            price=12,
            good_for="Runway's best: motion, physics, prompt adherence.",
            **gen45,
        ),
        Offer(
            "gen4_turbo",
            "Gen-4 Turbo",
            RUNWAY,
            IMAGE_TO_VIDEO,
            ratios=GEN4_RATIOS,
            ratio_required=True,
            durations=GEN4_DURATIONS,
            durations_stated=False,
            prompt_max=1000,
            accepts_seed=True,
            frames=FIRST,
            price=5,
            good_for="Fast and cheap from an image; the prompt is optional.",
        ),
        Offer(
            "aleph2",
            "Aleph 2.0",
            RUNWAY,
            VIDEO_TO_VIDEO,
            video_field="videoUri",
            accepts_seed=True,
            good_for="Edits a clip: restyle, relight, add or remove things, new angles.",
        ),
        Offer(
            "act_two",
            "Act-Two",
            RUNWAY,
            CHARACTER_PERFORMANCE,
            ratios=ACT_TWO_RATIOS,
            accepts_prompt=False,
            accepts_seed=True,
            accepts_body_control=True,
            expression_intensities=tuple(range(1, 6)),
            good_for="Drives a character (an image or a clip) with a performance clip: face and body.",
        ),
    ]


def _google() -> list[Offer]:
    veo: dict[str, Any] = {
        "ratios": VEO_RATIOS,
        "ratio_required": True,
        "durations": VEO_DURATIONS,
        "prompt_max": 1000,
        "accepts_seed": True,
        "accepts_audio": True,
        "accepts_negative_prompt": True,
        "image_frames": FIRST_AND_LAST,
    }
    gemini_11: dict[str, Any] = {"ratios": GEMINI_11_RATIOS, "durations": GEMINI_DURATIONS, "duration_auto": True}
    return [
        *_both(
            "veo3.1",
            "Veo 3.1",
            GOOGLE,
            good_for="Cinematic video with sound.",
            prompt_required=True,
            image_prompt_required=False,
            price=40,
            price_silent=20,
            **veo,
        ),
        *_both(
            "veo3.1_fast",
            "Veo 3.1 Fast",
            GOOGLE,
            good_for="Veo with sound, faster and cheaper.",
            prompt_required=True,
            image_prompt_required=False,
            price=15,
            price_silent=10,
            **veo,
        ),
        *_both(
            "gemini_omni_flash",
            "Gemini Omni Flash",
            GOOGLE,
            good_for="Quick clips, strong prompt understanding.",
            ratios=GEMINI_RATIOS,
            durations=GEMINI_DURATIONS,
            prompt_required=True,
            image_prompt_required=False,
        ),
        *_both(
            "gemini_omni_flash_1.1",
            "Gemini Omni Flash 1.1",
            GOOGLE,
            good_for="Gemini Omni up to 4K.",
            prompt_required=True,
            image_frames=FIRST_AND_LAST,
            **gemini_11,
        ),
        Offer(
            "gemini_omni_flash",
            "Gemini Omni Flash",
            GOOGLE,
            VIDEO_TO_VIDEO,
            video_field="videoUri",
            prompt_required=True,
            good_for="Quick clips, strong prompt understanding.",
        ),
        Offer(
            "gemini_omni_flash_1.1",
            "Gemini Omni Flash 1.1",
            GOOGLE,
            VIDEO_TO_VIDEO,
            video_field="videoUri",
            prompt_required=True,
            ratios=GEMINI_11_RATIOS,
            durations=GEMINI_DURATIONS,
            durations_stated=False,
            duration_auto=True,
            good_for="Gemini Omni up to 4K.",
        ),
    ]


def _kling() -> list[Offer]:
    three: dict[str, Any] = {
        "durations": KLING_3_DURATIONS,
        "durations_stated": False,
        "accepts_audio": True,
        "ratio_required": True,
        "image_ratio_required": False,
        "image_frames": FIRST_AND_LAST,
    }
    tiers = (
        ("standard", "Standard", KLING_STANDARD_RATIOS),
        ("pro", "Pro", KLING_PRO_RATIOS),
        ("4k", "4K", KLING_4K_RATIOS),
    )
    offers: list[Offer] = []
    for suffix, tier, ratios in tiers:
        offers += _both(
            f"kling3.0_{suffix}",
            f"Kling 3.0 {tier}",
            KLING,
            ratios=ratios,
            good_for="Kling's 3.0: realistic motion, with sound.",
            **three,
        )
        offers += _both(
            f"klingO3_{suffix}",
            f"Kling O3 {tier}",
            KLING,
            ratios=ratios,
            good_for="Kling's reasoning model: complex scenes and references.",
            **three,
        )
        offers.append(
            Offer(
                f"klingO3_{suffix}",
                f"Kling O3 {tier}",
                KLING,
                VIDEO_TO_VIDEO,
                video_field="promptVideo",
                prompt_required=True,
                good_for="Kling's reasoning model: complex scenes and references.",
            )
        )
    offers += _both(
        "kling2.5_turbo_pro",
        "Kling 2.5 Turbo Pro",
        KLING,
        ratios=KLING_25_RATIOS,
        durations=FIVE_OR_TEN,
        prompt_required=True,
        image_ratios=(),
        image_frames=FIRST_AND_LAST,
        good_for="Fast, fluid motion at a low price.",
    )
    offers += _both(
        "kling_4",
        "Kling 4",
        KLING,
        ratios=KLING_4_RATIOS,
        durations=FIVE_OR_TEN,
        durations_stated=False,
        prompt_required=True,
        image_ratios=KLING_4_AUTO_RATIOS,
        image_prompt_required=False,
        good_for="Kling's newest, with reference images and videos.",
    )
    offers.append(
        Offer(
            "kling_4",
            "Kling 4",
            KLING,
            VIDEO_TO_VIDEO,
            video_field="videoUri",
            prompt_required=True,
            ratios=KLING_4_AUTO_RATIOS,
            good_for="Kling's newest, with reference images and videos.",
        )
    )
    return offers


def _minimax() -> list[Offer]:
    return [
        *_both(
            "hailuo3",
            "Hailuo 3",
            MINIMAX,
            ratios=HAILUO_RATIOS,
            resolutions=HAILUO_RESOLUTIONS,
            durations=SIX_OR_TEN,
            durations_stated=False,
            prompt_required=True,
            good_for="Expressive characters and physics, up to 2K.",
        ),
        Offer(
            "hailuo3",
            "Hailuo 3",
            MINIMAX,
            VIDEO_TO_VIDEO,
            video_field="promptVideo",
            prompt_required=True,
            ratios=HAILUO_RATIOS,
            resolutions=HAILUO_RESOLUTIONS,
            durations=SIX_OR_TEN,
            durations_stated=False,
            good_for="Expressive characters and physics, up to 2K.",
        ),
        *_both(
            "h3_max",
            "H3 Max",
            MINIMAX,
            resolutions=H3_RESOLUTIONS,
            durations=SIX_OR_TEN,
            durations_stated=False,
            prompt_required=True,
            accepts_seed=True,
            image_frames=FIRST_AND_LAST,
            good_for="MiniMax's highest quality, 480p or 768p.",
        ),
    ]


def _bytedance() -> list[Offer]:
    seedance: dict[str, Any] = {
        "durations": SEEDANCE_DURATIONS,
        "durations_stated": False,
        "duration_auto": True,
        "accepts_seed": True,
        "accepts_audio": True,
        "image_frames": FIRST_AND_LAST,
    }
    family = (
        ("seedance2", "Seedance 2.0", SEEDANCE_RATIOS, 3500, "Multi-shot storytelling up to 4K."),
        ("seedance2_fast", "Seedance 2.0 Fast", SEEDANCE_SMALL_RATIOS, 3500, "Seedance 2.0, faster, up to 720p."),
        ("seedance2_mini", "Seedance 2.0 Mini", SEEDANCE_SMALL_RATIOS, 3500, "The lightest Seedance, for drafts."),
        ("seedance2_5", "Seedance 2.5", SEEDANCE_25_RATIOS, 15000, "The newest Seedance: long prompts, drafts."),
    )
    offers: list[Offer] = []
    for model, label, ratios, prompt_max, good_for in family:
        # Seedance 2.5 needs no prompt from text (a draft's task may stand in); the others do.
        prompt: dict[str, Any] = {"prompt_required": model != "seedance2_5", "image_prompt_required": False}
        offers += _both(
            model, label, BYTEDANCE, ratios=ratios, prompt_max=prompt_max, good_for=good_for, **seedance, **prompt
        )
        offers.append(
            Offer(
                model,
                label,
                BYTEDANCE,
                VIDEO_TO_VIDEO,
                video_field="promptVideo",
                ratios=ratios,
                prompt_max=prompt_max,
                durations=SEEDANCE_DURATIONS,
                durations_stated=False,
                duration_auto=True,
                accepts_seed=True,
                accepts_audio=True,
                good_for=good_for,
            )
        )
    return offers


def _others() -> list[Offer]:
    return [
        *_both(
            "grok_imagine_1_5",
            "Grok Imagine 1.5",
            XAI,
            ratios=GROK_RATIOS,
            resolutions=GROK_RESOLUTIONS,
            durations=SIX_OR_TEN,
            durations_stated=False,
            prompt_required=True,
            image_ratios=(),
            image_prompt_required=False,
            good_for="xAI's video model, 480p to 1080p.",
        ),
        *_both(
            "grok_imagine_1_5_lite",
            "Grok Imagine 1.5 Lite",
            XAI,
            ratios=GROK_LITE_RATIOS,
            durations=SIX_OR_TEN,
            durations_stated=False,
            prompt_required=True,
            image_ratios=GROK_LITE_IMAGE_RATIOS,
            image_prompt_required=False,
            good_for="Grok Imagine, lighter and cheaper.",
        ),
        *_both(
            "wan3",
            "Wan 3",
            ALIBABA,
            ratios=WAN_RATIOS,
            durations=FIVE_OR_TEN,
            durations_stated=False,
            prompt_required=True,
            accepts_audio=True,
            good_for="Alibaba's Wan, with sound on or off.",
        ),
        *_both(
            "wan3_prime",
            "Wan 3 Prime",
            ALIBABA,
            ratios=WAN_RATIOS,
            durations=FIVE_OR_TEN,
            durations_stated=False,
            prompt_required=True,
            accepts_audio=True,
            good_for="Wan's best, with sound.",
        ),
        *_both(
            "happyhorse_1_0",
            "HappyHorse 1.0",
            HAPPYHORSE,
            ratios=HAPPYHORSE_RATIOS,
            durations=FIVE_OR_TEN,
            durations_stated=False,
            prompt_required=True,
            prompt_max=2500,
            image_ratios=(),
            image_resolutions=HAPPYHORSE_RESOLUTIONS,
            image_prompt_required=False,
            good_for="Lively animation and characters.",
        ),
    ]


def _upscalers() -> list[Offer]:
    # Runway's enhance_frame_rate (a new frame rate, not more pixels) is not offered yet.
    return [
        Offer(
            "magnific_video_upscaler_creative",
            "Magnific Creative Upscaler",
            MAGNIFIC,
            VIDEO_UPSCALE,
            video_field="videoUri",
            accepts_prompt=False,
            resolutions=("720p", "1k", "2k", "4k"),
            good_for="Upscales a finished video, up to 4K, adding detail.",
        )
    ]


def _offers() -> dict[tuple[str, str], Offer]:
    rows = [*_runway(), *_google(), *_kling(), *_minimax(), *_bytedance(), *_others(), *_upscalers()]
    table = {(offer.model, offer.endpoint): offer for offer in rows}
    assert len(table) == len(rows), "a model is in the table twice for one endpoint"
    return table


OFFERS = _offers()
MAKERS = (RUNWAY, GOOGLE, KLING, MINIMAX, BYTEDANCE, XAI, ALIBABA, HAPPYHORSE, MAGNIFIC)
