"""Wire-level checks of a request: its headers, its JSON types, the shape of promptImage, and the
catalog's rules (through `videos.catalog`, the one table of models, which is Django-free)."""

import hmac
import re
from typing import Any

from runway_simulator.server import Reply, error
from videos import catalog

API_VERSION = "2024-11-06"

_KEY_FORMAT = re.compile(r"key_[0-9a-f]{128}")
# The catalog names fields as this project does; Runway's issues name them as on the wire.
_WIRE_FIELDS = {"prompt": "promptText", "image": "promptImage", "endpoint": None}
_WIRE_TYPES: dict[str, type] = {"model": str, "promptText": str, "ratio": str, "duration": int, "seed": int}


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
        if isinstance(value, bool) or not isinstance(value, expected):
            wanted = "string" if expected is str else "integer"
            issues[name] = f"Expected {wanted}, received {_type_name(value)}"
    return issues


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def image_problem(value: Any) -> str | None:
    """The shape of promptImage only; the simulator never fetches the image."""
    if isinstance(value, str):
        return _image_uri_problem(value)
    if not isinstance(value, list) or not value:
        return "Expected a URI or a list of {uri, position} objects."
    for item in value:
        if not isinstance(item, dict):
            return "Expected a list of {uri, position} objects."
        if item.get("position") not in ("first", "last"):
            return 'Each image needs a position, "first" or "last".'
        problem = _image_uri_problem(item.get("uri"))
        if problem:
            return problem
    return None


def _image_uri_problem(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri:
        return "Expected an image URI."
    if uri.startswith("https://"):
        if len(uri) > catalog.IMAGE_URL_MAX_LENGTH:
            return f"An image URL may be at most {catalog.IMAGE_URL_MAX_LENGTH} characters."
        return None
    if uri.startswith("data:"):
        return _data_uri_problem(uri)
    if uri.startswith("runway://"):
        return None
    return "An image must be an HTTPS URL, a data:image URI or a runway:// URI."


def _data_uri_problem(uri: str) -> str | None:
    mime, _, rest = uri[len("data:") :].partition(";")
    if mime not in catalog.IMAGE_TYPES or not rest.startswith("base64,"):
        return f"A data URI must be base64 of one of: {', '.join(catalog.IMAGE_TYPES)}."
    if len(uri) > catalog.IMAGE_DATA_URI_MAX_LENGTH:
        return f"A data URI may be at most {catalog.IMAGE_DATA_URI_MAX_LENGTH} characters."
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
