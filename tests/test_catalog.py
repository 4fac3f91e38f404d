"""The model table and the request rules (check_fields, check_request), against Runway's API documentation."""

import io

import pytest

from videos import catalog
from videos.catalog import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, VIDEO_TO_VIDEO

GEN4_RATIOS = {"1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"}
VEO_RATIOS = {"1280:720", "720:1280", "1080:1920", "1920:1080"}
EMOJI = "\U0001f3d4"  # snow-capped mountain: outside the BMP, two UTF-16 code units


def check(**overrides):
    """check_fields with a valid gen4.5 text-to-video request as the starting point."""
    fields = {
        "endpoint": TEXT_TO_VIDEO,
        "model": "gen4.5",
        "prompt_text": "A serene mountain landscape at sunset",
        "ratio": "1280:720",
        "duration": 5,
        "seed": 42,
        "has_image": False,
    }
    fields.update(overrides)
    return catalog.check_fields(**fields)


def check_image(**overrides):
    """check_fields with a valid gen4_turbo image-to-video request as the starting point."""
    fields = {"endpoint": IMAGE_TO_VIDEO, "model": "gen4_turbo", "has_image": True}
    fields.update(overrides)
    return check(**fields)


# --- valid requests --------------------------------------------------------------------------


def test_the_documented_example_request_is_accepted():
    assert check() == {}


def test_gen4_turbo_with_an_image_is_accepted():
    assert check_image() == {}


def test_gen4_turbo_with_an_image_needs_no_prompt():
    assert check_image(prompt_text=None) == {}


def test_gen4_turbo_duration_is_optional():
    assert check_image(duration=None) == {}


@pytest.mark.parametrize("model", ["veo3.1", "veo3.1_fast"])
@pytest.mark.parametrize("endpoint", [TEXT_TO_VIDEO, IMAGE_TO_VIDEO])
def test_veo_models_are_offered_on_both_endpoints(model, endpoint):
    problems = check(endpoint=endpoint, model=model, seed=None, duration=8, has_image=endpoint == IMAGE_TO_VIDEO)

    assert problems == {}


# --- models and endpoints --------------------------------------------------------------------


def test_an_unknown_model_is_rejected():
    problems = check(model="gen3a_turbo")

    assert set(problems) == {"model"}
    assert "gen3a_turbo" in problems["model"]


def test_an_unknown_model_on_image_to_video_points_at_the_list():
    problems = check_image(model="gen2")

    assert problems["model"] == "There is no model 'gen2': choose one of the models the form lists."


def test_a_model_that_only_edits_clips_says_so():
    assert check(model="aleph2")["model"] == "Aleph 2.0 edits a clip: add one, or choose another model."


def test_a_clip_goes_to_video_to_video_with_a_model_that_edits_one():
    clip = {"endpoint": VIDEO_TO_VIDEO, "has_video": True, "ratio": None, "duration": None, "seed": None}
    assert check(**clip, model="aleph2") == {}
    assert check(**clip, model="gen4.5") == {
        "model": "Gen-4.5 cannot edit a clip: remove the clip, or choose a model that edits one."
    }
    assert check(**clip, model="aleph2", has_image=True) == {
        "image": "Give a clip to edit or an image to start from, not both."
    }
    assert check(**{**clip, "duration": 5}, model="seedance2") == {}
    assert check(**{**clip, "duration": 5}, model="aleph2") == {
        "duration": "Aleph 2.0 takes no duration when it edits a clip."
    }
    assert check(model="gen4.5", has_video=True) == {"video": "Only a video-to-video request takes a clip."}


def test_the_input_decides_the_endpoint():
    assert catalog.VideoRequest(prompt="x").endpoint == TEXT_TO_VIDEO
    assert catalog.VideoRequest(prompt="x", image_url="https://example.com/a.png").endpoint == IMAGE_TO_VIDEO
    assert catalog.VideoRequest(prompt="x", video=io.BytesIO(b"clip")).endpoint == VIDEO_TO_VIDEO
    resolved = catalog.VideoRequest(prompt="x", video=io.BytesIO(b"clip")).resolved(
        text_model="gen4.5", image_model="gen4_turbo"
    )
    assert (resolved.model, resolved.ratio, resolved.duration) == ("aleph2", None, None)


def test_gen4_turbo_without_an_image_says_it_needs_one_and_names_those_that_start_from_text():
    problems = check(model="gen4_turbo")

    assert set(problems) == {"model"}

    assert problems["model"] == (
        "Gen-4 Turbo needs an image to start from: add one, or choose a model that starts from text alone."
    )


