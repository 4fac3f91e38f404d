"""The simulator's validator on its own: nested paths, unions, enums, unknown keys and media URIs,
judged by the contract (contract.json) and worded as Runway's zod validator words them; and runway://
URIs, good only for an upload whose file arrived, for 24 hours on the simulator's clock.
"""

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from runway_simulator import ManualClock, RunwaySimulator, contract, media, validation

SCHEMAS = validation.model_schemas(contract.load())
KEY = "key_" + secrets.token_hex(64)
HEADERS = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": "2024-11-06"}
PNG = "data:image/png;base64,iVBORw0KGgo="
IMAGE = "https://example.com/a.png"
VIDEO = "https://example.com/clip.mp4"
DAY = 24 * 3600.0


def issues(endpoint: str, body: Any, *, runway_uri_problem: Any = None) -> list[tuple[tuple[str | int, ...], str]]:
    return validation.create_issues(
        SCHEMAS[endpoint], body, runway_uri_problem=runway_uri_problem or (lambda uri: "not an upload")
    )


def gen4_turbo(prompt_image: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "gen4_turbo", "ratio": "1280:720", "duration": 5, "promptImage": prompt_image, **fields}


def aleph(**fields: Any) -> dict[str, Any]:
    return {"model": "aleph2", "videoUri": VIDEO, **fields}


def act_two(character: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "act_two", "character": character, "reference": {"type": "video", "uri": VIDEO}, **fields}


# -- the shape of a body -------------------------------------------------------------------------


def test_a_body_that_is_not_an_object_is_one_issue_at_the_top() -> None:
    assert issues("text_to_video", ["gen4.5"]) == [((), "Expected object, received array")]


def test_an_unknown_model_is_an_invalid_discriminator_listing_the_endpoints_models() -> None:
    [(path, message)] = issues("video_upscale", {"model": "gen4.5", "videoUri": VIDEO})

    assert path == ("model",)
    assert message == "Invalid discriminator value. Expected 'enhance_frame_rate' | 'magnific_video_upscaler_creative'"


def test_every_missing_required_field_is_its_own_issue() -> None:
    assert issues("text_to_video", {"model": "gen4.5"}) == [
        (("duration",), "Required"),
        (("promptText",), "Required"),
        (("ratio",), "Required"),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            gen4_turbo([{"uri": "http://example.com/a.png", "position": "first"}]),
            [(("promptImage", 0, "uri"), "Expected an HTTPS URL, a data:image/... URI or a runway:// upload URI.")],
        ),
        (
            gen4_turbo([{"uri": IMAGE, "position": "first"}, {"uri": IMAGE}]),
            [(("promptImage", 1, "position"), "Required")],
        ),
        (
            aleph(keyframes=[{"seconds": 1.5, "uri": PNG}, {"seconds": 3, "uri": "data:video/mp4;base64,AAAA"}]),
            [(("keyframes", 1, "uri"), "A data URI here must be base64 of one of: image/jpeg, image/png, image/webp.")],
        ),
        (
            aleph(keyframes=[{"at": 0.5, "uri": PNG, "range": {"start_seconds": 0, "end_seconds": "2"}}]),
            [(("keyframes", 0, "range", "end_seconds"), "Expected number, received string")],
        ),
        (
            aleph(keyframes=[{"at": 1.5, "uri": PNG}]),
            [(("keyframes", 0, "at"), "Number must be less than or equal to 1")],
        ),
        (
            aleph(keyframes=[{"seconds": 1, "uri": PNG}] * 6),
            [(("keyframes",), "Array must contain at most 5 element(s)")],
        ),
        (
            act_two({"type": "image", "uri": "https://127.0.0.1/face.png"}),
            [(("character", "uri"), "The URL must use a domain name, not an IP address.")],
        ),
    ],
    ids=[
        "list-item-uri",
        "list-item-missing-field",
        "keyframe-uri-of-the-wrong-kind",
        "keyframe-range-field",
        "keyframe-fraction",
        "too-many-keyframes",
        "character-uri",
    ],
)
def test_an_issue_deep_in_a_body_has_the_path_to_it(body: dict[str, Any], expected: list[Any]) -> None:
    endpoint = next(endpoint for endpoint, models in SCHEMAS.items() if body["model"] in models)

    assert issues(endpoint, body) == expected


