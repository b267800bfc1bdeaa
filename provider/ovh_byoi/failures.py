"""OVH's failure texts, each mapped to the fix that makes the next install succeed.

A reinstall task that fails says why in OVH's words (task comment, note, failing step's error). `fix_for`
looks such a text up in the one catalog of known failures: the texts OVH writes for the common customer
errors of BYOI (the README's error table lists them with their fixes), and older wordings of the same
failures. It returns the fix, or ``None`` for a text it does not know, which callers then show verbatim.
Preflight, which detects some of these failures before OVH is asked, gives the same fixes (`guide_fix`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DiskGroups", "disk_group_advice", "fix_for", "guide_fix"]


@dataclass(frozen=True)
class _KnownFailure:
    key: str
    pattern: re.Pattern[str]
    fix: str  # str.format template over the pattern's named groups


_DOWNLOAD_FIX = (
    "Check that downloading the image with curl works from the server in rescue mode; if the download needs "
    "HTTP headers (Basic auth, a token), give them in http_headers."
)

# The texts of OVH's common customer errors for BYOI, then older wordings. Patterns match OVH's words
# wherever they appear (task comment, note, failing step's error), whatever the placeholders hold.
_CATALOG: tuple[_KnownFailure, ...] = (
    _KnownFailure(
        "checksum_pair",
        re.compile(r"Please provide checkSum AND checkSumType or none of them", re.I),
        "Give both image_checksum and image_checksum_type, or neither.",
    ),
    _KnownFailure(
        "format_mismatch",
        re.compile(
            r"image provided format is (?P<found>\S+) which does not match expected (?P<expected>\S+) format",
            re.I,
        ),
        "Whatever its file extension, the file really is {found}: set image_type to {found}, or convert the "
        "image to {expected} (qemu-img convert -O {expected} <image> <new image>).",
    ),
    _KnownFailure(
        "too_big_for_disk",
        re.compile(
            r"image provided has a size of (?P<size>\d+) bytes"
            r" which is larger than device of (?P<device>\d+) bytes",
            re.I,
        ),
        "Reduce the size of the image to at most {device} bytes (BYOI writes it to the first disk of the "
        "target disk group, not across the group){groups}.",
    ),
    _KnownFailure(
        "cannot_write",
        re.compile(r"Can't write (?P<what>.+?) on disk", re.I),
        'Modify the image so that `qemu-img convert -f "<image_type>" -O raw <image file> <device>` works.',
    ),
    _KnownFailure(
        "too_big_for_memory",
        re.compile(r"Could not download, (?P<what>.+?) image is too big to download in memory", re.I),
        "The server downloads the image into its RAM and keeps 3 GiB for itself: reduce the size of the "
        "image below the server's RAM minus 3 GiB.",
    ),
    _KnownFailure(
        "download_failed",
        # "located: {url}" in OVH's documented wording; "image: {error message}" in its newer answers.
        re.compile(r"Could not download image(?: located)?:\s*(?P<detail>.*)", re.I),
        _DOWNLOAD_FIX,
    ),
    _KnownFailure(
        "no_partition_table",
        re.compile(
            r"image provided format is not of type raw because no partition table was found"
            r"(?:\. It seems to contain: (?P<content>.*))?",
            re.I,
        ),
        "A raw image must contain a partition table (MBR or GPT): check the image with `sfdisk -l <image>`; "
        "a bare file system or a compressed file is not a disk image.",
    ),
    _KnownFailure(
        "bad_checksum",
        re.compile(
            r"Bad checkSumType for downloaded file, got: (?P<got>\S+) while expecting (?P<expected>\S+)", re.I
        ),
        "Make sure image_checksum is the checksum of this very image (and image_checksum_type its "
        "algorithm), and that downloading the image with curl works from the server in rescue mode.",
    ),
    _KnownFailure(
        "unsupported_format",
        re.compile(r"Bad format image, expected: qcow2, raw", re.I),
        "Only qcow2 and raw disk images can be installed: convert the image with "
        "`qemu-img convert -O qcow2 <image> <new image>` and set image_type to match.",
    ),
    _KnownFailure(
        "gpt_backup",
        re.compile(r"Can not move backup GPT data structures to the end of disk", re.I),
        "The image's GPT could not be moved to the end of the server's disk: check and repair the image's "
        "partition table (`sgdisk --verify <image>`, then `sgdisk -e <image>`), and make sure the image is "
        "smaller than the disk.",
    ),
    _KnownFailure(
        "configdrive",
        re.compile(r"Could not create configdrive on disk", re.I),
        "OVH adds a small config-drive partition after the image's partitions: leave a free partition slot "
        "and some unallocated space at the end of the image's partition table, or check that the table is "
        "valid.",
    ),
)

_CATALOG_BY_KEY = {known.key: known for known in _CATALOG}


# A server's disk groups as the fixes name them: (diskGroupId, bytes of one disk, OVH's description).
DiskGroups = Sequence[tuple[int, int, str]]


def disk_group_advice(image_bytes: int | None, groups: DiskGroups, target: int | None = None) -> str:
    """The part of the "larger than device" fix that names the disk groups whose first disk would fit."""
    if not groups:
        return (
            ", or, if the server has several disk groups, install on one with larger disks (disk_group_id, "
            "OVH's diskGroupId)"
        )
    fitting = [
        f"{group_id} ({description or f'{disk} bytes per disk'})"
        for group_id, disk, description in groups
        if (image_bytes is None or disk >= image_bytes) and group_id != (target or 1)
    ]
    if not fitting:
        return "; no disk group of this server (OVH's diskGroupId) has a disk that large"
    return (
        ", or install on a disk group whose disks hold it: set disk_group_id (OVH's diskGroupId) to "
        + " or ".join(fitting)
    )


def fix_for(text: str, groups: DiskGroups = (), target: int | None = None) -> str | None:
    """The fix for an OVH failure text, or ``None`` when the text is not a known failure.

    ``groups``: the server's disk groups, so that the fix for an image too large for its disk names the groups
    that would hold it (``target``: the disk group it was sent to, 0 or None for OVH's automatic choice).
    """
    for known in _CATALOG:
        match = known.pattern.search(text)
        if match:
            values = {name: value or "" for name, value in match.groupdict().items()}
            if known.key == "too_big_for_disk":
                values["groups"] = disk_group_advice(int(values["size"]), groups, target)
            return known.fix.format(**values)
    return None


def guide_fix(key: str, **values: str) -> str:
    """The catalog's fix for a failure the caller detected itself (preflight), filled with ``values``."""
    if key == "too_big_for_disk":
        values.setdefault("groups", disk_group_advice(None, ()))
    return _CATALOG_BY_KEY[key].fix.format(**values)
