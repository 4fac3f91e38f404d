"""The simulator's statement of Runway's contract (runway_simulator/contract.json) is the pinned SDK's.

contract.json is derived from the installed runwayml package's request types; when the SDK is
bumped and the file is not regenerated, the first test fails and says how to regenerate it. The
spot checks hold the derivation to facts written down elsewhere (docs, runway-api.md), so that a
derivation that reads the SDK wrongly cannot agree with itself and pass.
"""

import textwrap
from pathlib import Path
from typing import Any

import pytest

from runway_simulator import contract

ENDPOINTS = contract.load()["endpoints"]

# runway-api.md's lists of models, per endpoint.
TEXT_TO_VIDEO_MODELS = {
    "gen4.5",
    "veo3.1",
    "veo3.1_fast",
    "kling_4",
    "kling3.0_pro",
    "kling3.0_standard",
    "kling3.0_4k",
    "klingO3_pro",
    "klingO3_standard",
    "klingO3_4k",
    "kling2.5_turbo_pro",
    "hailuo3",
    "h3_max",
    "happyhorse_1_0",
    "seedance2",
    "seedance2_fast",
    "seedance2_mini",
    "seedance2_5",
    "gemini_omni_flash",
    "gemini_omni_flash_1.1",
    "grok_imagine_1_5",
    "grok_imagine_1_5_lite",
    "wan3",
    "wan3_prime",
}
VIDEO_TO_VIDEO_MODELS = {
    "aleph2",
    "kling_4",
    "klingO3_4k",
    "klingO3_pro",
    "klingO3_standard",
    "hailuo3",
    "seedance2",
    "seedance2_fast",
    "seedance2_mini",
    "seedance2_5",
    "gemini_omni_flash",
    "gemini_omni_flash_1.1",
}


def schema(endpoint: str, model: str) -> dict[str, Any]:
    found: dict[str, Any] = ENDPOINTS[endpoint][model]
    return found


def test_contract_json_is_what_the_installed_sdk_says() -> None:
    saved = contract.load()
    derived = contract.derive(contract.sdk_types_dir())

    regenerate = "run `python -m runway_simulator.contract` and read the diff of runway_simulator/contract.json"
    assert saved["sdk"] == contract.sdk_version(), f"contract.json is from runwayml {saved['sdk']}: {regenerate}"
    assert saved["endpoints"] == derived["endpoints"], f"contract.json differs from the installed SDK: {regenerate}"


def test_each_endpoint_has_the_models_runway_lists() -> None:
    assert set(ENDPOINTS) == {
        "text_to_video",
        "image_to_video",
        "video_to_video",
        "video_upscale",
        "character_performance",
    }
    assert set(ENDPOINTS["text_to_video"]) == TEXT_TO_VIDEO_MODELS
    assert set(ENDPOINTS["image_to_video"]) == TEXT_TO_VIDEO_MODELS | {"gen4_turbo"}
    assert set(ENDPOINTS["video_to_video"]) == VIDEO_TO_VIDEO_MODELS
    assert set(ENDPOINTS["video_upscale"]) == {"magnific_video_upscaler_creative", "enhance_frame_rate"}
    assert set(ENDPOINTS["character_performance"]) == {"act_two"}
    assert "veo3" not in {model for models in ENDPOINTS.values() for model in models}


def test_gen4_5_text_to_video_takes_only_the_two_landscape_and_portrait_ratios() -> None:
    gen45 = schema("text_to_video", "gen4.5")

    assert gen45["properties"]["ratio"] == {"enum": ["1280:720", "720:1280"]}
    assert set(gen45["required"]) == {"model", "promptText", "ratio", "duration"}
    # Limits the SDK states only in words, made numbers.
    assert gen45["properties"]["duration"] == {"type": "integer", "minimum": 2, "maximum": 10}
    assert gen45["properties"]["promptText"]["maxLength"] == 1000


@pytest.mark.parametrize("endpoint", ["text_to_video", "image_to_video"])
@pytest.mark.parametrize("model", ["veo3.1", "veo3.1_fast"])
def test_veo_3_1_lasts_4_6_or_8_seconds(endpoint: str, model: str) -> None:
    assert schema(endpoint, model)["properties"]["duration"] == {"enum": [4, 6, 8]}


def test_veo_takes_a_last_frame_and_gen4_turbo_only_a_first() -> None:
    def positions(model: str) -> list[str]:
        [items] = [
            b["items"] for b in schema("image_to_video", model)["properties"]["promptImage"]["anyOf"] if "items" in b
        ]
        enum: list[str] = items["properties"]["position"]["enum"]
        return enum

    assert positions("veo3.1") == ["first", "last"]
    assert positions("gen4_turbo") == ["first"]


def test_act_two_needs_a_character_and_a_reference_video() -> None:
    act_two = schema("character_performance", "act_two")

    assert {"character", "reference"} <= set(act_two["required"])
    assert act_two["properties"]["reference"]["properties"]["uri"]["media"] == "video"
    kinds = [branch["properties"]["uri"]["media"] for branch in act_two["properties"]["character"]["anyOf"]]
    assert kinds == ["image", "video"]


def test_aleph2_needs_a_video_and_takes_up_to_five_keyframes() -> None:
    aleph = schema("video_to_video", "aleph2")

    assert "videoUri" in aleph["required"]
    assert aleph["properties"]["videoUri"] == {"type": "string", "media": "video"}
    assert aleph["properties"]["keyframes"]["maxItems"] == 5


def test_derive_reads_required_fields_wire_names_literals_unions_and_stated_limits(tmp_path: Path) -> None:
    for endpoint, module in contract.ENDPOINT_MODULES.items():
        (tmp_path / f"{module}.py").write_text(_types_module(endpoint))

    derived = contract.derive(tmp_path)

    assert derived["endpoints"]["text_to_video"] == {
        "m1": {
            "type": "object",
            "properties": {
                "model": {"enum": ["m1"]},
                "promptText": {"type": "string", "maxLength": 1000, "minLength": 1},
                "duration": {
                    "anyOf": [{"enum": ["auto"]}, {"type": "integer", "minimum": 3, "maximum": 15}],
                },
                "promptImage": {
                    "anyOf": [
                        {"media": "image", "type": "string"},
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"uri": {"type": "string", "media": "image"}},
                                "required": ["uri"],
                            },
                        },
                    ]
                },
            },
            "required": ["model", "promptText"],
        }
    }


def _types_module(endpoint: str) -> str:
    """A made-up SDK types module in Stainless's shape, with one model, m1."""
    return textwrap.dedent(
        '''
        from typing import Union, Iterable
        from typing_extensions import Literal, Required, Annotated, TypeAlias, TypedDict

        class M1(TypedDict, total=False):
            model: Required[Literal["m1"]]

            prompt_text: Required[Annotated[str, PropertyInfo(alias="promptText")]]
            """A non-empty string up to 1000 characters (measured in UTF-16 code units)."""

            duration: Union[Literal["auto"], int]
            """The number of seconds: an integer from 3 to 15, or `auto`."""

            prompt_image: Annotated[Union[str, Iterable[M1Image]], PropertyInfo(alias="promptImage")]

        class M1Image(TypedDict, total=False):
            uri: Required[str]
            """A HTTPS URL, Runway upload URI, or base64 data URI containing an encoded image."""

        CreateParams: TypeAlias = Union[M1]
        '''
    ).replace("CreateParams", f"{endpoint.title().replace('_', '')}CreateParams")
