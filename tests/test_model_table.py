"""The model table (videos/model_table.py) against the pinned SDK's own types: every model, ratio,
resolution, duration and required field the two disagree on fails here, so the next SDK bump shows
exactly what changed at Runway. The SDK's types are read afresh from the installed package (by
runway_simulator.contract's reader), not from any copy of ours."""

from typing import Any

import pytest

from runway_simulator import contract
from videos import model_table
from videos.model_table import GENERATION_ENDPOINTS, IMAGE_TO_VIDEO, OFFERS, VIDEO_TO_VIDEO, Offer

SDK = contract.derive(contract.sdk_types_dir())["endpoints"]
SDK_ROWS = [(model, endpoint) for endpoint in GENERATION_ENDPOINTS for model in SDK[endpoint]]


def test_the_table_has_every_model_of_the_sdk_and_no_other():
    ours = {key for key in OFFERS if key[1] in GENERATION_ENDPOINTS}
    assert sorted(ours - set(SDK_ROWS)) == [], "in the table but not in the SDK"
    assert sorted(set(SDK_ROWS) - ours) == [], "in the SDK but not in the table"


def _enum(schema: dict[str, Any] | None) -> list[Any]:
    """The values an enum (or the enum branch of a union) allows."""
    if schema is None:
        return []
    if "enum" in schema:
        return list(schema["enum"])
    return [value for branch in schema.get("anyOf", []) for value in _enum(branch)]


def _integer_branch(schema: dict[str, Any]) -> dict[str, Any] | None:
    if schema.get("type") == "integer":
        return schema
    return next((branch for branch in schema.get("anyOf", []) if branch.get("type") == "integer"), None)


def _sdk_durations(schema: dict[str, Any] | None) -> tuple[tuple[int, ...] | None, bool]:
    """The seconds the SDK allows (None: any whole number, unstated) and whether it takes "auto"."""
    if schema is None:
        return (), False
    values = _enum(schema)
    auto = "auto" in values
    numbers = tuple(sorted(v for v in values if isinstance(v, int)))
    integer = _integer_branch(schema)
    if integer is None:
        return numbers, auto
    if "minimum" in integer and "maximum" in integer:
        return tuple(range(int(integer["minimum"]), int(integer["maximum"]) + 1)), auto
    return None, auto


@pytest.mark.parametrize(("model", "endpoint"), SDK_ROWS, ids=[f"{e}:{m}" for m, e in SDK_ROWS])
def test_each_row_agrees_with_the_sdk(model, endpoint):
    offer = OFFERS[(model, endpoint)]
    schema = SDK[endpoint][model]
    fields, required = schema["properties"], set(schema.get("required", []))
    ratio = fields.get("ratio")
    # A ratio the SDK types as a bare string (Aleph's: the clip's own by default) is not offered.
    assert sorted(offer.ratios) == sorted(_enum(ratio)), "ratios"
    assert offer.ratio_required == ("ratio" in required), "ratio required"
    assert sorted(offer.resolutions) == sorted(_enum(fields.get("resolution"))), "resolutions"
    _check_durations(offer, fields.get("duration"), "duration" in required)
    assert offer.prompt_required == ("promptText" in required), "prompt required"
    assert offer.prompt_max == fields.get("promptText", {}).get("maxLength"), "prompt limit"
    assert offer.accepts_seed == ("seed" in fields), "seed"
    assert offer.accepts_audio == ("audio" in fields), "audio"
    assert offer.accepts_negative_prompt == ("negativePrompt" in fields), "negative prompt"
    if endpoint == IMAGE_TO_VIDEO:
        assert "promptImage" in required
        assert offer.frames == _sdk_frames(fields["promptImage"]), "frames"
    if endpoint == VIDEO_TO_VIDEO:
        assert offer.video_field in required, "the clip's field"


def _check_durations(offer: Offer, schema: dict[str, Any] | None, required: bool) -> None:
    stated, auto = _sdk_durations(schema)
    assert offer.duration_required == required, "duration required"
    assert offer.duration_auto == auto, "duration auto"
    if stated is None:
        # The SDK says only `int`: the maker's seconds, whole and positive, flagged as such.
        assert not offer.durations_stated, "durations are the SDK's? it states none"
        assert offer.durations and all(isinstance(d, int) and d > 0 for d in offer.durations)
    else:
        assert offer.durations == stated, "durations"


def _sdk_frames(schema: dict[str, Any]) -> tuple[str, ...]:
    """The positions a promptImage list takes (a plain list of any: the first frame, as a string)."""
    listed = next(branch for branch in schema["anyOf"] if branch.get("type") == "array")
    position = listed["items"].get("properties", {}).get("position")
    return tuple(_enum(position)) if position else ("first",)


def test_the_upscaler_agrees_with_the_sdk_and_takes_no_prompt():
    offer = OFFERS[("magnific_video_upscaler_creative", model_table.VIDEO_UPSCALE)]
    schema = SDK[model_table.VIDEO_UPSCALE]["magnific_video_upscaler_creative"]
    assert offer.video_field in schema["required"]
    assert sorted(offer.resolutions) == sorted(_enum(schema["properties"]["resolution"]))
    assert "promptText" not in schema["properties"] and not offer.accepts_prompt
    assert set(schema["required"]) == {"model", offer.video_field}


def test_act_two_agrees_with_the_sdk():
    offer = OFFERS[("act_two", model_table.CHARACTER_PERFORMANCE)]
    schema = SDK[model_table.CHARACTER_PERFORMANCE]["act_two"]
    fields = schema["properties"]
    assert set(schema["required"]) == {"model", "character", "reference"}
    assert sorted(offer.ratios) == sorted(_enum(fields["ratio"])) and not offer.ratio_required
    assert offer.expression_intensities == tuple(
        range(fields["expressionIntensity"]["minimum"], fields["expressionIntensity"]["maximum"] + 1)
    )
    assert offer.accepts_body_control == ("bodyControl" in fields)
    assert offer.accepts_seed == ("seed" in fields)
    assert not offer.accepts_prompt and "promptText" not in fields
    assert [branch["properties"]["type"]["enum"] for branch in fields["character"]["anyOf"]] == [["image"], ["video"]]


def test_the_published_prices_are_the_only_ones():
    priced = {offer.model: (offer.price, offer.price_silent) for offer in OFFERS.values() if offer.price is not None}
    assert priced == {"gen4.5": (12, None), "gen4_turbo": (5, None), "veo3.1": (40, 20), "veo3.1_fast": (15, 10)}


def test_every_row_has_a_maker_of_the_table_and_a_line_for_the_readme():
    assert {offer.maker for offer in OFFERS.values()} == set(model_table.MAKERS)
    assert all(offer.good_for and offer.label for offer in OFFERS.values())
    labels = {}
    for offer in OFFERS.values():
        assert labels.setdefault(offer.model, offer.label) == offer.label, "one label per model"
