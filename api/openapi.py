"""The OpenAPI 3.1 document of our /v1/ API (GET /v1/openapi.json), made from the one table of
models (videos/model_table.py): each create endpoint's body is one schema per model, told apart by
`model`, with the fields, values and requirements the catalog checks. The answers are the shapes
of api/answers.py, which Runway's SDK types too.
"""

from typing import Any

from django.conf import settings

from api import wire
from videos import catalog
from videos.model_table import Offer

_URI = {"type": "string", "minLength": 1, "description": "An https:// URL (images only), a data URI, or runway://"}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "docUrl": {"type": "string"},
        "issues": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {
                    "path": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
_CREDITS = {"type": "object", "required": ["credits"], "properties": {"credits": {"type": "number"}}}
_COST = {"type": "object", "required": ["credits"], "properties": {"credits": {"type": "integer"}}}


def _task_schema() -> dict[str, Any]:
    base = {"id": {"type": "string", "format": "uuid"}, "createdAt": {"type": "string", "format": "date-time"}}

    def variant(status: str, extra: dict[str, Any], required: list[str]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["id", "createdAt", "status", *required],
            "properties": {**base, "status": {"const": status}, **extra},
        }

    waiting = {"estimatedCost": _CREDITS}
    return {
        "oneOf": [
            variant("PENDING", waiting, ["estimatedCost"]),
            variant("THROTTLED", waiting, ["estimatedCost"]),
            variant("RUNNING", {**waiting, "progress": {"type": "number", "minimum": 0, "maximum": 1}}, ["progress"]),
            variant(
                "SUCCEEDED",
                {"cost": _COST, "output": {"type": "array", "items": {"type": "string", "format": "uri"}}},
                ["cost", "output"],
            ),
            variant(
                "FAILED",
                {"cost": _COST, "failure": {"type": "string"}, "failureCode": {"type": "string"}},
                ["cost", "failure"],
            ),
            variant("CANCELLED", {"cost": _COST}, ["cost"]),
        ]
    }


def _media_properties(offer: Offer) -> dict[str, Any]:
    if offer.endpoint == catalog.IMAGE_TO_VIDEO:
        frame = {
            "type": "object",
            "required": ["uri", "position"],
            "properties": {"uri": _URI, "position": {"enum": list(offer.frames) or ["first"]}},
        }
        return {"promptImage": {"oneOf": [_URI, {"type": "array", "items": frame, "minItems": 1, "maxItems": 2}]}}
    if offer.endpoint in (catalog.VIDEO_TO_VIDEO, catalog.VIDEO_UPSCALE):
        return {offer.video_field: _URI}
    if offer.endpoint == catalog.CHARACTER_PERFORMANCE:

        def typed(kind: dict[str, Any]) -> dict[str, Any]:
            return {"type": "object", "required": ["type", "uri"], "properties": {"uri": _URI, "type": kind}}

        return {"character": typed({"enum": ["image", "video"]}), "reference": typed({"const": "video"})}
    return {}


def _body_schema(offer: Offer) -> dict[str, Any]:
    """One model's create body, as the catalog checks it."""
    properties: dict[str, Any] = {"model": {"const": offer.model}, **_media_properties(offer), **_settings(offer)}
    required = ["model", *(name for name in wire.MEDIA_FIELDS[offer.endpoint] if name in properties)]
    needed = (
        ("promptText", offer.prompt_required),
        ("ratio", offer.ratio_required),
        ("duration", offer.duration_required),
    )
    required += [name for name, is_needed in needed if is_needed]
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}


def _settings(offer: Offer) -> dict[str, Any]:
    """The settings fields the model takes, with the values the catalog accepts."""
    rows: tuple[tuple[str, bool, dict[str, Any]], ...] = (
        (
            "promptText",
            offer.accepts_prompt,
            {"type": "string", "minLength": 1, "maxLength": catalog.prompt_limit(offer)},
        ),
        ("ratio", bool(offer.ratios), {"enum": list(offer.ratios)}),
        ("duration", bool(offer.durations), {"enum": list(offer.durations)}),
        ("resolution", bool(offer.resolutions), {"enum": list(offer.resolutions)}),
        ("seed", offer.accepts_seed, {"type": "integer", "minimum": 0, "maximum": catalog.SEED_MAX}),
        ("audio", offer.accepts_audio, {"type": "boolean"}),
        (
            "negativePrompt",
            offer.accepts_negative_prompt,
            {"type": "string", "minLength": 1, "maxLength": catalog.NEGATIVE_PROMPT_MAX},
        ),
        ("bodyControl", offer.accepts_body_control, {"type": "boolean"}),
        ("expressionIntensity", bool(offer.expression_intensities), {"enum": list(offer.expression_intensities)}),
    )
    return {name: schema for name, offered, schema in rows if offered}


