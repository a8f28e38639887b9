"""Deterministic minimal instances of a response schema, and deliberately broken ones, for the LLM stubs.

Both schema dialects the SDKs send are understood:

* JSON Schema (``responseJsonSchema``, OpenAI ``json_schema`` / tool ``parameters``): lower-case ``type`` (or a list
  of types), ``anyOf``/``oneOf``/``allOf``, ``{"type": "null"}`` options, ``$defs``/``definitions`` with ``$ref``.
* Gemini's OpenAPI-flavoured ``Schema`` (``responseSchema``): upper-case ``type`` ("STRING", "OBJECT"),
  ``nullable: true``, ``propertyOrdering``, int64 bounds sent as strings. google-genai 2.34 sends some of its keys
  in snake_case (``min_items``, ``property_ordering``); proto3 JSON accepts both spellings, and so does this module.

Rules: ``const`` → it; ``enum`` → the first value; union → the first non-null option (a plausible value beats null);
string → "stub" (or a sample for a known ``format``, padded to ``minLength``); integer → 1; number → 1.0;
boolean → false; null → None; array → ``minItems`` copies of its item (usually ``[]``); object → every property.
``minimum``/``maximum`` (and the exclusive forms) are honoured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Schema = Mapping[str, Any]

_FORMAT_SAMPLES = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "duration": "P1D",
    "email": "stub@example.com",
    "uri": "https://example.com/stub",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def schema_instance(schema: Schema) -> Any:
    """A minimal value that validates against ``schema``."""
    return _instance(schema, {**schema.get("definitions", {}), **schema.get("$defs", {})})


def schema_violation(schema: Schema) -> Any:
    """A JSON value that breaks ``schema``: the first property missing, the others mistyped, plus an unknown key."""
    valid = schema_instance(schema)
    if not isinstance(valid, dict):
        return {"unexpected_key": "stub"}
    broken = {key: _mistyped(value) for key, value in list(valid.items())[1:]}
    return broken | {"unexpected_key": "stub"}


def proto_field(message: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """``message[name]`` under its lowerCamelCase ``name`` or its snake_case spelling (proto3 JSON accepts both)."""
    if name in message:
        return message[name]
    return message.get(re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower(), default)


def _mistyped(value: Any) -> Any:
    """A value no scalar, object or (differently typed) array schema accepts in place of ``value``."""
    return "wrong-type" if isinstance(value, list) else [["wrong-type"]]


def _instance(schema: Schema, defs: Schema) -> Any:
    if "$ref" in schema:
        return _instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if options := proto_field(schema, key):
            plausible = [option for option in options if _type(option) != "null"] or options
            return _instance(plausible[0], defs)
    return _BUILDERS[_type(schema)](schema, defs)


def _type(schema: Schema) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((name for name in declared if name.lower() != "null"), "null")
    if declared and declared.upper() != "TYPE_UNSPECIFIED":
        return declared.lower()
    if "properties" in schema:
        return "object"
    return "array" if "items" in schema else "string"


def _string(schema: Schema, _defs: Schema) -> str:
    value = _FORMAT_SAMPLES.get(schema.get("format", ""), "stub").ljust(int(proto_field(schema, "minLength", 0)), "x")
    max_length = proto_field(schema, "maxLength")
    return value if max_length is None else value[: int(max_length)]


def _number(schema: Schema, _defs: Schema) -> float:
    value = 1.0
    if (low := proto_field(schema, "minimum")) is not None:
        value = max(value, float(low))
    if (high := proto_field(schema, "maximum")) is not None:
        value = min(value, float(high))
    if (low := proto_field(schema, "exclusiveMinimum")) is not None and value <= float(low):
        value = float(low) + 1
    if (high := proto_field(schema, "exclusiveMaximum")) is not None and value >= float(high):
        value = float(high) - 1
    return value


def _integer(schema: Schema, defs: Schema) -> int:
    return int(_number(schema, defs))


def _array(schema: Schema, defs: Schema) -> list[Any]:
    return [_instance(schema.get("items", {}), defs) for _ in range(int(proto_field(schema, "minItems", 0)))]


def _object(schema: Schema, defs: Schema) -> dict[str, Any]:
    return {name: _instance(prop, defs) for name, prop in schema.get("properties", {}).items()}


_BUILDERS: dict[str, Callable[[Schema, Schema], Any]] = {
    "string": _string,
    "number": _number,
    "integer": _integer,
    "boolean": lambda _schema, _defs: False,
    "null": lambda _schema, _defs: None,
    "array": _array,
    "object": _object,
}
