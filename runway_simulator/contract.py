"""Runway's contract as the simulator holds it: what each endpoint takes, model by model, read from
the pinned official SDK's own request types (`runwayml/types/*_create_params.py`), never from the
product's catalog, so that the two can disagree and a test catches it.

`contract.json` beside this file is the statement the simulator serves by; `python -m
runway_simulator.contract` writes it afresh from the installed SDK, and tests/test_contract.py fails
when the file and the SDK differ (after an SDK bump: run the command and read the diff).

The SDK's types are Stainless-generated TypedDicts, read here with `ast` (not imported) so that
their field docstrings count too: the limits Runway gives only in words ("an integer from 2 to
10", "up to 1000 characters (measured in UTF-16 code units)") become numbers in the schema.

A schema is a small JSON Schema-like dict: {"type": "string"|"integer"|"number"|"boolean"|
"object"|"array"|"any"}, or {"enum": [...]}, or {"anyOf": [...]}; objects have "properties"
(wire name → schema) and "required"; arrays "items" and may have "maxItems"; numbers may have
"minimum"/"maximum", strings "minLength"/"maxLength" (UTF-16 code units) and "media" ("image",
"video" or "audio": the string is a URI of that kind of file, as the field's docstring says: "A HTTPS
URL, Runway upload URI, or base64 data URI ... containing an encoded image"). Limits stated for a
field that is a union go to the branches they apply to (a duration's range to its integer branch).
"""

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

CONTRACT_FILE = Path(__file__).with_name("contract.json")

# The endpoints the simulator serves, and the SDK module that types each one's body.
ENDPOINT_MODULES = {
    "text_to_video": "text_to_video_create_params",
    "image_to_video": "image_to_video_create_params",
    "video_to_video": "video_to_video_create_params",
    "video_upscale": "video_upscale_create_params",
    "character_performance": "character_performance_create_params",
}

_SCALARS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "object": "any"}
# Limits stated in words: "from 2 to 10", "between 1 and 5", "from 0 (faithful) to 100", "a fraction
# [0.0, 1.0]"; "up to 1000 characters"; "non-empty"; "(up to 9)" or "Up to 5 keyframes" of an array;
# "containing an encoded image".
_NUMBER = r"(\d+(?:\.\d+)?)"
_RANGE = re.compile(rf"(?:from|between) {_NUMBER}(?: \([^)]*\))? (?:to|and) {_NUMBER}|\[{_NUMBER}, {_NUMBER}\]")
_MAX_LENGTH = re.compile(r"up to (\d+) characters")
_NON_EMPTY = re.compile(r"\bnon-empty\b", re.IGNORECASE)
_MAX_ITEMS = re.compile(r"\(up to (\d+)\)|\bUp to (\d+) [a-z]+")
_MEDIA = re.compile(r"containing an encoded (image|video|audio)\b")


class _Module:
    """One SDK types module: its TypedDict classes (with field docstrings) and its type aliases."""

    def __init__(self, source: str) -> None:
        tree = ast.parse(source)
        self.classes: dict[str, ast.ClassDef] = {}
        self.aliases: dict[str, ast.expr] = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                self.aliases[node.target.id] = node.value

    def object_schema(self, name: str) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        body = self.classes[name].body
        for index, statement in enumerate(body):
            if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
                continue
            field = _Field(statement.target.id)
            schema = self.schema(statement.annotation, field)
            properties[field.alias] = _shared_media(_limits(schema, _docstring(body, index)))
            if field.required:
                required.append(field.alias)
        return {"type": "object", "properties": properties, "required": required}

    def schema(self, node: ast.expr, field: "_Field | None" = None) -> dict[str, Any]:
        if isinstance(node, ast.Name):
            return self._named(node.id)
        if isinstance(node, ast.Constant):
            return {"enum": [node.value]}
        if not isinstance(node, ast.Subscript):
            raise ValueError(f"Unexpected annotation {ast.unparse(node)}")
        head = ast.unparse(node.value)
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head in ("Required", "Annotated"):
            # Wrappers that say something of the field (required, its wire name), not of its value.
            if field is not None:
                field.required = field.required or head == "Required"
                field.alias = (_alias(args[1:]) if head == "Annotated" else None) or field.alias
            return self.schema(args[0], field)
        return self._generic(head, args, node)

    def _generic(self, head: str, args: list[ast.expr], node: ast.expr) -> dict[str, Any]:
        if head == "Literal":
            return {"enum": [ast.literal_eval(arg) for arg in args]}
        if head == "Union":
            return {"anyOf": [self.schema(arg) for arg in args]}
        if head in ("Iterable", "List", "SequenceNotStr"):
            return {"type": "array", "items": self.schema(args[0])}
        if head in ("Dict", "Mapping"):
            return {"type": "object", "additionalProperties": True}
        raise ValueError(f"Unexpected annotation {ast.unparse(node)}")

    def _named(self, name: str) -> dict[str, Any]:
        if name in _SCALARS:
            return {"type": _SCALARS[name]}
        if name in self.classes:
            return self.object_schema(name)
        if name in self.aliases:
            return self.schema(self.aliases[name])
        raise ValueError(f"Unknown type {name}")

    def variants(self, alias: str) -> list[str]:
        """The TypedDict names a create-params alias unites (or the one class it is)."""
        node = self.aliases.get(alias)
        if node is None:
            return [alias]
        assert isinstance(node, ast.Subscript)
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return [ast.unparse(arg) for arg in args]