def test_an_unknown_endpoint_is_rejected():
    problems = check(endpoint="generate")

    assert set(problems) == {"endpoint"}


def test_models_lists_each_model_once_every_model_runway_makes_video_with():
    assert len(catalog.MODELS) == len(set(catalog.MODELS)) == 27  # and the upscaler, chosen by its button
    assert {"gen4.5", "gen4_turbo", "aleph2", "veo3.1", "kling3.0_pro", "seedance2", "wan3_prime"} <= set(
        catalog.MODELS
    )


def test_the_model_menu_groups_every_model_by_its_maker():
    groups = dict(catalog.models_by_maker())
    assert [m for models in groups.values() for m, _ in models] == list(catalog.MODELS)
    assert groups["Runway"] == [
        ("gen4.5", "Gen-4.5"),
        ("gen4_turbo", "Gen-4 Turbo"),
        ("aleph2", "Aleph 2.0"),
        ("act_two", "Act-Two"),
    ]
    assert ("seedance2", "Seedance 2.0") in groups["ByteDance"]


# --- prompt ----------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", " ", "   \t\n  "])
def test_an_empty_or_blank_prompt_is_rejected(prompt):
    problems = check(prompt_text=prompt)

    assert set(problems) == {"prompt"}
    assert "empty" in problems["prompt"]


def test_a_missing_prompt_is_rejected_where_runway_requires_one():
    assert set(check(prompt_text=None)) == {"prompt"}
    assert set(check_image(model="gen4.5", prompt_text=None)) == {"prompt"}
    assert set(check(model="veo3.1", seed=None, duration=8, prompt_text=None)) == {"prompt"}


def test_a_blank_prompt_is_rejected_even_where_the_prompt_is_optional():
    assert set(check_image(prompt_text="   ")) == {"prompt"}


def test_a_prompt_of_1000_characters_is_accepted():
    assert check(prompt_text="a" * 1000) == {}


def test_a_prompt_of_1001_characters_is_rejected():
    problems = check(prompt_text="a" * 1001)

    assert set(problems) == {"prompt"}
    assert "1001" in problems["prompt"]
    assert "1000" in problems["prompt"]


def test_an_emoji_counts_two_towards_the_limit():
    prompt = "a" * 999 + EMOJI
    assert len(prompt) == 1000  # Python counts it as one character

    problems = check(prompt_text=prompt)

    assert set(problems) == {"prompt"}
    assert "1001" in problems["prompt"]


def test_a_prompt_with_an_emoji_at_exactly_1000_units_is_accepted():
    assert check(prompt_text="a" * 998 + EMOJI) == {}


def test_bmp_characters_beyond_ascii_count_one():
    # "é" and CJK characters are one UTF-16 unit each, though more than one byte in UTF-8.
    assert check(prompt_text="é" * 500 + "山" * 500) == {}


def test_utf16_length_counts_code_units():
    assert catalog.utf16_length("") == 0
    assert catalog.utf16_length("abc") == 3
    assert catalog.utf16_length(EMOJI) == 2
    assert catalog.utf16_length("é山") == 2


def test_a_prompt_that_is_not_text_is_rejected():
    assert set(check(prompt_text=123)) == {"prompt"}


def test_a_prompt_with_a_lone_surrogate_is_reported_not_raised():
    # json.loads('"\\ud83d"') and argv decoded with surrogateescape can both produce one.
    problems = check(prompt_text="a mountain \udcff")

    assert "prompt" in problems


# --- ratios ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", ["1280:720", "720:1280"])
def test_gen45_text_to_video_accepts_landscape_and_portrait(ratio):
    assert check(ratio=ratio) == {}


@pytest.mark.parametrize("ratio", ["1104:832", "832:1104", "960:960", "1584:672", "1920:1080", "16:9"])
def test_gen45_text_to_video_rejects_other_ratios(ratio):
    problems = check(ratio=ratio)

    assert set(problems) == {"ratio"}
    assert ratio in problems["ratio"]
    assert "1280:720" in problems["ratio"]


@pytest.mark.parametrize("model", ["gen4_turbo", "gen4.5"])
@pytest.mark.parametrize("ratio", sorted(GEN4_RATIOS))
def test_gen4_image_to_video_accepts_six_ratios(model, ratio):
    assert check_image(model=model, ratio=ratio) == {}


