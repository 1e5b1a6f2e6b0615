"""Test support: check response bodies against Twilio's published Video v1 OpenAPI description.

The spec is read from ``$TWILIO_OPENAPI_SPEC`` or ``<repo>/../shared/reference/twilio_video_v1.json``.
OpenAPI 3.0 ``nullable`` is translated to JSON Schema; ``$ref``s to ``#/components/schemas`` resolve.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

import jsonschema

_REPO = Path(__file__).resolve().parents[2]


def spec_path() -> Path:
    """Where the OpenAPI document is read from."""
    env = os.environ.get("TWILIO_OPENAPI_SPEC")
    if env:
        return Path(env)
    return _REPO.parent / "shared" / "reference" / "twilio_video_v1.json"


_DROPPED = ("nullable", "x-twilio", "format", "example", "discriminator")


def _translate(node: Any) -> Any:
    """OpenAPI 3.0 schema → JSON Schema (draft 2020-12): ``nullable`` becomes a null alternative."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: _translate(sub) for name, sub in value.items()}
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_translate(sub) for sub in value]
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _translate(value)
        else:
            out[key] = value
    if node.get("nullable"):
        if "$ref" in out:
            return {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}]}
        typ = out.get("type")
        if isinstance(typ, str):
            out["type"] = [typ, "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
    return out


def _translate_all(schemas: dict[str, Any]) -> dict[str, Any]:
    return {name: _translate(schema) for name, schema in schemas.items()}


@functools.cache
def _spec() -> dict[str, Any]:
    path = spec_path()
    if not path.is_file():
        raise AssertionError(f"Twilio OpenAPI spec not found at {path}; set TWILIO_OPENAPI_SPEC")
    with path.open(encoding="utf-8") as fh:
        raw: dict[str, Any] = json.load(fh)
    return raw


@functools.cache
def _components() -> dict[str, Any]:
    schemas = _translate_all(_spec()["components"]["schemas"])
    return {"schemas": schemas}


def schema_names() -> list[str]:
    """Names under ``components.schemas`` (e.g. ``video.v1.composition``)."""
    return list(_spec()["components"]["schemas"])


def _check(schema: dict[str, Any], body: Any, what: str) -> None:
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "components": _components()}
    validator = jsonschema.Draft202012Validator(root)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        details = "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:10]
        )
        raise AssertionError(f"{what} does not match Twilio's OpenAPI spec: {details}")


def validate_resource(
    schema_name: str, body: dict[str, Any], *, require_all: bool = False, forbid_extra: bool = False
) -> None:
    """Assert ``body`` matches ``components.schemas[schema_name]``; AssertionError with details otherwise.

    ``require_all`` also demands every property of the spec; ``forbid_extra`` rejects properties it lacks.
    """
    components = _components()["schemas"]
    if schema_name not in components:
        raise AssertionError(f"unknown schema {schema_name!r}")
    schema: dict[str, Any] = {"$ref": f"#/components/schemas/{schema_name}"}
    target = components[schema_name]
    props = list(target.get("properties", {}))
    extra_rules: dict[str, Any] = {}
    if require_all:
        extra_rules["required"] = props
    if forbid_extra:
        extra_rules["propertyNames"] = {"enum": props}
    if extra_rules:
        schema = {"allOf": [schema, extra_rules]}
    _check(schema, body, schema_name)


def validate_list(path: str, body: dict[str, Any]) -> None:
    """Assert a list response of ``GET path`` (e.g. ``/v1/Compositions``) matches the spec's 200 schema."""
    paths = _spec()["paths"]
    if path not in paths:
        raise AssertionError(f"unknown path {path!r}")
    raw = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    _check(_translate(copy.deepcopy(raw)), body, f"GET {path}")
