"""The rules that involve several inputs: OVH's request body limit, each template's needs, the checksum pair.

Each rule takes the known, valid values and the names to `skip` (unknown or invalid): a rule that needs one
of those is left out rather than guessed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .checksums import CHECKSUM_LENGTHS
from .field_rules import MAX_REQUEST_BODY_BYTES
from .wire import ReinstallCustomizations, wire_value

__all__ = ["TEMPLATE_REQUIRED", "Problem", "checksum_problems", "cross_field_problems"]

# Which inputs each template needs: BYOLinux needs only the image's URL (its image is qcow2, and OVH's own
# script makes it bootable); BYOI also needs the image type and the EFI bootloader's path.
TEMPLATE_REQUIRED: dict[str, tuple[str, ...]] = {
    "byoi_64": ("image_type", "efi_bootloader_path"),
    "byolinux_64": (),
}


@dataclass(frozen=True)
class Problem:
    """One bad input: which field, what is wrong, and how to fix it."""

    field: str
    message: str
    fix: str

    @property
    def reason(self) -> str:
        return f"{self.field}: {self.message}. Fix: {self.fix}"


def _body_size_problems(
    values: Mapping[str, Any], skip: frozenset[str], fixes: Mapping[str, str]
) -> list[Problem]:
    """OVH's request body limit, over the known values (unknown ones can only add to the size)."""
    aliases = {
        name: info.alias or name
        for name, info in ReinstallCustomizations.model_fields.items()
        if name not in skip and values.get(name) is not None
    }
    customizations = {alias: wire_value(name, values[name]) for name, alias in aliases.items()}
    body = {"operatingSystem": values.get("operating_system") or "byoi_64", "customizations": customizations}
    # As OVH's client sends it: compact separators, non-ASCII escaped.
    size = len(json.dumps(body, separators=(",", ":")).encode())
    if size <= MAX_REQUEST_BODY_BYTES:
        return []
    shares = {name: len(json.dumps(customizations[alias])) for name, alias in aliases.items()}
    biggest = max(shares, key=lambda name: shares[name])
    return [
        Problem(
            biggest,
            f"OVH's reinstall request would be {size} bytes, beyond its request body limit of "
            f"{MAX_REQUEST_BODY_BYTES} bytes (OVH: 'Maximum request body size {MAX_REQUEST_BODY_BYTES} "
            f"exceeded.'); {biggest} makes {shares[biggest]} of them",
            fixes[biggest],
        )
    ]


def cross_field_problems(
    values: Mapping[str, Any], *, skip: frozenset[str], fixes: Mapping[str, str], require: bool = True
) -> list[Problem]:
    """Rules that involve several fields; a rule is left out when a field it needs is in `skip`.

    `fixes`: each input's fix. `require`: the inputs the template needs must be there (not when checking
    part of an install)."""
    size_problems = _body_size_problems(values, skip, fixes)
    return size_problems or [
        *_template_problems(values, skip, fixes, require),
        *checksum_problems(values, skip),
    ]


def _template_problems(
    values: Mapping[str, Any], skip: frozenset[str], fixes: Mapping[str, str], require: bool
) -> list[Problem]:
    if "operating_system" in skip:
        return []
    template = values.get("operating_system") or "byoi_64"
    problems = []
    if require:
        for name in TEMPLATE_REQUIRED.get(template, ()):
            if values.get(name) is None and name not in skip:
                problems.append(Problem(name, f"{name} is required for {template}", fixes[name]))
    if template == "byolinux_64" and values.get("image_type") not in (None, "qcow2"):
        problems.append(
            Problem(
                "image_type",
                f"byolinux_64 installs qcow2 images only, not {values['image_type']} (OVH's BYOLinux guide)",
                "convert the image (qemu-img convert -O qcow2 <image> <new image>) and set image_type to "
                '"qcow2" or leave it out, or use operating_system "byoi_64" for a raw image',
            )
        )
    return problems


def checksum_problems(values: Mapping[str, Any], skip: frozenset[str]) -> list[Problem]:
    if {"image_checksum", "image_checksum_type"} & skip:
        return []
    checksum, checksum_type = values.get("image_checksum"), values.get("image_checksum_type")
    if checksum_type is not None and checksum is None:
        return [
            Problem(
                "image_checksum_type",
                "image_checksum_type is set without image_checksum (OVH: 'Please provide checkSum AND "
                "checkSumType or none of them')",
                "add image_checksum, or remove image_checksum_type",
            )
        ]
    if (
        checksum is not None
        and checksum_type is not None
        and len(checksum) != CHECKSUM_LENGTHS[checksum_type]
    ):
        return [
            Problem(
                "image_checksum",
                f"a {checksum_type} digest has {CHECKSUM_LENGTHS[checksum_type]} hex digits, "
                f"this one has {len(checksum)}",
                "give the digest of the type you named, or fix image_checksum_type (or omit it to infer it)",
            )
        ]
    return []
