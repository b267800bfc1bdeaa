"""Whether the image fits: in the server's memory (where OVH downloads it) and on its disk."""

from __future__ import annotations

from dataclasses import dataclass

from ovh_byoi.errors import DiskGroups, disk_group_advice, guide_fix
from ovh_byoi.spec import Problem

from .layout import Layout

GIB = 1024**3
# OVH downloads the image into the server's memory and keeps this much for the installer itself.
MEMORY_RESERVED_BYTES = 3 * GIB


def _bytes_text(count: int) -> str:
    unit, scale = ("GiB", GIB) if abs(count) >= GIB else ("MiB", 1024**2)
    return f"{count} bytes ({count / scale:.1f} {unit})"


@dataclass(frozen=True)
class Disk:
    """Where the image goes: the first disk of the target disk group, and the server's other groups."""

    size: int | None
    groups: DiskGroups = ()
    group_id: int | None = None


def size_findings(
    layout: Layout, download_size: int | None, disk: Disk, memory_bytes: int | None
) -> list[Problem]:
    disk_bytes = disk.size
    findings = []
    if download_size is not None and memory_bytes is not None:
        room = memory_bytes - MEMORY_RESERVED_BYTES
        if download_size > room:
            findings.append(
                Problem(
                    "image_url",
                    f"the image is {_bytes_text(download_size)}, more than the server's RAM minus 3 GiB "
                    f"({_bytes_text(max(room, 0))}): OVH downloads the image into memory",
                    guide_fix("too_big_for_memory"),
                )
            )
    on_disk = layout.virtual_size if layout.real_format == "qcow2" else download_size
    if (
        layout.real_format is not None
        and on_disk is not None
        and disk_bytes is not None
        and on_disk > disk_bytes
    ):
        findings.append(
            Problem(
                "image_url",
                f"the image needs {_bytes_text(on_disk)} on disk, more than the server's disk of "
                f"{_bytes_text(disk_bytes)} (the first disk of disk group {disk.group_id or 1}, where BYOI "
                "writes it)",
                guide_fix(
                    "too_big_for_disk",
                    device=str(disk_bytes),
                    groups=disk_group_advice(on_disk, disk.groups, disk.group_id),
                ),
            )
        )
    return findings
