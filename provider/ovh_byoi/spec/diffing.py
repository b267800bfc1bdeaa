"""Which differences between two sets of inputs end up on the disk: those make a change a reinstall."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .checking import is_unknown, normalize_field
from .checksums import CHECKSUM_LENGTHS, infer_checksum_type
from .inputs import INSTALL_FIELDS, ByoiInstallationArgs

__all__ = ["install_changes", "knob_changes"]


def _effective(props: Mapping[str, Any], name: str) -> Any:
    if name in props and props[name] is not None:
        return normalize_field(name, props[name])
    if name == "image_checksum_type":
        # Left out, it is the one the digest's length implies (as the model infers it).
        checksum = _effective(props, "image_checksum")
        if isinstance(checksum, str) and len(checksum) in CHECKSUM_LENGTHS.values():
            return infer_checksum_type(checksum)
    info = ByoiInstallationArgs.model_fields[name]
    return None if info.is_required() else info.default


def _image_identity_change(olds: Mapping[str, Any], news: Mapping[str, Any]) -> str | None:
    old_sum, new_sum = _effective(olds, "image_checksum"), _effective(news, "image_checksum")
    if is_unknown(new_sum):
        return "image_checksum"
    if old_sum is not None and new_sum is not None:
        # Both sides name the bytes: the URL is only where they are fetched from.
        return "image_checksum" if old_sum != new_sum else None
    new_url = _effective(news, "image_url")
    if is_unknown(new_url) or _effective(olds, "image_url") != new_url:
        return "image_url"
    return None


def _on_disk(name: str, value: Any) -> Any:
    # The EFI system partition is FAT, whose names ignore case, and so does UEFI firmware looking up the
    # bootloader: \EFI\debian\grubx64.efi and \efi\debian\grubx64.efi boot the same file.
    if name == "efi_bootloader_path" and isinstance(value, str):
        return value.lower()
    if name == "disk_group_id":
        # Left out and 0 are both OVH's automatic choice.
        return value or 0
    return value


def install_changes(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """The inputs whose difference would change what ends up on the disk: each one means a reinstall.

    A value not known yet may change the disk, so it counts.
    """
    changed = [
        name
        for name in INSTALL_FIELDS
        if is_unknown(news.get(name))
        or _on_disk(name, _effective(olds, name)) != _on_disk(name, _effective(news, name))
    ]
    image = _image_identity_change(olds, news)
    if image:
        changed.insert(1, image)
    return changed


def knob_changes(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """The inputs that differ without changing what ends up on the disk (recorded by an update).

    An install field written differently for the same disk (the EFI path's case) is one of them.
    """
    changed = set(install_changes(olds, news))
    return [
        name
        for name in ByoiInstallationArgs.model_fields
        if name not in changed and _effective(olds, name) != _effective(news, name)
    ]
