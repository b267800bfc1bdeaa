"""What the first bytes of an image say: its real format, its size on disk, where its partitions lie."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ovh_byoi.errors import guide_fix
from ovh_byoi.spec import Problem

from .partitions import Partition, read_partitions

if TYPE_CHECKING:
    from oslo_utils.imageutils.format_inspector import FileInspector

_COMPRESSION_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "gzip", "gunzip"),
    (b"\xfd7zXZ\x00", "xz", "unxz"),
    (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"),
    (b"BZh", "bzip2", "bunzip2"),
    (b"PK\x03\x04", "zip", "unzip"),
)

# The inspector's names for what OVH refuses.
_OTHER_FORMATS = {
    "iso": "an ISO 9660/UDF installer image",
    "vmdk": "a VMware (vmdk) disk",
    "vhd": "a Hyper-V (vhd) disk",
    "vhdx": "a Hyper-V (vhdx) disk",
    "vdi": "a VirtualBox (vdi) disk",
    "qed": "a QEMU qed disk",
    "luks": "a LUKS-encrypted volume",
}

_SAFETY_ADVICE: dict[str, tuple[str, str]] = {
    "backing_file": (
        "the qcow2 image points to a backing file, which OVH's server cannot read",
        "Flatten it into a standalone image: `qemu-img convert -O qcow2 <image> <standalone.qcow2>`.",
    ),
    "data_file": (
        "the qcow2 image keeps its data in an external data file, which OVH's server cannot read",
        "Flatten it into a standalone image: `qemu-img convert -O qcow2 <image> <standalone.qcow2>`.",
    ),
    "unknown_features": (
        "the qcow2 image uses features or a version that cannot be checked safely",
        "Rewrite it as a plain qcow2: `qemu-img convert -O qcow2 -o compat=1.1 <image> <new.qcow2>`.",
    ),
    "mbr": (
        "the image's partition table (MBR) is invalid",
        "Repair the partition table (`sfdisk --verify <image>`), or rebuild the image.",
    ),
}


@dataclass
class Layout:
    """What the first bytes tell: the real format, the size on disk, and where the EFI partition is."""

    real_format: str | None = None  # "raw" (with a partition table) or "qcow2" when usable, else None
    virtual_size: int | None = None
    partitions: tuple[Partition, ...] = ()
    findings: list[Problem] = field(default_factory=list)


def inspect_head(head: bytes, image_type: str, display: str) -> Layout:
    if not head:
        return Layout(
            findings=[Problem("image_url", f"{display} is empty", "Publish the image itself at this URL.")]
        )
    for magic, name, tool in _COMPRESSION_MAGIC:
        if head.startswith(magic):
            return Layout(
                findings=[
                    Problem(
                        "image_url",
                        f"{display} is a {name}-compressed file, and OVH writes the bytes as they are",
                        f"Decompress it first (`{tool} <file>`), publish the uncompressed {image_type} "
                        "image, and point image_url (and image_checksum) at it.",
                    )
                ]
            )
    return _inspect_format(head, image_type, display)


def _inspect_format(head: bytes, image_type: str, display: str) -> Layout:
    # Imported on first use: its package compiles regular expressions for a tenth of a second at import,
    # which a provider process need not pay before its first preflight.
    from oslo_utils.imageutils import format_inspector

    wrapper = format_inspector.InspectWrapper(io.BytesIO(head))
    while wrapper.read(64 * 1024):
        pass
    wrapper.close()
    try:
        detected = wrapper.format
    except format_inspector.ImageFormatError:
        # Several formats at once: a hybrid ISO (ISO 9660 and a partition table) is the usual case.
        names = sorted(str(inspector) for inspector in wrapper.formats or ())
        return Layout(findings=[_unsupported_finding(display, names[0] if "iso" not in names else "iso")])
    if detected is None or str(detected) == "raw":
        # Nothing recognised: for a disk image, that means no partition table in the first sector.
        return Layout(findings=[_no_table_finding(display, image_type)])
    name = str(detected)
    if name in _OTHER_FORMATS:
        return Layout(findings=[_unsupported_finding(display, name)])
    real_format = "raw" if name == "gpt" else name
    layout = Layout()
    if real_format != image_type:
        layout.findings.append(_mismatch_finding(display, real_format, image_type))
    unsafe = _safety_findings(detected, display)
    if unsafe:
        layout.findings.extend(unsafe)
        return layout
    layout.real_format = real_format
    if real_format == "qcow2":
        layout.virtual_size = detected.virtual_size or None
    else:
        layout.partitions = tuple(read_partitions(head))
    return layout


def _safety_findings(detected: FileInspector, display: str) -> list[Problem]:
    from oslo_utils.imageutils import format_inspector

    try:
        detected.safety_check()
    except format_inspector.SafetyCheckFailed as exc:
        findings = []
        for check in exc.failures:
            message, fix = _SAFETY_ADVICE.get(
                check.removeprefix("inner_"),
                (f"the image fails the {check} safety check", guide_fix("download_failed")),
            )
            findings.append(Problem("image_url", f"{message} ({exc.failures[check]})", fix))
        return findings
    except format_inspector.ImageFormatError as exc:
        return [Problem("image_url", f"{display} cannot be inspected: {exc}", guide_fix("download_failed"))]
    return []


def _no_table_finding(display: str, image_type: str) -> Problem:
    if image_type == "raw":
        return Problem(
            "image_url",
            f"{display} has no partition table (MBR or GPT): it is not a raw disk image",
            guide_fix("no_partition_table"),
        )
    return _mismatch_finding(display, "raw (without a partition table)", image_type)


def _unsupported_finding(display: str, name: str) -> Problem:
    what = _OTHER_FORMATS.get(name, f"a {name} image")
    return Problem(
        "image_url",
        f"{display} is {what}; OVH installs only qcow2 and raw disk images",
        guide_fix("unsupported_format"),
    )


def _mismatch_finding(display: str, found: str, expected: str) -> Problem:
    short = found.split(" ", 1)[0]
    return Problem(
        "image_type",
        f"image_type is {expected}, but {display} is really {found}",
        guide_fix("format_mismatch", found=short, expected=expected),
    )