@pytest.mark.parametrize("model", ["gen4_turbo", "gen4.5"])
def test_gen4_image_to_video_offers_exactly_the_documented_ratios(model):
    assert set(catalog.offer_for(model=model, endpoint=IMAGE_TO_VIDEO).ratios) == GEN4_RATIOS


def test_gen45_text_to_video_offers_exactly_two_ratios():
    assert set(catalog.offer_for(model="gen4.5", endpoint=TEXT_TO_VIDEO).ratios) == {"1280:720", "720:1280"}


@pytest.mark.parametrize("ratio", ["1080:1920", "1920:1080"])
def test_gen4_image_to_video_rejects_veo_only_ratios(ratio):
    assert set(check_image(ratio=ratio)) == {"ratio"}


@pytest.mark.parametrize("model", ["veo3.1", "veo3.1_fast"])
@pytest.mark.parametrize("endpoint", [TEXT_TO_VIDEO, IMAGE_TO_VIDEO])
def test_veo_offers_exactly_four_ratios(model, endpoint):
    assert set(catalog.offer_for(model=model, endpoint=endpoint).ratios) == VEO_RATIOS


@pytest.mark.parametrize("ratio", sorted(VEO_RATIOS))
def test_veo_accepts_its_ratios(ratio):
    assert check(model="veo3.1", seed=None, duration=4, ratio=ratio) == {}


@pytest.mark.parametrize("ratio", ["1104:832", "960:960", "1584:672"])
def test_veo_rejects_gen4_only_ratios(ratio):
    assert set(check(model="veo3.1_fast", seed=None, duration=4, ratio=ratio)) == {"ratio"}


def test_a_missing_ratio_is_rejected():
    assert set(check(ratio=None)) == {"ratio"}


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize("duration", range(2, 11))
def test_gen4_accepts_whole_seconds_from_2_to_10(duration):
    assert check(duration=duration) == {}
    assert check_image(duration=duration) == {}


@pytest.mark.parametrize("duration", [0, 1, 11, -5, 60])
def test_gen4_rejects_durations_outside_2_to_10(duration):
    problems = check(duration=duration)

    assert set(problems) == {"duration"}
    assert str(duration) in problems["duration"]


@pytest.mark.parametrize("duration", [True, False, 5.0, 5.5, "5"])
def test_durations_must_be_integers_not_booleans_floats_or_text(duration):
    assert set(check(duration=duration)) == {"duration"}
    assert set(check(model="veo3.1", seed=None, duration=duration)) == {"duration"}


def test_gen45_requires_a_duration():
    assert set(check(duration=None)) == {"duration"}
    assert set(check_image(model="gen4.5", duration=None)) == {"duration"}


@pytest.mark.parametrize("duration", [4, 6, 8])
def test_veo_accepts_4_6_or_8_seconds(duration):
    assert check(model="veo3.1", seed=None, duration=duration) == {}
    assert check_image(model="veo3.1_fast", seed=None, duration=duration) == {}


@pytest.mark.parametrize("duration", [2, 3, 5, 7, 9, 10])
def test_veo_rejects_other_durations(duration):
    assert set(check(model="veo3.1", seed=None, duration=duration)) == {"duration"}


def test_veo_duration_is_optional():
    assert check(model="veo3.1", seed=None, duration=None) == {}


# --- seed ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 4294967295, None])
def test_gen4_accepts_seeds_from_0_to_4294967295(seed):
    assert check(seed=seed) == {}
    assert check_image(seed=seed) == {}


@pytest.mark.parametrize("seed", [-1, 4294967296, 2**64])
def test_gen4_rejects_seeds_out_of_range(seed):
    problems = check(seed=seed)

    assert set(problems) == {"seed"}
    assert "4294967295" in problems["seed"]


@pytest.mark.parametrize("seed", [True, False, 4.0, "42"])
def test_seeds_must_be_integers(seed):
    assert set(check(seed=seed)) == {"seed"}


@pytest.mark.parametrize("model", ["veo3.1", "veo3.1_fast"])
@pytest.mark.parametrize("seed", [0, 42, catalog.SEED_MAX])
def test_veo_takes_a_seed_as_runwayml_524_does(model, seed):
    assert check(model=model, duration=8, seed=seed) == {}
    assert check_image(model=model, duration=8, seed=seed) == {}


@pytest.mark.parametrize("model", ["veo3.1", "veo3.1_fast"])
def test_veo_refuses_a_seed_out_of_range(model):
    assert set(check(model=model, duration=8, seed=catalog.SEED_MAX + 1)) == {"seed"}


