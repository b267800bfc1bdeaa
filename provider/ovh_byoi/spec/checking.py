"""The one validator of the inputs, for the resource, the command and the root stack alike.

`check_inputs` validates field by field, so that each bad field yields one problem naming the field and its
fix, and leaves alone the values Pulumi does not know yet.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from .checksums import infer_checksum_type
from .cross_field import Problem, cross_field_problems
from .inputs import FIXES, ByoiInstallationArgs

__all__ = ["check_inputs", "is_unknown", "normalize_field"]

# The string the engine uses for an unknown value when it is not turned into `pulumi.output.Unknown`.
_UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def is_unknown(value: Any) -> bool:
    """Whether `value` is, or contains, a value Pulumi does not know yet."""
    if value == _UNKNOWN_SENTINEL:
        return True
    if type(value).__name__ == "Unknown" and type(value).__module__.startswith("pulumi"):
        return True
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_unknown(v) for v in value)
    return False


@functools.cache
def _adapter(name: str) -> TypeAdapter[Any]:
    """The field's type with its constraints and validators, to validate one field at a time.

    Built on first use: building them all costs the `ovh-byoi` command's start-up a noticeable time."""
    info = ByoiInstallationArgs.model_fields[name]
    annotation: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(annotation)


def _message(error: Mapping[str, Any], field: str) -> str:
    ctx = error.get("ctx") or {}
    custom = error["type"] == "value_error" and "error" in ctx
    message = str(ctx["error"]) if custom else str(error["msg"])
    # Name the map key (a header or metadata name, never its value) when the error is inside a mapping.
    inner = [str(part) for part in error.get("loc", ()) if part not in ("", field)]
    if inner and error["type"] != "value_error":
        message = f"[{inner[0]!r}]: {message}"
    return message


def _validate_field(name: str, value: Any) -> tuple[Any, Problem | None]:
    try:
        return _adapter(name).validate_python(value), None
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        message = "; ".join(dict.fromkeys(_message(e, name) for e in errors))
        return None, Problem(name, message, FIXES[name])


def normalize_field(name: str, value: Any) -> Any:
    """`value` as the model stores it, or as given when it does not validate (an older version's state)."""
    if name not in ByoiInstallationArgs.model_fields or value is None or is_unknown(value):
        return value
    normalized, problem = _validate_field(name, value)
    return value if problem else normalized


def check_inputs(inputs: Mapping[str, Any], *, partial: bool = False) -> tuple[dict[str, Any], list[Problem]]:
    """Validate user inputs field by field: the one validator of the resource, the command and the stack.

    Returns the normalized inputs (with defaults when all values are known) and one problem per bad field.
    Values not known yet are passed through untouched and skipped by every rule that needs them. `partial`
    checks only the fields given (what `ovh-byoi verify-image` knows of an install) and adds no default.
    """
    values, unknown, problems = _check_fields(inputs)
    invalid = {problem.field for problem in problems}
    if not partial:
        problems += [
            Problem(name, f"{name} is required", FIXES[name])
            for name, info in ByoiInstallationArgs.model_fields.items()
            if info.is_required() and name not in values and name not in unknown and name not in invalid
        ]
    problems.extend(
        cross_field_problems(values, skip=frozenset(unknown | invalid), fixes=FIXES, require=not partial)
    )
    if problems:
        return dict(inputs), problems
    if partial and "image_checksum" in values and "image_checksum_type" not in values:
        values["image_checksum_type"] = infer_checksum_type(values["image_checksum"])
    if partial or unknown:
        return {**values, **{name: inputs[name] for name in unknown}}, []
    return ByoiInstallationArgs.model_validate(values).outputs(), []


def _check_fields(inputs: Mapping[str, Any]) -> tuple[dict[str, Any], set[str], list[Problem]]:
    """The valid values normalized, the names of those not known yet, and one problem per bad field."""
    values: dict[str, Any] = {}
    unknown: set[str] = set()
    problems: list[Problem] = []
    known_fields = ByoiInstallationArgs.model_fields
    for name, value in inputs.items():
        if name not in known_fields:
            fix = f"remove it; inputs are {', '.join(known_fields)}"
            problems.append(Problem(name, "is not an input of ByoiInstallation", fix))
        elif is_unknown(value):
            unknown.add(name)
        elif value is not None:
            normalized, problem = _validate_field(name, value)
            if problem:
                problems.append(problem)
            else:
                values[name] = normalized
    return values, unknown, problems
