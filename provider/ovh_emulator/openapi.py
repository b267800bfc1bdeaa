"""OVH's OpenAPI export of `/dedicated/server`, turned into JSON-schema validators.

The file is OVH's (the export `ovhcloud-cli` ships, 2025-10), kept unchanged beside this module. Two
adaptations happen in memory: OpenAPI 3.0's `nullable` becomes JSON-schema's `null` type, and the reinstall
customizations gain `configDriveMetadata`, which the real API accepts but this snapshot predates. Request
bodies are checked strictly (OVH's API refuses parameters it does not describe); answers may be checked
strictly too, so a test can prove the emulator returns nothing the schema does not know.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = ["SCHEMA_URI", "answer_errors", "body_errors", "load_document", "validator_for"]

SCHEMA_URI = "urn:ovh:dedicated-server-openapi"
_FILE = "dedicated-server.openapi.json"
CONFIG_DRIVE_METADATA = {
    "type": "object",
    "description": "Custom Cloud-Init metadata (newer than this export of the schema)",
    "additionalProperties": {"type": "string"},
}


@functools.cache
def load_document() -> dict[str, Any]:
    """OVH's OpenAPI document as published."""
    text = resources.files(__package__).joinpath(_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def _to_json_schema(node: Any, *, strict: bool) -> Any:
    if isinstance(node, list):
        return [_to_json_schema(item, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _to_json_schema(value, strict=strict) for key, value in node.items()}
    if strict and "properties" in converted and "additionalProperties" not in converted:
        converted["additionalProperties"] = False
    if converted.pop("nullable", False):
        description = converted.pop("description", None)
        converted = {"anyOf": [converted, {"type": "null"}]}
        if description is not None:
            converted["description"] = description
    return converted


@functools.cache
def _registry(strict: bool) -> Registry[Any]:
    document = copy.deepcopy(load_document())
    customizations = document["components"]["schemas"]["dedicated.server.reinstall.Customizations"]
    customizations["properties"]["configDriveMetadata"] = CONFIG_DRIVE_METADATA
    # Only the components are JSON schema; the paths hold OpenAPI objects that must not be rewritten.
    document["components"] = _to_json_schema(document["components"], strict=strict)
    resource: Resource[Any] = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SCHEMA_URI, resource)
    return registry


@functools.cache
def validator_for(schema_name: str, *, strict: bool = True) -> jsonschema.protocols.Validator:
    """A validator of one component schema, e.g. `dedicated.server.Reinstall`, formats checked."""
    schema = {"$ref": f"{SCHEMA_URI}#/components/schemas/{schema_name}"}
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(
        schema, registry=_registry(strict), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator


def _field(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path)


def _describe(error: jsonschema.ValidationError) -> str:
    """One validation error in the words of OVH's API: the field in brackets, then what is wrong."""
    field = _field(error)
    prefix = f"[{field}] " if field else ""
    instance: Any = error.instance
    expected: Any = error.validator_value
    if error.validator == "required":
        missing = [name for name in expected if name not in instance]
        names = ", ".join(f"{field}.{name}" if field else name for name in missing)
        return f"[{names}] Property is mandatory"
    if error.validator == "additionalProperties":
        schema: Any = error.schema
        described = set(schema.get("properties", {}))
        extra = sorted(name for name in instance if name not in described)
        return (
            f"{prefix}Received not described parameters: ({', '.join(extra)}) while calling creation handler"
        )
    if error.validator == "enum":
        allowed = ", ".join(str(value) for value in expected)
        return f"{prefix}Given data ({instance}) does not belong to the enumeration: {allowed}"
    if error.validator == "type":
        return f"{prefix}Given data ({json.dumps(error.instance)}) is not of type {error.validator_value}"
    return f"{prefix}{error.message}"


def _leaves(errors: Iterator[jsonschema.ValidationError]) -> Iterator[jsonschema.ValidationError]:
    # `allOf`/`anyOf` wrap the errors that say what is wrong: report those instead of the wrapper.
    for error in errors:
        if error.context:
            yield from _leaves(iter(error.context))
        else:
            yield error


def body_errors(schema_name: str, body: Any) -> list[str]:
    """OVH-style messages for everything wrong with a request body, in a stable order."""
    validator = validator_for(schema_name, strict=True)
    errors = sorted(
        _leaves(validator.iter_errors(body)), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    return list(dict.fromkeys(_describe(error) for error in errors))


def answer_errors(method: str, route: str, answer: Any, *, strict: bool = True) -> list[str]:
    """What is wrong with the answer of `METHOD route` (e.g. `GET /dedicated/server/{serviceName}`)
    against the 200 answer that OVH's file documents for it; strict: no property it does not describe."""
    operation = load_document()["paths"][route][method.lower()]
    content = operation["responses"]["200"].get("content")
    if content is None:
        return [] if answer is None else [f"{method} {route} documents no answer body, got {answer!r}"]
    schema_text = json.dumps(content["application/json"]["schema"])
    schema = json.loads(schema_text.replace('"#/components/', f'"{SCHEMA_URI}#/components/'))
    validator = jsonschema.Draft202012Validator(
        schema, registry=_registry(strict), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [
        f"{'.'.join(map(str, error.absolute_path)) or 'answer'}: {error.message}"
        for error in validator.iter_errors(answer)
    ]