def test_a_seed_is_refused_by_a_model_that_takes_none():
    problems = check(model="kling3.0_pro", ratio="1920:1080", duration=5, seed=7)

    assert problems == {"seed": "Kling 3.0 Pro does not take a seed."}
    assert check(model="kling3.0_pro", ratio="1920:1080", duration=5, seed=None) == {}


# --- the settings only some models take --------------------------------------------------------


def test_a_resolution_is_checked_against_the_models_own():
    assert check(model="hailuo3", ratio="16:9", duration=6, seed=None, resolution="2k") == {}
    assert check(model="hailuo3", ratio="16:9", duration=6, seed=None, resolution="4k") == {
        "resolution": "Hailuo 3 does not offer the resolution '4k'. Choose one of: 768p, 2k, 768P, 2K."
    }
    assert check(resolution="720p") == {"resolution": "Gen-4.5 takes no resolution."}


def test_a_model_without_ratios_refuses_one_and_needs_none():
    image = {"endpoint": IMAGE_TO_VIDEO, "model": "grok_imagine_1_5", "has_image": True, "seed": None, "duration": 6}
    assert check(**image, ratio=None) == {}
    assert check(**image, ratio="16:9") == {"ratio": "Grok Imagine 1.5 takes no ratio from an image."}


def test_sound_is_a_choice_only_where_the_model_has_it():
    assert check(model="veo3.1", duration=8, audio=False) == {}
    assert check(audio=False) == {"audio": "Gen-4.5 has no choice of sound."}
    assert check(model="veo3.1", duration=8, audio="no") == {"audio": "Sound is on or off."}


def test_a_negative_prompt_is_veos_alone_and_has_a_limit():
    assert check(model="veo3.1", duration=8, negative_prompt="blur") == {}
    assert check(negative_prompt="blur") == {"negative_prompt": "Gen-4.5 takes no list of what to avoid."}
    too_long = check(model="veo3.1", duration=8, negative_prompt="x" * 1001)
    assert "at most 1000" in too_long["negative_prompt"]


def test_each_model_has_its_own_prompt_limit():
    assert check(model="seedance2_5", ratio="1280:720", seed=None, prompt_text="x" * 15000) == {}
    assert "at most 15000 for Seedance 2.5" in check(model="seedance2_5", seed=None, prompt_text="x" * 15001)["prompt"]
    assert "at most 1000 for Gen-4.5" in check(prompt_text="x" * 1001)["prompt"]
    # Where the SDK states none, ours.
    problem = check(model="wan3", ratio="1280:720", seed=None, prompt_text="x" * 2501)["prompt"]
    assert f"at most {catalog.UNSTATED_PROMPT_MAX} for Wan 3" in problem


def test_a_request_keeps_its_settings_as_runway_names_them():
    request = catalog.VideoRequest(
        prompt="Waves", model="veo3.1", ratio="1280:720", duration=8, seed=3, audio=False, negative_prompt="gulls"
    )
    assert request.params == {"ratio": "1280:720", "duration": 8, "seed": 3, "audio": False, "negativePrompt": "gulls"}
    assert catalog.VideoRequest(prompt="Waves").params == {}


def test_the_seed_limit_is_runways():
    assert catalog.SEED_MAX == 4294967295


# --- image -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gen4_turbo", "gen4.5", "veo3.1", "veo3.1_fast"])
def test_image_to_video_requires_an_image(model):
    problems = check_image(model=model, seed=None, duration=8 if model.startswith("veo") else 5, has_image=False)

    assert set(problems) == {"image"}


@pytest.mark.parametrize("model", ["gen4.5", "veo3.1", "veo3.1_fast"])
def test_text_to_video_rejects_an_image(model):
    problems = check(model=model, seed=None, duration=8 if model.startswith("veo") else 5, has_image=True)

    assert set(problems) == {"image"}


# --- several problems ------------------------------------------------------------------------


def test_every_problem_is_reported_at_once():
    problems = check(prompt_text=" ", ratio="1:1", duration=1, seed=-1, has_image=True)

    assert set(problems) == {"prompt", "ratio", "duration", "seed", "image"}