# -- unions --------------------------------------------------------------------------------------


@pytest.mark.parametrize("duration", ["auto", 3, 10])
def test_a_union_takes_a_value_of_any_of_its_branches(duration: Any) -> None:
    body = {"model": "gemini_omni_flash_1.1", "promptText": "A lake", "duration": duration}

    assert issues("text_to_video", body) == []


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        ("soon", "Invalid enum value. Expected 'auto', received 'soon'"),
        (11, "Number must be less than or equal to 10"),
        (True, "Invalid input"),
    ],
    ids=["string", "number", "neither"],
)
def test_a_union_refuses_with_the_branch_made_for_the_kind_of_value_given(duration: Any, message: str) -> None:
    body = {"model": "gemini_omni_flash_1.1", "promptText": "A lake", "duration": duration}

    assert issues("text_to_video", body) == [(("duration",), message)]


def test_a_lone_uri_or_a_list_of_frames_are_both_a_prompt_image() -> None:
    assert issues("image_to_video", gen4_turbo(IMAGE)) == []
    assert issues("image_to_video", gen4_turbo([{"uri": PNG, "position": "first"}])) == []
    assert issues("image_to_video", gen4_turbo({"uri": IMAGE})) == [(("promptImage",), "Invalid input")]


def test_objects_told_apart_by_their_type_are_judged_by_the_branch_their_type_names() -> None:
    # A video character whose URI is an image: the issue is the URI, not the type.
    body = act_two({"type": "video", "uri": PNG})

    assert issues("character_performance", body) == [
        (("character", "uri"), "A data URI here must be base64 of one of: video/mp4, video/quicktime, video/webm.")
    ]
    assert issues("character_performance", act_two({"type": "video", "uri": VIDEO})) == []
    assert issues("character_performance", act_two({"type": "audio", "uri": VIDEO})) == [
        (("character", "type"), "Invalid discriminator value. Expected 'image' | 'video'")
    ]


# -- enums, numbers, strings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ratio", "16:9", "Invalid enum value. Expected '1280:720' | '720:1280', received '16:9'"),
        ("ratio", 1280, "Expected '1280:720' | '720:1280', received number"),
        ("duration", 5.5, "Expected integer, received float"),
        ("duration", 1, "Number must be greater than or equal to 2"),
        ("duration", None, "Expected number, received null"),
        ("seed", 4_294_967_296, "Number must be less than or equal to 4294967295"),
        ("promptText", "", "String must contain at least 1 character(s)"),
        ("promptText", "🎬" * 501, "String must contain at most 1000 character(s)"),  # 1002 UTF-16 units
        ("outputFormat", "gif", None),
    ],
    ids=["ratio", "ratio-number", "duration-float", "duration-low", "duration-null", "seed", "empty", "long", "format"],
)
def test_a_field_out_of_its_enum_or_limits_is_worded_as_zod_words_it(field: str, value: Any, message: str) -> None:
    body = {"model": "gen4.5", "promptText": "A lake", "ratio": "1280:720", "duration": 5, field: value}

    [(path, said)] = issues("text_to_video", body)

    assert path == (field,)
    assert said == message or (message is None and said.startswith("Invalid enum value. Expected 'mp4' | 'prores'"))


def test_a_veo_duration_is_one_of_its_literals() -> None:
    body = {"model": "veo3.1", "promptText": "A lake", "ratio": "1280:720", "duration": 5}

    assert issues("text_to_video", body) == [(("duration",), "Invalid enum value. Expected 4 | 6 | 8, received '5'")]


# -- unknown keys --------------------------------------------------------------------------------


def test_unknown_keys_are_one_issue_per_object_that_has_them() -> None:
    body = aleph(
        prompt_text="snake case",
        contentModeration={"publicFigureThreshold": "low", "strict": True},
        keyframes=[{"seconds": 1, "uri": PNG, "weight": 2}],
    )

    assert issues("video_to_video", body) == [
        (("contentModeration",), "Unrecognized key(s) in object: 'strict'"),
        (("keyframes", 0), "Unrecognized key(s) in object: 'weight'"),
        ((), "Unrecognized key(s) in object: 'prompt_text'"),
    ]


def test_a_field_of_another_model_of_the_same_endpoint_is_unknown() -> None:
    body = {"model": "veo3.1", "promptText": "A lake", "ratio": "1280:720", "contentModeration": {}}

    assert issues("text_to_video", body) == [((), "Unrecognized key(s) in object: 'contentModeration'")]