class _Field:
    def __init__(self, name: str) -> None:
        self.alias = name
        self.required = False


def _alias(metadata: list[ast.expr]) -> str | None:
    for item in metadata:
        if isinstance(item, ast.Call) and ast.unparse(item.func) == "PropertyInfo":
            for keyword in item.keywords:
                if keyword.arg == "alias":
                    return str(ast.literal_eval(keyword.value))
    return None


def _docstring(body: list[ast.stmt], index: int) -> str:
    following = body[index + 1] if index + 1 < len(body) else None
    if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
        return " ".join(str(following.value.value).split())
    return ""


def _limits(schema: dict[str, Any], doc: str) -> dict[str, Any]:
    """`schema` with the limits its field's docstring states, each on the part (or union branch) it bounds."""
    stated = {kind: found for kind, found in _stated_limits(doc).items() if found}
    if "anyOf" in schema:
        return {**schema, "anyOf": [_bounded(branch, stated) for branch in schema["anyOf"]]}
    return _bounded(schema, stated)


def _stated_limits(doc: str) -> dict[str, dict[str, Any]]:
    """The limits `doc` states, by the kind of value they bound."""
    numbers: dict[str, Any] = {}
    strings: dict[str, Any] = {}
    arrays: dict[str, Any] = {}
    if found := _RANGE.search(doc):
        low, high = (group for group in found.groups() if group is not None)
        numbers.update(minimum=_number(low), maximum=_number(high))
    if found := _MAX_LENGTH.search(doc):
        strings["maxLength"] = int(found.group(1))
    if _NON_EMPTY.search(doc):
        strings["minLength"] = 1
    if found := _MEDIA.search(doc):
        strings["media"] = found.group(1)
    if found := _MAX_ITEMS.search(doc):
        arrays["maxItems"] = int(found.group(1) or found.group(2))
    return {"integer": numbers, "number": numbers, "string": strings, "array": arrays}


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _bounded(schema: dict[str, Any], stated: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {**schema, **stated.get(schema.get("type", ""), {})}


def _shared_media(schema: dict[str, Any]) -> dict[str, Any]:
    """A union of a URI and a list of {uri} objects whose URIs are media: the lone URI is the same media.

    (The SDK says what a promptImage's list items are, but often not what its lone string is.)
    """
    branches = schema.get("anyOf")
    if not branches:
        return schema
    kinds = {
        branch["items"]["properties"]["uri"].get("media")
        for branch in branches
        if branch.get("type") == "array" and "uri" in branch.get("items", {}).get("properties", {})
    } - {None}
    if len(kinds) != 1:
        return schema
    [kind] = kinds
    shared = [{"media": kind, **b} if b.get("type") == "string" else b for b in branches]
    return {**schema, "anyOf": shared}


def _params_alias(module: _Module) -> str:
    names = [name for name in (*module.aliases, *module.classes) if name.endswith("CreateParams")]
    return names[0]


def derive(types_dir: Path) -> dict[str, Any]:
    """The contract from an SDK's types folder: endpoint → model → the body's object schema."""
    endpoints: dict[str, dict[str, Any]] = {}
    for endpoint, module_name in ENDPOINT_MODULES.items():
        module = _Module((types_dir / f"{module_name}.py").read_text())
        models: dict[str, Any] = {}
        for variant in module.variants(_params_alias(module)):
            schema = module.object_schema(variant)
            for model in schema["properties"]["model"]["enum"]:
                models[model] = schema
        endpoints[endpoint] = models
    return {"endpoints": endpoints}


def sdk_types_dir() -> Path:
    """The installed runwayml package's types folder (found without importing the SDK)."""
    import importlib.util

    spec = importlib.util.find_spec("runwayml")
    if spec is None or spec.origin is None:
        raise SystemExit("The runwayml SDK is not installed (pip install -r requirements-dev.txt).")
    return Path(spec.origin).parent / "types"


def sdk_version() -> str:
    from importlib.metadata import version

    return version("runwayml")


def load() -> dict[str, Any]:
    """The contract the simulator serves by (contract.json)."""
    contract: dict[str, Any] = json.loads(CONTRACT_FILE.read_text())
    return contract


def render(contract: dict[str, Any]) -> str:
    return json.dumps(contract, indent=1, sort_keys=True) + "\n"


def main() -> None:
    contract = {"sdk": sdk_version(), **derive(sdk_types_dir())}
    CONTRACT_FILE.write_text(render(contract))
    sys.stdout.write(f"Wrote {CONTRACT_FILE} from runwayml {contract['sdk']}.\n")


if __name__ == "__main__":
    main()