# --- defaults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "endpoint", "ratio", "duration"),
    [
        ("gen4_turbo", IMAGE_TO_VIDEO, "1280:720", 5),
        ("gen4.5", IMAGE_TO_VIDEO, "1280:720", 5),
        ("gen4.5", TEXT_TO_VIDEO, "1280:720", 5),
        ("veo3.1", IMAGE_TO_VIDEO, "1280:720", 4),
        ("veo3.1", TEXT_TO_VIDEO, "1280:720", 4),
        ("veo3.1_fast", IMAGE_TO_VIDEO, "1280:720", 4),
        ("veo3.1_fast", TEXT_TO_VIDEO, "1280:720", 4),
    ],
)
def test_default_ratio_and_duration_for_each_offer(model, endpoint, ratio, duration):
    offer = catalog.offer_for(model=model, endpoint=endpoint)

    assert offer.default_ratio == ratio
    assert offer.default_duration == duration
    # The defaults are themselves acceptable.
    assert offer.default_ratio in offer.ratios
    assert offer.default_duration in offer.durations


def test_every_offer_accepts_its_own_defaults():
    for (model, endpoint), offer in catalog.OFFERS.items():
        problems = catalog.check_fields(
            endpoint=endpoint,
            model=model,
            prompt_text="A lighthouse in a storm",
            ratio=offer.default_ratio,
            duration=offer.default_duration,
            seed=1 if offer.accepts_seed else None,
            has_image=endpoint in (IMAGE_TO_VIDEO, catalog.CHARACTER_PERFORMANCE),
            has_video=endpoint in (VIDEO_TO_VIDEO, catalog.VIDEO_UPSCALE),
            has_performance=endpoint == catalog.CHARACTER_PERFORMANCE,
        )
        assert problems == {}, (model, endpoint)


def test_default_ratio_falls_back_to_the_first_offered_ratio():
    offer = catalog.Offer(
        model="m",
        label="M",
        maker="Runway",
        endpoint=TEXT_TO_VIDEO,
        ratios=("960:960", "1584:672"),
        durations=(8, 10),
        prompt_required=True,
        duration_required=True,
    )

    assert offer.default_ratio == "960:960"
    assert offer.default_duration == 8


@pytest.mark.parametrize(
    ("model", "endpoint", "prompt_required", "duration_required", "accepts_seed"),
    [
        ("gen4_turbo", IMAGE_TO_VIDEO, False, False, True),
        ("gen4.5", IMAGE_TO_VIDEO, True, True, True),
        ("gen4.5", TEXT_TO_VIDEO, True, True, True),
        ("veo3.1", IMAGE_TO_VIDEO, False, False, True),
        ("veo3.1", TEXT_TO_VIDEO, True, False, True),
        ("veo3.1_fast", IMAGE_TO_VIDEO, False, False, True),
        ("veo3.1_fast", TEXT_TO_VIDEO, True, False, True),
    ],
)
def test_required_fields_match_runways_tables(model, endpoint, prompt_required, duration_required, accepts_seed):
    offer = catalog.offer_for(model=model, endpoint=endpoint)

    assert offer.prompt_required is prompt_required
    assert offer.duration_required is duration_required
    assert offer.accepts_seed is accepts_seed


# --- the request value -----------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def test_a_request_without_an_image_resolves_to_the_text_model_and_its_defaults():
    request = catalog.VideoRequest(prompt="A lighthouse").resolved(text_model="veo3.1", image_model="gen4_turbo")

    assert (request.endpoint, request.model, request.ratio, request.duration) == (
        TEXT_TO_VIDEO,
        "veo3.1",
        "1280:720",
        4,
    )
    assert catalog.check_request(request) == {}


def test_a_request_with_an_image_url_resolves_to_the_image_model():
    asked = catalog.VideoRequest(prompt="", image_url="https://example.com/a.png", ratio="960:960", duration=7)

    request = asked.resolved(text_model="gen4.5", image_model="gen4_turbo")

    assert (request.endpoint, request.model, request.ratio, request.duration) == (
        IMAGE_TO_VIDEO,
        "gen4_turbo",
        "960:960",
        7,
    )
    assert asked.model is None  # the value itself never changes


def test_check_request_names_the_same_fields_as_the_form():
    request = catalog.VideoRequest(prompt=" ", model="gen4.5", ratio="1:1", duration=1, seed=-1)

    assert set(catalog.check_request(request)) == {"prompt", "ratio", "duration", "seed"}


def test_check_request_refuses_an_image_url_that_is_not_https():
    request = catalog.VideoRequest(
        prompt="x", model="gen4_turbo", ratio="1280:720", image_url="http://example.com/a.png"
    )

    assert catalog.check_request(request) == {"image_url": "The image URL must start with https://."}


