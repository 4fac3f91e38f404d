"""A create's JSON body, as Runway's API takes it, turned into the VideoRequest the form makes;
and the product's problems with a request put back into Runway's words (its field names, as
paths into the body).

Only the shape is judged here (which fields this endpoint has, what a media URI holds, what a model
requires): every rule about values (ratios, durations, prompt lengths, images, clips) is the
catalog's and the creation service's, exactly as for the form.
"""

from dataclasses import dataclass, field
from typing import IO, Any

from api.media import Media, MediaProblem, json_type, media_from
from videos import catalog
from videos.catalog import VideoRequest

# One problem with a body: where (keys and list indexes from the top; () for the whole body) and what.
Path = tuple[str | int, ...]
Issue = tuple[Path, str]

# The body's settings every endpoint may carry, by the product's name for each: the catalog judges
# which a model takes and what values it takes.
_SETTINGS = {
    "promptText": "prompt",
    "ratio": "ratio",
    "duration": "duration",
    "seed": "seed",
    "resolution": "resolution",
    "audio": "audio",
    "negativePrompt": "negative_prompt",
    "bodyControl": "body_control",
    "expressionIntensity": "expression_intensity",
}
# The media fields of each endpoint (a clip's field is the model's own: videoUri or promptVideo), each
# required where the endpoint has it; the OpenAPI document (api/openapi.py) says the same from here.
MEDIA_FIELDS = {
    catalog.TEXT_TO_VIDEO: (),
    catalog.IMAGE_TO_VIDEO: ("promptImage",),
    catalog.VIDEO_TO_VIDEO: ("videoUri", "promptVideo"),
    catalog.VIDEO_UPSCALE: ("videoUri",),
    catalog.CHARACTER_PERFORMANCE: ("character", "reference"),
}
# Where the product's problems with a field point in the body.
_PRODUCT_TO_WIRE = {product: wire for wire, product in _SETTINGS.items()} | {
    "image": "promptImage",
    "image_url": "promptImage",
    "last_image": "promptImage",
    "performance": "reference",
}
REQUIRED = "Required"


@dataclass
class Parsed:
    """A body read: the request it asks for (None when it has issues), and the files it opened."""

    request: VideoRequest | None = None
    issues: list[Issue] = field(default_factory=list)
    opened: list[IO[bytes]] = field(default_factory=list)

    def close(self) -> None:
        for file in self.opened:
            file.close()


def text_issues(value: Any, path: Path = ()) -> list[Issue]:
    """Strings of a JSON body no database can keep: a NUL character, or half of a surrogate pair
    (which JSON's \\u escapes can spell); in a key or a value, at any depth."""
    if isinstance(value, str):
        return [] if _storable(value) else [(path, "Text may not contain NUL characters or unpaired surrogates.")]
    if isinstance(value, list):
        return [issue for index, item in enumerate(value) for issue in text_issues(item, (*path, index))]
    if isinstance(value, dict):
        found: list[Issue] = []
        for key, item in value.items():
            found += text_issues(key, path) + text_issues(item, (*path, key))
        return found
    return []


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def request_from(endpoint: str, body: Any, *, user_id: int) -> Parsed:
    """Read a create's body for `endpoint`; the caller closes what it opened."""
    parsed = Parsed()
    if not isinstance(body, dict):
        parsed.issues.append(((), f"Expected object, received {json_type(body)}"))
        return parsed
    offer = _offer(endpoint, body.get("model"), parsed)
    if offer is None:
        return parsed
    for name in body:
        if name != "model" and name not in _SETTINGS and name not in MEDIA_FIELDS[endpoint]:
            parsed.issues.append(((name,), f"Unrecognized key: {name!r} is not a field this server takes."))
    parsed.issues.extend(_missing(offer, body))
    fields: dict[str, Any] = {product: body[wire] for wire, product in _SETTINGS.items() if wire in body}
    prompt = fields.pop("prompt", "")
    if not isinstance(prompt, str):
        parsed.issues.append((("promptText",), f"Expected string, received {json_type(prompt)}"))
    fields.update(_media(endpoint, offer, body, user_id, parsed))
    if parsed.issues:
        return parsed
    parsed.request = VideoRequest(
        prompt=prompt,
        model=offer.model,
        upscale=endpoint == catalog.VIDEO_UPSCALE,
        **fields,
    )
    return parsed


def _offer(endpoint: str, model: object, parsed: Parsed) -> catalog.Offer | None:
    models = [name for name, offered_on in catalog.OFFERS if offered_on == endpoint]
    offer = catalog.offer_for(model=model, endpoint=endpoint) if isinstance(model, str) else None
    if offer is None:
        expected = " | ".join(f"'{name}'" for name in models)
        parsed.issues.append((("model",), f"Invalid discriminator value. Expected {expected}"))
    return offer


