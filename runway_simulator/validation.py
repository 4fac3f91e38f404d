"""Wire-level checks of a request: its headers, its JSON types, the shape of promptImage, and the
catalog's rules (through `videos.catalog`, the one table of models, which is Django-free)."""

import base64
import binascii
import hmac
import re
from datetime import date, timedelta
from typing import Any

from runway_simulator.server import Reply, error
from videos import catalog

API_VERSION = "2024-11-06"

_KEY_FORMAT = re.compile(r"key_[0-9a-f]{128}")
# The catalog names fields as this project does; Runway's issues name them as on the wire.
_WIRE_FIELDS = {"prompt": "promptText", "image": "promptImage", "endpoint": None}
_WIRE_TYPES: dict[str, type] = {
    "model": str,
    "promptText": str,
    "ratio": str,
    "duration": int,
    "seed": int,
    "audio": bool,
    "negativePrompt": str,
    "contentModeration": dict,
}
# The fields each model takes besides model, promptText, ratio, duration, seed (and promptImage on
# image_to_video), as runwayml 5.24's request types list them. Gen-4.5's outputFormat and
# proresProfile change the price and the file, which the simulator does not do: it refuses them.
_MODEL_FIELDS = {
    "gen4_turbo": {"contentModeration"},
    "gen4.5": {"contentModeration"},
    "veo3.1": {"audio", "negativePrompt"},
    "veo3.1_fast": {"audio", "negativePrompt"},
}
_COMMON_FIELDS = {"model", "promptText", "ratio", "duration", "seed"}
# Veo takes a last frame as well as a first one; Gen-4 a first frame only.
_IMAGE_POSITIONS = {"veo3.1": ("first", "last"), "veo3.1_fast": ("first", "last")}


def header_refusal(headers: dict[str, str], *, api_key: str | None) -> Reply | None:
    """The 401 or 400 that `headers` (with lower-case names) earn; None when they are right.

    With no `api_key`, any key of Runway's shape is accepted.
    """
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        return error(401, "Missing API key: send Authorization: Bearer <key>.")
    accepted = hmac.compare_digest(key, api_key) if api_key else bool(_KEY_FORMAT.fullmatch(key))
    if not accepted:
        return error(401, "Invalid API key.")
    if headers.get("x-runway-version") != API_VERSION:
        return error(400, f"The X-Runway-Version header must be {API_VERSION}.")
    return None


def type_issues(body: dict[str, Any]) -> dict[str | None, str]:
    """Fields present with the wrong JSON type, in the words of Runway's (zod) validator."""
    issues: dict[str | None, str] = {}
    if "model" not in body:
        issues["model"] = "Required"
    for name, expected in _WIRE_TYPES.items():
        if name not in body:
            continue
        value = body[name]
        if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
            wanted = {str: "string", int: "integer", bool: "boolean", dict: "object"}[expected]
            issues[name] = f"Expected {wanted}, received {_type_name(value)}"
    return issues


def unknown_field_issues(body: dict[str, Any]) -> dict[str | None, str]:
    """Fields the model does not take, refused as Runway's (zod) validator refuses them.

    Runway's documents do not say; a strict refusal is what its validator does for an object it
    declares strict, and it is the safer stand-in: a client that misspells `seed` learns it here
    rather than paying for a video made with a random one.
    """
    # promptImage on text_to_video is left to the catalog, whose message says more.
    known = _COMMON_FIELDS | {"promptImage"} | _MODEL_FIELDS.get(body["model"], set().union(*_MODEL_FIELDS.values()))
    unknown = [name for name in body if name not in known]
    if not unknown:
        return {}
    return {None: "Unrecognized key(s) in object: " + ", ".join(f"'{name}'" for name in unknown)}