def _answers(ok: dict[str, Any], *statuses: int) -> dict[str, Any]:
    words = {
        400: "Bad input (with `issues`), or a wrong X-Runway-Version",
        401: "A missing, wrong or revoked key",
        403: "An invalid or expired link or token",
        404: "No such task of yours",
        409: "The upload's file has already arrived",
        429: "A limit, the budget or the key's rate reached: see Retry-After",
        503: "The database is unreachable for a moment: see Retry-After",
    }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {**ok, **{str(status): {"description": words[status], **error} for status in statuses}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}


def _create_operation(endpoint: str) -> dict[str, Any]:
    offers = [offer for (model, offered_on), offer in catalog.OFFERS.items() if offered_on == endpoint]
    created = {
        "type": "object",
        "required": ["id", "estimatedCost"],
        "properties": {"id": {"type": "string", "format": "uuid"}, "estimatedCost": _CREDITS},
    }
    return {
        "post": {
            "operationId": endpoint,
            "summary": f"Start a {endpoint.replace('_', ' ')} task (a job of yours, sent to Runway by the worker)",
            "parameters": [
                {"$ref": "#/components/parameters/Version"},
                {"$ref": "#/components/parameters/IdempotencyKey"},
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"oneOf": [_body_schema(offer) for offer in offers]}}},
            },
            "responses": _answers(
                _json(created, "The task made (or the one this request repeats)"), 400, 401, 429, 503
            ),
        }
    }


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {f"/v1/{endpoint}": _create_operation(endpoint) for endpoint in catalog.ENDPOINTS}
    task_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    version = {"$ref": "#/components/parameters/Version"}
    paths["/v1/tasks/{id}"] = {
        "get": {
            "operationId": "getTask",
            "parameters": [task_id, version],
            "responses": _answers(_json({"$ref": "#/components/schemas/Task"}, "The task"), 400, 401, 404, 429, 503),
        },
        "delete": {
            "operationId": "deleteTask",
            "parameters": [task_id, version],
            "responses": _answers(
                {"204": {"description": "Cancelled if running, and deleted"}}, 400, 401, 404, 429, 503
            ),
        },
    }
    paths["/v1/organization"] = {"get": _organization_operation()}
    paths["/v1/uploads"] = {"post": _upload_operation()}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Runway's API, served by this site",
            "version": settings.RUNWAY_API_VERSION,
            "description": "Runway's paths and wire format, for Runway's own SDKs with a key of this site: tasks "
            "are this site's jobs (their ids ours, their outputs our stored copies), within your limits and budget.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "Version": {
                    "name": "X-Runway-Version",
                    "in": "header",
                    "required": True,
                    "schema": {"const": settings.RUNWAY_API_VERSION},
                },
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 255},
                    "description": "A repeat with the same key within a day answers the first task.",
                },
            },
            "schemas": {"Error": _ERROR, "Task": _task_schema()},
        },
    }


def _organization_operation() -> dict[str, Any]:
    limits = {
        "type": "object",
        "properties": {
            "maxConcurrentGenerations": {"type": ["integer", "null"]},
            "maxDailyGenerations": {"type": ["integer", "null"]},
        },
    }
    usage = {
        "type": "object",
        "required": ["dailyGenerations"],
        "properties": {"dailyGenerations": {"type": "integer"}},
    }
    schema = {
        "type": "object",
        "required": ["creditBalance", "tier", "usage"],
        "properties": {
            "creditBalance": {"type": "integer"},
            "tier": {
                "type": "object",
                "required": ["maxMonthlyCreditSpend", "models"],
                "properties": {
                    "maxMonthlyCreditSpend": {"type": "integer"},
                    "models": {"type": "object", "additionalProperties": limits},
                },
            },
            "usage": {
                "type": "object",
                "required": ["models"],
                "properties": {"models": {"type": "object", "additionalProperties": usage}},
            },
        },
    }
    return {
        "operationId": "getOrganization",
        "parameters": [{"$ref": "#/components/parameters/Version"}],
        "responses": _answers(_json(schema, "Your budget, spend, limits and the last day's use"), 400, 401, 429, 503),
    }


def _upload_operation() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["filename", "type"],
        "properties": {
            "filename": {"type": "string", "minLength": 1, "maxLength": 255},
            "type": {"const": "ephemeral"},
        },
    }
    started = {
        "type": "object",
        "required": ["uploadUrl", "fields", "runwayUri"],
        "properties": {
            "uploadUrl": {"type": "string", "format": "uri"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            "runwayUri": {"type": "string"},
        },
    }
    return {
        "operationId": "createUpload",
        "parameters": [{"$ref": "#/components/parameters/Version"}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": _answers(_json(started, "Where to POST the file, and the URI to use it by"), 400, 401, 429, 503),
    }
