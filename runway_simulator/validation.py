"""Wire-level checks of a request: its headers, and its body against Runway's contract as the
simulator holds it (contract.py, from the pinned SDK's own types), judged as Runway's (zod)
validator judges and worded as it words them.

The contract says what each model takes; a small supplement here adds what runway-api.md says and
the SDK's types do not: a promptText is non-empty, a seed is from 0 to 4294967295, a gen4_turbo
duration is from 2 to 10, and a media URI follows Runway's rules (media.py), a runway:// one being
an upload of this simulator's (uploads.py).
"""

import hmac
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from runway_simulator import media
from runway_simulator.server import Issue, Reply, error

API_VERSION = "2024-11-06"
SEED_MAX = 4_294_967_295

_KEY_FORMAT = re.compile(r"key_[0-9a-f]{128}")

# What runway-api.md adds to a model's top-level fields, where the field exists (the contract's own
# limits win): a promptText is non-empty, a seed a 32-bit unsigned integer.
_FIELD_SUPPLEMENT: dict[str, dict[str, Any]] = {
    "promptText": {"minLength": 1},
    "seed": {"minimum": 0, "maximum": SEED_MAX},
}
# What runway-api.md adds to one model's fields: the SDK types gen4_turbo's duration as any integer.
_MODEL_SUPPLEMENT: dict[str, dict[str, dict[str, Any]]] = {"gen4_turbo": {"duration": {"minimum": 2, "maximum": 10}}}
# Media the SDK types loosely (a bare `str`, or a list of `object`) without saying which: a
# promptImage is images; kling_4's referenceVideos are videos.
_MEDIA_SUPPLEMENT = {"promptImage": "image", "referenceVideos": "video"}

Path = tuple[str | int, ...]


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


# -- create bodies ---------------------------------------------------------------------------------