def content_moderation_problem(value: Any) -> str | None:
    if set(value) - {"publicFigureThreshold"}:
        return "Only publicFigureThreshold may be set."
    if value.get("publicFigureThreshold", "auto") not in ("auto", "low"):
        return 'publicFigureThreshold must be "auto" or "low".'
    return None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def image_problem(value: Any, *, model: Any) -> str | None:
    """The shape of promptImage and its URIs' rules; the simulator never fetches the image."""
    if isinstance(value, str):
        return _image_uri_problem(value)
    if not isinstance(value, list) or not value:
        return "Expected a URI or a list of {uri, position} objects."
    positions = _IMAGE_POSITIONS.get(model, ("first",))
    for item in value:
        if not isinstance(item, dict):
            return "Expected a list of {uri, position} objects."
        if item.get("position") not in positions:
            return f"Each image needs a position: {' or '.join(repr(p) for p in positions)}."
        problem = _image_uri_problem(item.get("uri"))
        if problem:
            return problem
    return None


def _image_uri_problem(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri:
        return "Expected an image URI."
    if uri.startswith("https://"):
        return _url_problem(uri)
    if uri.startswith("data:"):
        return _data_uri_problem(uri)
    if uri.startswith("runway://"):
        return None
    return "An image must be an HTTPS URL, a data:image URI or a runway:// URI."


def _url_problem(url: str) -> str | None:
    """Runway's rules for an image URL, the catalog's (the form checks the same)."""
    return catalog.image_url_problem(url)


def _data_uri_problem(uri: str) -> str | None:
    mime, _, rest = uri[len("data:") :].partition(";")
    if mime not in catalog.IMAGE_TYPES or not rest.startswith("base64,"):
        return f"A data URI must be base64 of one of: {', '.join(catalog.IMAGE_TYPES)}."
    if len(uri) > catalog.IMAGE_DATA_URI_MAX_LENGTH:
        return f"A data URI may be at most {catalog.IMAGE_DATA_URI_MAX_LENGTH} characters."
    payload = rest[len("base64,") :]
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return "A data URI's content must be valid base64."
    if not payload:
        return "A data URI must not be empty."
    return None


def catalog_issues(endpoint: str, body: dict[str, Any]) -> dict[str | None, str]:
    """The catalog's verdict on a body whose types are already right, keyed by wire field."""
    problems = catalog.check_fields(
        endpoint=endpoint,
        model=body["model"],
        prompt_text=body.get("promptText"),
        ratio=body.get("ratio"),
        duration=body.get("duration"),
        seed=body.get("seed"),
        has_image=body.get("promptImage") is not None,
    )
    return {_WIRE_FIELDS.get(name, name): message for name, message in problems.items()}


MAX_USAGE_DAYS = 90


def usage_range(body: Any, *, today: date) -> tuple[tuple[date, date] | None, dict[str | None, str]]:
    """The days POST /v1/organization/usage asks for, [start, before), as the SDK documents its body:
    `startDate` (default 30 days before today) and `beforeDate` (default 30 days after the start, at
    most 90), each YYYY-MM-DD in UTC; or the issues with it."""
    body = {} if body is None else body
    if not isinstance(body, dict):
        return None, {None: "Expected object, received " + _type_name(body)}
    unknown = sorted(set(body) - {"startDate", "beforeDate"})
    if unknown:
        return None, {None: "Unrecognized key(s) in object: " + ", ".join(f"'{name}'" for name in unknown)}
    issues: dict[str | None, str] = {}
    days: dict[str, date] = {}
    for name in ("startDate", "beforeDate"):
        if name in body:
            day = _day(body[name])
            if day is None:
                issues[name] = "Invalid date: expected YYYY-MM-DD"
            else:
                days[name] = day
    if issues:
        return None, issues
    start = days.get("startDate", today - timedelta(days=30))
    before = days.get("beforeDate", start + timedelta(days=30))
    if before <= start:
        return None, {"beforeDate": "beforeDate must be after startDate"}
    if (before - start).days > MAX_USAGE_DAYS:
        return None, {"beforeDate": f"beforeDate must be at most {MAX_USAGE_DAYS} days after startDate"}
    return (start, before), {}


def _day(value: Any) -> date | None:
    """A YYYY-MM-DD string as a date; None for anything else."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