# -- media URIs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a.png",
        "https://127.1/a.png",
        "https://0177.0.0.1/a.png",
        "https://2130706433/a.png",
        "https://0x7f.1/a.png",
        "https://0x7f000001/a.png",
        "https://[::1]/a.png",
        "https://[::ffff:127.0.0.1]/a.png",
        "https://%31%32%37.0.0.1/a.png",
        "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/a.png",  # full-width digits
        "https://127\u30020\u30020\u30021/a.png",  # ideographic full stops
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1./a.png",
    ],
)
def test_an_https_url_at_an_ip_address_in_any_spelling_is_refused(url: str) -> None:
    assert media.uri_problem(url, "image") == "The URL must use a domain name, not an IP address."
    assert issues("image_to_video", gen4_turbo(url)) == [(("promptImage",), media.uri_problem(url, "image"))]


@pytest.mark.parametrize(
    "url",
    ["https://localhost/a.png", "https://localhost./a.png", "https://LOCALHOST/a.png", "https://cdn.localhost/a.png"],
)
def test_an_https_url_at_localhost_is_refused(url: str) -> None:
    assert (
        media.uri_problem(url, "image") == "The URL must not point at localhost: Runway could only reach itself there."
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://example.com/a.png", "Expected an HTTPS URL, a data:image/... URI or a runway:// upload URI."),
        ("ftp://example.com/a.png", "Expected an HTTPS URL, a data:image/... URI or a runway:// upload URI."),
        ("https://intranet/a.png", "The URL must use a public domain name: Runway cannot fetch it otherwise."),
        ("https:///a.png", "The URL has no host."),
        ("https://example.com:99999/a.png", "Invalid URL."),
        ("https://example.com\\@127.0.0.1/a.png", "Invalid URL."),
        ("https://example.com/a b.png", "Invalid URL."),
        ("https://example.com/" + "a" * 2029, "A URL may be at most 2048 characters."),
    ],
    ids=["http", "ftp", "no-dot", "no-host", "bad-port", "backslash", "space", "too-long"],
)
def test_other_urls_runway_would_not_fetch_are_refused(url: str, problem: str) -> None:
    assert media.uri_problem(url, "image") == problem


@pytest.mark.parametrize(
    "url",
    [
        IMAGE,
        "https://images.example.co.uk/a/b.webp?size=2",
        "HTTPS://Example.com/a.png",
        "https://xn--bcher-kva.example/a.png",
    ],
)
def test_an_https_url_with_a_public_domain_name_is_accepted(url: str) -> None:
    assert media.uri_problem(url, "image") is None
    assert issues("image_to_video", gen4_turbo(url)) == []


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        (PNG, "image"),
        ("data:image/jpeg;base64,/9j/4AAQ", "image"),
        ("data:image/webp;base64,UklGRg==", "image"),
        ("data:video/mp4;base64,AAAAGGZ0eXA=", "video"),
        ("data:video/quicktime;base64,AAAAFGZ0eXA=", "video"),
        ("data:audio/mpeg;base64,SUQz", "audio"),
        ("data:audio/wav;base64,UklGRg==", "audio"),
    ],
)
def test_a_data_uri_of_a_type_runway_takes_for_its_kind_is_accepted(uri: str, kind: str) -> None:
    assert media.uri_problem(uri, kind) is None


@pytest.mark.parametrize(
    ("uri", "kind", "problem"),
    [
        (
            "data:image/gif;base64,R0lGODlh",
            "image",
            "A data URI here must be base64 of one of: image/jpeg, image/png, image/webp.",
        ),
        (PNG, "video", "A data URI here must be base64 of one of: video/mp4, video/quicktime, video/webm."),
        (
            "data:video/mp4;base64,AAAA",
            "image",
            "A data URI here must be base64 of one of: image/jpeg, image/png, image/webp.",
        ),
        (
            "data:image/png,rawbytes",
            "image",
            "A data URI here must be base64 of one of: image/jpeg, image/png, image/webp.",
        ),
        ("data:image/png;base64,", "image", "A data URI must not be empty."),
        ("data:image/png;base64,not base64!", "image", "A data URI's content must be valid base64."),
        ("data:image/png;base64," + "A" * (5 * 1024 * 1024), "image", "A data URI may be at most 5242880 characters."),
    ],
    ids=["gif", "image-as-video", "video-as-image", "not-base64-encoded", "empty", "bad-base64", "over-5-mib"],
)
def test_a_data_uri_of_another_type_or_broken_is_refused(uri: str, kind: str, problem: str) -> None:
    assert media.uri_problem(uri, kind) == problem


