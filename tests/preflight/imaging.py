"""Real disk images for the preflight and command tests, made with the tools OVH's users use.

A GPT (or MBR) disk with a FAT EFI system partition holding chosen files (sfdisk, mkfs.vfat, mtools), its
qcow2 conversion (qemu-img), and the broken variants behind OVH's failure texts (the catalog in
ovh_byoi.errors).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

SECTOR = 512
ESP_START_SECTOR = 2048
ESP_SECTORS = 40960  # 20 MiB
DEFAULT_EFI_FILES: Mapping[str, bytes] = {"EFI/debian/grubx64.efi": b"grub", "EFI/BOOT/BOOTX64.EFI": b"shim"}
_TOOL_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def run(*args: str | Path) -> None:
    subprocess.run(
        [str(arg) for arg in args],
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": _TOOL_PATH, "MTOOLS_SKIP_CHECK": "1"},
    )


def _esp(path: Path, efi_files: Mapping[str, bytes]) -> None:
    with path.open("wb") as esp:
        esp.truncate(ESP_SECTORS * SECTOR)
    run("mkfs.vfat", path)
    directories: set[str] = set()
    for name, content in efi_files.items():
        parts = name.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in directories:
                run("mmd", "-i", path, f"::/{directory}")
                directories.add(directory)
        source = path.with_name("payload")
        source.write_bytes(content)
        run("mcopy", "-i", path, source, f"::/{name}")
        source.unlink()


def build_disk(
    dest: Path,
    *,
    fmt: str = "raw",
    size_mib: int = 64,
    efi_files: Mapping[str, bytes] = DEFAULT_EFI_FILES,
    table: str | None = "gpt",
    esp: bool = True,
) -> Path:
    """A disk image of ``size_mib`` MiB: partition ``table`` ("gpt", "mbr" or None), an EFI system partition
    holding ``efi_files`` (a plain data partition instead when not ``esp``), and a Linux partition; converted
    to qcow2 when ``fmt`` says so."""
    raw = dest.with_suffix(".build.raw") if fmt == "qcow2" else dest
    with raw.open("wb") as disk:
        disk.truncate(size_mib * 1024 * 1024)
    if table is not None:
        esp_type, linux_type = (
            ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "0FC63DAF-8483-4772-8E79-3D69D8477DE4")
            if table == "gpt"
            else ("ef", "83")
        )
        if not esp:
            esp_type = linux_type
        layout = (
            f"label: {'gpt' if table == 'gpt' else 'dos'}\n"
            f"start={ESP_START_SECTOR}, size={ESP_SECTORS}, type={esp_type}\n"
            f"start={ESP_START_SECTOR + ESP_SECTORS}, type={linux_type}\n"
        )
        subprocess.run(
            ["sfdisk", "-q", str(raw)],
            input=layout.encode(),
            check=True,
            capture_output=True,
            env={**os.environ, "PATH": _TOOL_PATH},
        )
    esp = dest.with_suffix(".esp")
    _esp(esp, efi_files)
    with raw.open("r+b") as disk, esp.open("rb") as partition:
        # Without a table the file system starts the disk: a bare file system is a classic mistake.
        disk.seek(ESP_START_SECTOR * SECTOR if table is not None else 0)
        shutil.copyfileobj(partition, disk)
    esp.unlink()
    if fmt == "qcow2":
        run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, dest)
        raw.unlink()
    return dest


def build_qcow2_with_backing(dest: Path, backing: Path) -> Path:
    run("qemu-img", "create", "-f", "qcow2", "-F", "qcow2", "-b", backing, dest)
    return dest


def gzip_file(source: Path, dest: Path) -> Path:
    with source.open("rb") as plain, gzip.open(dest, "wb", compresslevel=1) as packed:
        shutil.copyfileobj(plain, packed)
    return dest


def iso_like(dest: Path) -> Path:
    """The first 36 KiB of an ISO 9660 image: a system area, then a primary volume descriptor."""
    descriptor = bytearray(2048)
    descriptor[0:7] = b"\x01CD001\x01"
    descriptor[80:84] = (18).to_bytes(4, "little")  # volume size in blocks
    descriptor[128:130] = (2048).to_bytes(2, "little")  # block size
    dest.write_bytes(bytes(32 * 1024) + bytes(descriptor) + bytes(2048))
    return dest