def test_check_request_refuses_a_file_that_is_not_an_image_and_rewinds_a_good_one():
    bad = catalog.VideoRequest(prompt="x", model="gen4_turbo", ratio="1280:720", image=io.BytesIO(b"GIF89a" + PNG))
    good_file = io.BytesIO(PNG)
    good = catalog.VideoRequest(prompt="x", model="gen4_turbo", ratio="1280:720", image=good_file)

    assert catalog.check_request(bad) == {"image": "The file is not a JPEG, PNG or WebP image."}
    assert catalog.check_request(good) == {}
    assert good_file.tell() == 0


@pytest.mark.parametrize(
    ("head", "kind"),
    [(b"\xff\xd8\xff\xe0" + bytes(12), "image/jpeg"), (PNG[:16], "image/png"), (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp")],
)
def test_image_type_reads_the_first_bytes(head, kind):
    assert catalog.image_type(head) == kind
    assert catalog.image_type(b"GIF89a" + bytes(10)) is None


def _estimate(model, duration, endpoint=TEXT_TO_VIDEO, audio=None, prices=None, ceiling=100):
    offer = catalog.offer_for(model=model, endpoint=endpoint)
    price = catalog.price_for(offer, audio=audio, prices=prices, ceiling=ceiling)
    return catalog.estimated_credits(offer, duration=duration, price=price), price.known


def test_a_video_costs_its_seconds_at_the_published_price():
    assert _estimate("gen4.5", 5) == (60, True)  # Runway's own example answer
    assert _estimate("veo3.1", 8) == (320, True)
    assert _estimate("gen4_turbo", 10, IMAGE_TO_VIDEO) == (50, True)


def test_veo_without_sound_costs_its_silent_price():
    assert _estimate("veo3.1", 8, audio=False) == (160, True)
    assert _estimate("veo3.1_fast", 4, audio=False) == (40, True)
    assert _estimate("veo3.1_fast", 4, audio=True) == (60, True)


def test_a_model_without_a_published_price_is_reserved_at_the_ceiling_unless_the_operator_names_one():
    assert _estimate("kling3.0_pro", 10) == (1000, False)
    assert _estimate("kling3.0_pro", 10, ceiling=60) == (600, False)
    assert _estimate("kling3.0_pro", 10, prices={"kling3.0_pro": 20.5}) == (205, True)
    # The operator's figure wins over the published one too (Runway's own estimate corrects it).
    assert _estimate("gen4.5", 5, prices={"gen4.5": 10}) == (50, True)


def test_a_fractional_price_is_rounded_up_to_whole_credits():
    assert _estimate("kling3.0_pro", 3, prices={"kling3.0_pro": 0.5}) == (2, True)


def test_the_ceiling_is_above_every_published_price():
    published = [offer.price for offer in catalog.TABLE.values() if offer.price is not None]
    assert max(published) < catalog.DEFAULT_PRICE_CEILING


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://example.com/a.png", "must start with https://"),
        ("https://203.0.113.7/a.png", "not an IP address"),
        ("https://[2001:db8::1]/a.png", "not an IP address"),
        ("https://localhost/a.png", "public domain name"),
        ("https://images.localhost/a.png", "public domain name"),
        ("https://intranet/a.png", "public domain name"),
        ("https://example.com/" + "a" * 2048, "longer than 2048"),
    ],
)
def test_an_image_url_runway_cannot_fetch_is_refused_on_the_form(url, words):
    problem = catalog.image_url_problem(url)
    assert problem is not None and words in problem


@pytest.mark.parametrize(
    "url",
    [
        "https://127.1/a.png",  # a URL parser's short form of 127.0.0.1
        "https://0177.0.0.1/a.png",  # octal
        "https://2130706433/a.png",  # one number
        "https://0x7f.1/a.png",  # hex
        "https://%31%32%37.0.0.1/a.png",  # percent-encoded
        "https://\uff11\uff12\uff17.0.0.1/a.png",  # full-width digits
        "https://10.0.0.1./a.png",  # a trailing dot
    ],
)
def test_every_spelling_of_an_ip_address_is_refused_as_runway_refuses_it(url):
    assert catalog.image_url_problem(url) == "The image URL must use a domain name, not an IP address."


@pytest.mark.parametrize(
    "url", ["https://localhost./a.png", "https://example.com:99999/a.png", "https://a b.com/a.png"]
)
def test_localhost_with_a_dot_a_port_that_is_none_or_a_space_are_refused(url):
    assert catalog.image_url_problem(url) is not None


def test_an_image_url_on_a_public_domain_is_accepted():
    assert catalog.image_url_problem("https://cdn.example.com/first.png") is None