def test_a_video_field_takes_a_video_and_an_audio_field_audio() -> None:
    body = {
        "model": "seedance2",
        "promptVideo": "data:video/mp4;base64,AAAAGGZ0eXA=",
        "referenceAudio": [{"type": "audio", "uri": "data:audio/mpeg;base64,SUQz"}, {"type": "audio", "uri": PNG}],
    }

    [(path, message)] = issues("video_to_video", body)

    assert path == ("referenceAudio", 1, "uri")
    assert message.startswith("A data URI here must be base64 of one of: audio/mpeg")


def test_a_runway_uri_is_judged_by_the_store_of_uploads() -> None:
    asked: list[str] = []

    def problem(uri: str) -> str | None:
        asked.append(uri)
        return None if uri.endswith("good") else "no such upload"

    good = issues("image_to_video", gen4_turbo("runway://uploads/good"), runway_uri_problem=problem)
    bad = issues(
        "image_to_video", gen4_turbo([{"uri": "RUNWAY://uploads/bad", "position": "first"}]), runway_uri_problem=problem
    )

    assert good == []
    assert bad == [(("promptImage", 0, "uri"), "no such upload")]
    assert asked == ["runway://uploads/good", "RUNWAY://uploads/bad"]


# -- runway:// URIs over HTTP, on the simulator's clock ------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[RunwaySimulator]:
    with RunwaySimulator(api_key=KEY, clock=clock) as simulator:
        yield simulator


def start_upload(sim: RunwaySimulator) -> dict[str, Any]:
    response = requests.post(
        f"{sim.base_url}/v1/uploads", json={"filename": "frame.png", "type": "ephemeral"}, headers=HEADERS, timeout=5
    )
    assert response.status_code == 200, response.text
    started: dict[str, Any] = response.json()
    return started


def send_file(started: dict[str, Any]) -> None:
    response = requests.post(
        started["uploadUrl"], data=started["fields"], files={"file": ("frame.png", b"\x89PNG" + b"\0" * 600)}, timeout=5
    )
    assert response.status_code == 204, response.text


def create_with(sim: RunwaySimulator, uri: str) -> requests.Response:
    body = gen4_turbo([{"uri": uri, "position": "first"}])
    return requests.post(f"{sim.base_url}/v1/image_to_video", json=body, headers=HEADERS, timeout=5)


def uri_issue(response: requests.Response) -> tuple[int, list[Any]]:
    return response.status_code, [(issue["path"], issue["message"]) for issue in response.json().get("issues", [])]


def test_a_runway_uri_works_once_its_file_arrived_and_for_24_hours_from_then(
    sim: RunwaySimulator, clock: ManualClock
) -> None:
    started = start_upload(sim)
    before_the_file = create_with(sim, started["runwayUri"])
    clock.advance(60.0)
    send_file(started)
    clock.advance(DAY - 1.0)
    last_second = create_with(sim, started["runwayUri"])
    clock.advance(1.0)
    expired = create_with(sim, started["runwayUri"])

    path = ["promptImage", 0, "uri"]
    assert uri_issue(before_the_file) == (
        400,
        [(path, "This runway:// URI has no file yet: POST the file to its uploadUrl first.")],
    )
    assert last_second.status_code == 200, last_second.text
    assert uri_issue(expired) == (400, [(path, "This runway:// URI has expired: uploads last 24 hours.")])


@pytest.mark.parametrize(
    "uri", ["runway://x", "runway://uploads/acf9ba3d-a513-42c9-a646-96e8bc97c691", "runway://uploads/"]
)
def test_a_runway_uri_the_simulator_did_not_hand_out_is_refused(sim: RunwaySimulator, uri: str) -> None:
    assert uri_issue(create_with(sim, uri)) == (
        400,
        [(["promptImage", 0, "uri"], "Unknown runway:// URI: it is not one that POST /v1/uploads handed out.")],
    )
    assert sim.creates == 0
