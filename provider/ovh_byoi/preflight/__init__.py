"""Checks an image before a destructive reinstall: every problem found before OVH erases the server.

OVH downloads and checks the image only after it has started reinstalling, so each mistake costs the server
its data. `run_preflight` finds the common customer errors of OVH's catalog (`ovh_byoi.errors`) beforehand
and returns them all at once, each naming the field to change and the fix:

- ``quick`` reaches the URL with the user's headers (HEAD, or a ranged GET where HEAD is refused), compares
  the image's size with the server's disk and with its RAM minus 3 GiB, and inspects the first bytes with
  OpenStack's hardened format inspector: compressed files, a format other than ``image_type``, a raw image
  without a partition table, a qcow2 with a backing or external data file, ISO and other formats.
- ``full`` does the quick checks, then streams the whole image once, in constant memory, verifying the
  checksum and checking that ``efi_bootloader_path`` exists in the image's EFI system partition (read with
  ``qemu-img`` and ``mtools``, case-insensitively as UEFI firmware does).

Besides http(s) URLs, ``image_url`` may be a local path or ``file://`` URL, to verify an image before upload.

The modules: `running` (the order of the checks), `sources` and `http` (where the bytes come from),
`layout` and `partitions` (what the first bytes say), `sizes`, `streaming` (the one pass over the image),
`full` and `efi` (what that pass lets us check).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ovh_byoi.errors import DiskGroups

if TYPE_CHECKING:
    from ovh_byoi.spec import Problem as Finding

__all__ = ["CHECK_LEVELS", "Finding", "ProgressCallback", "run_preflight"]

CHECK_LEVELS = ("off", "quick", "full")
ProgressCallback = Callable[[int, int | None], None]
"""Called with the bytes read so far and the image's size (``None`` when the server does not say)."""


def run_preflight(
    *,
    image_url: str,
    image_type: str,
    image_checksum: str | None,
    image_checksum_type: str | None,
    http_headers: Mapping[str, str] | None,
    efi_bootloader_path: str | None,
    level: str,
    disk_bytes: int | None,
    memory_bytes: int | None,
    progress: ProgressCallback | None = None,
    disk_groups: DiskGroups = (),
    disk_group_id: int | None = None,
) -> list[Finding]:
    """Every problem found with the image, or an empty list; never raises for a problem with the image.

    ``disk_bytes`` (the first disk of the target disk group: BYOI writes to that one disk) and
    ``memory_bytes`` describe the target server (``None`` skips that comparison); ``disk_groups`` and
    ``disk_group_id`` let the fix for an image too large name the groups that would hold it; ``progress`` is
    called while ``full`` streams the image (from another thread).
    """
    # Imported on first use, like `Finding`: `ovh-byoi --help` needs neither pydantic nor the inspector.
    from .running import Request, run

    request = Request(
        image_url=image_url,
        image_type=image_type,
        image_checksum=image_checksum,
        image_checksum_type=image_checksum_type,
        http_headers=http_headers or {},
        efi_bootloader_path=efi_bootloader_path,
        level=level,
        disk_bytes=disk_bytes,
        memory_bytes=memory_bytes,
        progress=progress,
        disk_groups=disk_groups,
        disk_group_id=disk_group_id,
    )
    return run(request)


def __getattr__(name: str) -> Any:
    # A finding is the project's one problem type; importing it (and pydantic) waits until it is used.
    if name == "Finding":
        from ovh_byoi.spec import Problem

        return Problem
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