def model_schemas(contract: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each endpoint's models' body schemas, from the contract, with the supplement added."""
    return {
        endpoint: {model: supplemented(schema) for model, schema in models.items()}
        for endpoint, models in contract["endpoints"].items()
    }


def supplemented(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's body schema with what runway-api.md adds to it (see the module docstring)."""
    properties = dict(schema["properties"])
    [model] = properties["model"]["enum"]
    for name, limits in {**_FIELD_SUPPLEMENT, **_MODEL_SUPPLEMENT.get(model, {})}.items():
        if name in properties:
            properties[name] = {**limits, **properties[name]}
    for name, kind in _MEDIA_SUPPLEMENT.items():
        if name in properties:
            properties[name] = _with_media(properties[name], kind)
    return {**schema, "properties": properties}


def _with_media(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """`schema` with its strings (and its untyped list items) that do not say which media they are made `kind`."""
    if "anyOf" in schema:
        return {**schema, "anyOf": [_with_media(branch, kind) for branch in schema["anyOf"]]}
    if schema.get("type") == "array":
        return {**schema, "items": _with_media(schema["items"], kind)}
    if schema.get("type") in ("string", "any"):
        return {"media": kind, **schema}
    return schema


def create_issues(
    models: dict[str, dict[str, Any]], body: Any, *, runway_uri_problem: Callable[[str], str | None]
) -> list[Issue]:
    """What is wrong with a create `body` for an endpoint whose models' schemas are `models`.

    `runway_uri_problem` says what is wrong with a runway:// URI (None when it is an upload in use).
    """
    if not isinstance(body, dict):
        return [((), f"Expected object, received {_type_name(body)}")]
    schema = models.get(body["model"]) if isinstance(body.get("model"), str) else None
    if schema is None:
        return [(("model",), f"Invalid discriminator value. Expected {_joined(list(models))}")]
    return check(schema, body, runway_uri_problem=runway_uri_problem)


def check(schema: dict[str, Any], value: Any, *, runway_uri_problem: Callable[[str], str | None]) -> list[Issue]:
    """Every issue `value` has against `schema` (contract.py's format)."""
    return _Checker(runway_uri_problem).check(schema, value, ())


@dataclass(frozen=True)
class _Checker:
    """Zod's judgement of a value against a schema: types, enums, limits, unions, strict objects."""

    runway_uri_problem: Callable[[str], str | None]

    def check(self, schema: dict[str, Any], value: Any, path: Path) -> list[Issue]:
        if "anyOf" in schema:
            return self._any_of(schema["anyOf"], value, path)
        if "enum" in schema:
            return _enum_issues(schema["enum"], value, path)
        kind = schema["type"]
        if kind == "object":
            return self._object(schema, value, path)
        if kind == "array":
            return self._array(schema, value, path)
        if kind == "string":
            return self._string(schema, value, path)
        if kind == "any":
            return self._untyped(schema, value, path)
        return _scalar_issues(schema, value, path)

    def _any_of(self, branches: list[dict[str, Any]], value: Any, path: Path) -> list[Issue]:
        """Valid if any branch is; else, for objects told apart by one field (zod's discriminatedUnion,
        as a character's "type"), the issues of the branch that field names; else those of the branch
        made for this kind of value that comes closest (so a list's problems have their own paths), or
        zod's "Invalid input"."""
        key = _discriminator(branches) if isinstance(value, dict) else None
        if key is not None:
            return self._discriminated(branches, key, value, path)
        fitting = []
        for branch in branches:
            issues = self.check(branch, value, path)
            if not issues:
                return []
            if _json_kind(value) in _kinds(branch):
                fitting.append(issues)
        return min(fitting, key=len) if fitting else [(path, "Invalid input")]

    def _discriminated(
        self, branches: list[dict[str, Any]], key: str, value: dict[str, Any], path: Path
    ) -> list[Issue]:
        tags = [branch["properties"][key]["enum"][0] for branch in branches]
        for tag, branch in zip(tags, branches, strict=True):
            if _json_kind(value.get(key)) == _json_kind(tag) and value.get(key) == tag:
                return self.check(branch, value, path)
        return [((*path, key), f"Invalid discriminator value. Expected {_joined(tags)}")]

    def _object(self, schema: dict[str, Any], value: Any, path: Path) -> list[Issue]:
        if not isinstance(value, dict):
            return [(path, f"Expected object, received {_type_name(value)}")]
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        issues: list[Issue] = []
        for name, field in properties.items():
            if name in value:
                issues += self.check(field, value[name], (*path, name))
            elif name in required:
                issues.append(((*path, name), "Required"))
        unknown = [name for name in value if name not in properties]
        if unknown and not schema.get("additionalProperties"):
            issues.append((path, "Unrecognized key(s) in object: " + ", ".join(f"'{name}'" for name in unknown)))
        return issues

    def _array(self, schema: dict[str, Any], value: Any, path: Path) -> list[Issue]:
        if not isinstance(value, list):
            return [(path, f"Expected array, received {_type_name(value)}")]
        issues: list[Issue] = []
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            issues.append((path, f"Array must contain at most {schema['maxItems']} element(s)"))
        for index, item in enumerate(value):
            issues += self.check(schema["items"], item, (*path, index))
        return issues

    def _string(self, schema: dict[str, Any], value: Any, path: Path) -> list[Issue]:
        if not isinstance(value, str):
            return [(path, f"Expected string, received {_type_name(value)}")]
        issues = [(path, message) for message in _length_problems(schema, value)]
        if not issues and "media" in schema:
            problem = self._media_problem(value, schema["media"])
            issues += [(path, problem)] if problem else []
        return issues

    def _untyped(self, schema: dict[str, Any], value: Any, path: Path) -> list[Issue]:
        """Anything goes (the SDK's `object`), but a media item's URI, as a string or an object's `uri`."""
        if "media" not in schema:
            return []
        if isinstance(value, dict) and isinstance(value.get("uri"), str):
            value, path = value["uri"], (*path, "uri")
        problem = self._media_problem(value, schema["media"]) if isinstance(value, str) else None
        return [(path, problem)] if problem else []

    def _media_problem(self, uri: str, kind: str) -> str | None:
        if uri[:16].lower().startswith(media.UPLOAD_SCHEME):
            return self.runway_uri_problem(uri)
        return media.uri_problem(uri, kind)


def _discriminator(branches: list[dict[str, Any]]) -> str | None:
    """The field that every branch, each an object, pins to a literal of its own; None if there is none."""
    if len(branches) < 2 or any(branch.get("type") != "object" for branch in branches):
        return None
    shared: set[str] = set.intersection(*(set(branch.get("properties", {})) for branch in branches))
    for name in sorted(shared):
        tags = [_tag(branch["properties"][name]) for branch in branches]
        if None not in tags and len(set(tags)) == len(tags):
            return name
    return None


def _tag(schema: dict[str, Any]) -> str | None:
    """The one value a schema allows (as JSON, so 1 and true differ); None if it allows more or other."""
    enum = schema.get("enum", [])
    return json.dumps(enum[0]) if len(enum) == 1 else None


def _length_problems(schema: dict[str, Any], value: str) -> list[str]:
    # Lengths as JavaScript counts them: in UTF-16 code units (an emoji is 2).
    length = len(value.encode("utf-16-le")) // 2
    problems = []
    if length < schema.get("minLength", 0):
        problems.append(f"String must contain at least {schema['minLength']} character(s)")
    if length > schema.get("maxLength", math.inf):
        problems.append(f"String must contain at most {schema['maxLength']} character(s)")
    return problems


def _scalar_issues(schema: dict[str, Any], value: Any, path: Path) -> list[Issue]:
    """An integer, a number or a boolean: zod's z.number() (and .int()), z.boolean()."""
    if schema["type"] == "boolean":
        return [] if isinstance(value, bool) else [(path, f"Expected boolean, received {_type_name(value)}")]
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return [(path, f"Expected number, received {_type_name(value)}")]
    issues: list[Issue] = []
    if schema["type"] == "integer" and not float(value).is_integer():
        issues.append((path, "Expected integer, received float"))
    if value < schema.get("minimum", -math.inf):
        issues.append((path, f"Number must be greater than or equal to {_js(schema['minimum'])}"))
    if value > schema.get("maximum", math.inf):
        issues.append((path, f"Number must be less than or equal to {_js(schema['maximum'])}"))
    return issues


def _enum_issues(options: list[Any], value: Any, path: Path) -> list[Issue]:
    if any(_json_kind(value) == _json_kind(option) and value == option for option in options):
        return []
    if _json_kind(value) not in {_json_kind(option) for option in options}:
        return [(path, f"Expected {_joined(options)}, received {_type_name(value)}")]
    return [(path, f"Invalid enum value. Expected {_joined(options)}, received '{_js(value)}'")]


def _joined(options: list[Any]) -> str:
    """Options as zod lists them: 'a' | 'b' | 4."""
    return " | ".join(f"'{option}'" if isinstance(option, str) else _js(option) for option in options)


def _js(value: Any) -> str:
    """A value as JavaScript prints it (5, not 5.0; true, not True)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value)


def _kinds(schema: dict[str, Any]) -> set[str]:
    """The JSON kinds of value a schema is made for."""
    if "anyOf" in schema:
        return set().union(*(_kinds(branch) for branch in schema["anyOf"]))
    if "enum" in schema:
        return {_json_kind(option) for option in schema["enum"]}
    kind = schema["type"]
    if kind == "any":
        return {"null", "boolean", "number", "string", "array", "object"}
    return {"number" if kind == "integer" else kind}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return _KINDS.get(type(value), type(value).__name__)


_KINDS: dict[type, str] = {str: "string", list: "array", dict: "object"}


def _type_name(value: Any) -> str:
    """A value's type as zod names it in "received ...": null, boolean, number (nan), string, array, object."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return _json_kind(value)


# -- POST /v1/uploads ------------------------------------------------------------------------------

UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"filename": {"type": "string", "minLength": 1, "maxLength": 255}, "type": {"enum": ["ephemeral"]}},
    "required": ["filename", "type"],
}