def _missing(offer: catalog.Offer, body: dict[str, Any]) -> list[Issue]:
    """The fields the model requires that the body leaves out (the product would fill in a default)."""
    required = {
        "promptText": offer.prompt_required,
        "ratio": offer.ratio_required,
        "duration": offer.duration_required,
    }
    return [((name,), REQUIRED) for name, needed in required.items() if needed and name not in body]


def _media(endpoint: str, offer: catalog.Offer, body: dict[str, Any], user_id: int, parsed: Parsed) -> dict[str, Any]:
    """The request's files and image URL, from the endpoint's media fields."""
    if endpoint == catalog.IMAGE_TO_VIDEO:
        return _frames(body.get("promptImage"), user_id, parsed)
    if endpoint in (catalog.VIDEO_TO_VIDEO, catalog.VIDEO_UPSCALE):
        clip = _one(body, offer.video_field, user_id, parsed, url_allowed=False)
        return {"video": clip.file}
    if endpoint == catalog.CHARACTER_PERFORMANCE:
        return _character(body, user_id, parsed)
    return {}


def _one(body: dict[str, Any], name: str, user_id: int, parsed: Parsed, *, url_allowed: bool) -> Media:
    if name not in body:
        parsed.issues.append(((name,), REQUIRED))
        return Media()
    return _read((name,), body[name], user_id, parsed, url_allowed=url_allowed)


def _read(path: Path, uri: object, user_id: int, parsed: Parsed, *, url_allowed: bool) -> Media:
    try:
        media = media_from(uri, user_id=user_id, url_allowed=url_allowed)
    except MediaProblem as exc:
        parsed.issues.append((path, str(exc)))
        return Media()
    if media.file is not None:
        parsed.opened.append(media.file)
    return media


def _frames(value: object, user_id: int, parsed: Parsed) -> dict[str, Any]:
    """promptImage: one URI (the first frame), or a list of {uri, position} of first and last."""
    if value is None:
        parsed.issues.append((("promptImage",), REQUIRED))
        return {}
    if not isinstance(value, list):
        first = _read(("promptImage",), value, user_id, parsed, url_allowed=True)
        return {"image": first.file, "image_url": first.url}
    found: dict[str, Media] = {}
    for index, item in enumerate(value):
        path: Path = ("promptImage", index)
        position = item.get("position") if isinstance(item, dict) else None
        if position not in ("first", "last") or position in found:
            parsed.issues.append(((*path, "position"), "Expected 'first' | 'last', each at most once"))
            continue
        found[position] = _read((*path, "uri"), item.get("uri"), user_id, parsed, url_allowed=position == "first")
    if "first" not in found:
        parsed.issues.append((("promptImage",), "A first frame is required."))
        return {}
    return {
        "image": found["first"].file,
        "image_url": found["first"].url,
        "last_image": found.get("last", Media()).file,
    }


def _character(body: dict[str, Any], user_id: int, parsed: Parsed) -> dict[str, Any]:
    """character: {type: image | video, uri}; reference: {type: video, uri}, the performance."""
    character, reference = body.get("character"), body.get("reference")
    media: dict[str, Any] = {}
    if not isinstance(character, dict) or character.get("type") not in ("image", "video"):
        parsed.issues.append((("character",), "Expected {type: 'image' | 'video', uri: string}"))
    elif character["type"] == "image":
        image = _read(("character", "uri"), character.get("uri"), user_id, parsed, url_allowed=True)
        media.update(image=image.file, image_url=image.url)
    else:
        media["video"] = _read(("character", "uri"), character.get("uri"), user_id, parsed, url_allowed=False).file
    if not isinstance(reference, dict) or reference.get("type") != "video":
        parsed.issues.append((("reference",), "Expected {type: 'video', uri: string}"))
    else:
        media["performance"] = _read(
            ("reference", "uri"), reference.get("uri"), user_id, parsed, url_allowed=False
        ).file
    return media


def issues_from(problems: dict[str, list[str]], *, endpoint: str, model: str) -> list[Issue]:
    """The creation service's problems ({product field: messages}) as issues at the body's paths."""
    offer = catalog.offer_for(model=model, endpoint=endpoint)
    wire = dict(_PRODUCT_TO_WIRE)
    if offer is not None and offer.video_field:
        wire["video"] = offer.video_field
    if endpoint == catalog.CHARACTER_PERFORMANCE:
        wire.update(image="character", image_url="character", video="character")
    issues: list[Issue] = []
    for name, messages in problems.items():
        path: Path = (wire.get(name, name),) if name in wire or name == "model" else ()
        issues.extend((path, message) for message in messages)
    return issues
