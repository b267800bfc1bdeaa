"""Real disk images for tests and demos, built with the tools a user would use.

A raw image holds a GPT (`sfdisk`) with an EFI system partition formatted FAT (`mkfs.vfat`) holding the
bootloader files (`mcopy`) and an empty Linux root partition; the qcow2 variant is `qemu-img convert` of it.
Without a partition table the image is a bare FAT filesystem, which OVH refuses as a raw image.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from .imagework import tool

__all__ = ["DEFAULT_EFI_FILES", "build_image"]

DEFAULT_EFI_FILES: Mapping[str, bytes] = {"EFI/debian/grubx64.efi": b"emulated GRUB EFI bootloader\n"}
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
MIB = 1024**2
SECTOR = 512


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")


def _fill_fat(target: str, efi_files: Mapping[str, bytes]) -> None:
    """Copies the files into the FAT filesystem `target` (an mtools image spec, `file` or `file@@offset`)."""
    with tempfile.TemporaryDirectory(prefix="esp-") as staging:
        root = Path(staging)
        for name, content in efi_files.items():
            relative = Path(name.replace("\\", "/").lstrip("/"))
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(
                    f"efi_files: {name!r} must be a path inside the EFI partition, "
                    "like EFI/debian/grubx64.efi"
                )
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        for top in sorted(root.iterdir()):
            _run(tool("mcopy"), "-s", "-Q", "-i", target, str(top), "::/")


def _layout(table: Literal["gpt", "mbr"], *, esp_mib: int, esp: bool, root_partition: bool) -> str:
    """The sfdisk script of the image's partitions: the FAT one from the first MiB, then the root."""
    esp_sectors = esp_mib * MIB // SECTOR
    if table not in ("gpt", "mbr"):
        raise ValueError(f"table must be 'gpt' or 'mbr', not {table!r}")
    if table == "gpt":
        fat_type = ESP_TYPE if esp else LINUX_TYPE
        script = f'label: gpt\nstart=2048, size={esp_sectors}, type={fat_type}, name="EFI System Partition"\n'
        return script + (f'type={LINUX_TYPE}, name="root"\n' if root_partition else "")
    script = f"label: dos\nstart=2048, size={esp_sectors}, type={'ef' if esp else '83'}\n"
    return script + ("type=83\n" if root_partition else "")


def build_image(
    dest: Path,
    *,
    fmt: Literal["raw", "qcow2"] = "raw",
    size_mib: int = 64,
    efi_files: Mapping[str, bytes] = DEFAULT_EFI_FILES,
    partition_table: bool = True,
    root_partition: bool = True,
    table: Literal["gpt", "mbr"] = "gpt",
    esp: bool = True,
) -> Path:
    """Builds a bootable-looking disk image at `dest` and returns `dest`.

    `size_mib` is the disk's (virtual) size. With `partition_table` (a GPT, or an MBR with `table="mbr"`),
    the EFI system partition takes half of the disk after the first MiB and a Linux partition the rest
    (without `root_partition`, the EFI system partition is the only one, as a BYOLinux image has one
    partition; without `esp`, that FAT partition is typed as Linux data, so the image has no EFI system
    partition); without a partition table the image is one FAT filesystem.
    """
    # One function on purpose: the layout's numbers (sectors, the FAT's offset) are shared by every step.
    if fmt not in ("raw", "qcow2"):
        raise ValueError(f"fmt must be 'raw' or 'qcow2', not {fmt!r}")
    if size_mib < 4:
        raise ValueError(f"size_mib must be at least 4 (a GPT and two partitions), not {size_mib}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="image-", dir=dest.parent) as work:
        raw = Path(work) / "disk.raw"
        with raw.open("wb") as disk:
            disk.truncate(size_mib * MIB)
        if partition_table:
            esp_mib = max(1, (size_mib - 2) // 2)
            script = _layout(table, esp_mib=esp_mib, esp=esp, root_partition=root_partition)
            result = subprocess.run(
                [tool("sfdisk"), "--quiet", str(raw)],
                input=script,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"sfdisk failed: {result.stderr.strip()}")
            _run(tool("mkfs.vfat"), "--offset=2048", "-n", "EFI", str(raw), str(esp_mib * 1024))
            _fill_fat(f"{raw}@@{MIB}", efi_files)
        else:
            _run(tool("mkfs.vfat"), "-n", "EFI", str(raw))
            _fill_fat(str(raw), efi_files)
        if fmt == "qcow2":
            _run(tool("qemu-img"), "convert", "-f", "raw", "-O", "qcow2", str(raw), str(dest))
        else:
            raw.replace(dest)
    return dest