def upload_issues(body: Any) -> list[Issue]:
    """What is wrong with a POST /v1/uploads body, as the SDK sends it: {"filename", "type": "ephemeral"}."""
    return check(UPLOAD_SCHEMA, body, runway_uri_problem=lambda uri: None)


# -- POST /v1/organization/usage -------------------------------------------------------------------

MAX_USAGE_DAYS = 90


def usage_range(body: Any, *, today: date) -> tuple[tuple[date, date] | None, list[Issue]]:
    """The days POST /v1/organization/usage asks for, [start, before), as the SDK documents its body:
    `startDate` (default 30 days before today) and `beforeDate` (default 30 days after the start, at
    most 90), each YYYY-MM-DD in UTC; or the issues with it."""
    body = {} if body is None else body
    if not isinstance(body, dict):
        return None, [((), "Expected object, received " + _type_name(body))]
    unknown = sorted(set(body) - {"startDate", "beforeDate"})
    if unknown:
        return None, [((), "Unrecognized key(s) in object: " + ", ".join(f"'{name}'" for name in unknown))]
    issues: list[Issue] = []
    days: dict[str, date] = {}
    for name in ("startDate", "beforeDate"):
        if name in body:
            day = _day(body[name])
            if day is None:
                issues.append(((name,), "Invalid date: expected YYYY-MM-DD"))
            else:
                days[name] = day
    if issues:
        return None, issues
    start = days.get("startDate", today - timedelta(days=30))
    before = days.get("beforeDate", start + timedelta(days=30))
    if before <= start:
        return None, [(("beforeDate",), "beforeDate must be after startDate")]
    if (before - start).days > MAX_USAGE_DAYS:
        return None, [(("beforeDate",), f"beforeDate must be at most {MAX_USAGE_DAYS} days after startDate")]
    return (start, before), []


def _day(value: Any) -> date | None:
    """A YYYY-MM-DD string as a date; None for anything else."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
