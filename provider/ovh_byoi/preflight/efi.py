"""Looking inside the image with qemu-img and mtools: a damaged qcow2, and the EFI bootloader.

UEFI firmware reads the EFI system partition's FAT file system case-insensitively, and so does this check.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovh_byoi.errors import guide_fix
from ovh_byoi.spec import Problem

from .layout import Layout
from .partitions import Partition, efi_system_partition, read_partitions
from .sources import HEAD_BYTES

TOOL_TIMEOUT = 600.0


def _efi_components(path: str) -> list[str]:
    # Users write OVH's form (\efi\debian\grubx64.efi), often with doubled backslashes, or slashes.
    return [part for part in re.split(r"[\\/]+", path.strip()) if part]


def _run_tool(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"}
    return subprocess.run(
        list(args), capture_output=True, text=True, env=environment, timeout=TOOL_TIMEOUT, check=False
    )


def _qemu_raw_view(qcow2: Path, offset: int, size: int) -> str:
    # A read-only raw window on the qcow2, with backing files disabled whatever the header says.
    spec: dict[str, Any] = {
        "driver": "raw",
        "offset": offset,
        "size": size,
        "file": {"driver": "qcow2", "backing": None, "file": {"driver": "file", "filename": str(qcow2)}},
    }
    return "json:" + json.dumps(spec)


def qcow2_damage(qcow2: Path | None) -> str | None:
    """What `qemu-img check` finds wrong with a qcow2 (what would make OVH's `qemu-img convert` fail)."""
    if qcow2 is None or shutil.which("qemu-img") is None:
        return None
    spec = {"driver": "qcow2", "backing": None, "file": {"driver": "file", "filename": str(qcow2)}}
    result = _run_tool(["qemu-img", "check", "--output=json", "json:" + json.dumps(spec)])
    if result.returncode == 0:
        return None
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        report = {}
    counts = [f"{report[key]} {key}" for key in ("corruptions", "check-errors") if report.get(key)]
    words = result.stderr.strip().splitlines()
    detail = "; ".join(counts + words[:1])
    # Exit status 3 means leaked clusters only: wasted space, harmless to a conversion.
    return None if result.returncode == 3 else f"qemu-img check reports {detail or 'errors'}"


def _extract_from_qcow2(qcow2: Path, offset: int, size: int, destination: Path) -> str | None:
    """Copies guest bytes ``[offset, offset+size)`` of a qcow2 to a raw file; an error text on failure."""
    result = _run_tool(
        ["qemu-img", "convert", "-O", "raw", _qemu_raw_view(qcow2, offset, size), str(destination)]
    )
    return (
        None if result.returncode == 0 else (result.stderr.strip() or f"qemu-img exited {result.returncode}")
    )


def _efi_finding(message: str, fix: str) -> Problem:
    return Problem("efi_bootloader_path", message, fix)


@dataclass(frozen=True)
class EspFile:
    """Where the EFI system partition can be read: a file, the partition's offset in it, and its number."""

    path: Path
    offset: int
    number: int


def efi_findings(
    layout: Layout, image: Path | None, spooled_esp: Path | None, scratch: Path, efi_path: str
) -> list[Problem]:
    """Whether ``efi_path`` is in the EFI system partition of ``image`` (the local file or spooled qcow2),
    or of ``spooled_esp`` (the partition alone, spooled from a raw image downloaded)."""
    missing_tool = next((tool for tool in ("mdir", "qemu-img") if shutil.which(tool) is None), None)
    if missing_tool is not None:
        return [
            _efi_finding(
                f"cannot look inside the image: {missing_tool} is not installed",
                "Install qemu-utils and mtools (apt-get install qemu-utils mtools), or use the quick check.",
            )
        ]
    if layout.real_format == "qcow2":
        found = _esp_in_qcow2(image, layout.virtual_size, scratch)
    else:
        found = _esp_in_raw(layout, image, spooled_esp)
    if isinstance(found, EspFile):
        return _bootloader_findings(found, efi_path)
    return found


def _no_esp_finding() -> Problem:
    return _efi_finding(
        "the image has no EFI system partition, so a server booting in UEFI mode cannot start it",
        "Build the image with an EFI system partition (GPT type EF00, or MBR type 0xEF) holding the "
        "bootloader named by efi_bootloader_path.",
    )


def _esp_in_raw(layout: Layout, image: Path | None, spooled_esp: Path | None) -> EspFile | list[Problem]:
    esp = efi_system_partition(layout.partitions)
    if esp is None:
        return [_no_esp_finding()]
    if image is not None:
        return EspFile(image, esp.start, esp.number)
    if spooled_esp is not None:
        return EspFile(spooled_esp, 0, esp.number)
    return []


def _esp_in_qcow2(qcow2: Path | None, virtual_size: int | None, scratch: Path) -> EspFile | list[Problem]:
    """The EFI system partition copied out of the qcow2 (its place there depends on the cluster tables)."""
    if qcow2 is None or virtual_size is None:
        return []
    disk_head = scratch / "disk-head.raw"
    error = _extract_from_qcow2(qcow2, 0, min(HEAD_BYTES, virtual_size), disk_head)
    if error:
        return [_efi_finding(f"qemu-img cannot read the image: {error}", guide_fix("cannot_write"))]
    esp: Partition | None = efi_system_partition(read_partitions(disk_head.read_bytes()))
    if esp is None:
        return [_no_esp_finding()]
    esp_file = scratch / "esp.img"
    error = _extract_from_qcow2(qcow2, esp.start, esp.size, esp_file)
    if error:
        return [_efi_finding(f"qemu-img cannot read the EFI partition: {error}", guide_fix("cannot_write"))]
    return EspFile(esp_file, 0, esp.number)


def _bootloader_findings(esp: EspFile, efi_path: str) -> list[Problem]:
    listing = _run_tool(["mdir", "-/", "-b", "-i", f"{esp.path}@@{esp.offset}", "::/"])
    if listing.returncode != 0:
        return [
            _efi_finding(
                f"the EFI system partition (partition {esp.number}) is not a readable FAT file system "
                f"({listing.stderr.strip() or listing.stdout.strip()})",
                "Format the EFI system partition as FAT32 (mkfs.vfat -F 32) and install the bootloader "
                "in it.",
            )
        ]
    files = [line.removeprefix("::") for line in listing.stdout.splitlines() if line.startswith("::/")]
    wanted = "/" + "/".join(_efi_components(efi_path)).lower()
    if any(name.lower() == wanted for name in files):
        return []
    bootloaders = [name.replace("/", "\\") for name in files if name.lower().endswith(".efi")]
    if bootloaders:
        fix = f"Set efi_bootloader_path to one of the image's bootloaders: {', '.join(bootloaders[:8])}."
    else:
        fix = "The EFI system partition holds no .efi file: install a bootloader in the image (grub-install)."
    shown = "\\" + "\\".join(_efi_components(efi_path))
    return [
        _efi_finding(
            f"{shown} is not in the image's EFI system partition (partition {esp.number}), so the server "
            "would install and then never boot",
            fix,
        )
    ]
