"""What OVH's installer does with a BYOI image, for real: download, verify, inspect and write it.

Each check fails with the exact text of the "Common customer errors" table of OVH's BYOI guide, which the
install turns into a `customerError` task. Heavy work (hashing, `qemu-img`, `file`, `blkid`) runs in threads
or subprocesses so that the event loop keeps answering API calls during hundreds of concurrent installs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import struct
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from multidict import CIMultiDict

__all__ = [
    "CHECKSUM_TYPES",
    "DOWNLOAD_MARK_HEADER",
    "ImageInfo",
    "InstallFailure",
    "check_parameters",
    "download",
    "inspect",
    "tool",
    "verify_checksum",
    "write_to_disk",
]

CHECKSUM_TYPES = ("md5", "sha1", "sha256", "sha512")
_CHUNK = 1 << 20
# The installer downloads the image into RAM next to its own system, which keeps this much for itself.
RESERVED_MEMORY_BYTES = 3 * 1024**3
# Sent with every download (a secret of the emulator process as its value), so that the emulator recognises
# its own downloader and refuses it its admin routes, whatever name or redirect led it there.
DOWNLOAD_MARK_HEADER = "X-Ovh-Emulator-Download"


class InstallFailure(Exception):
    """An install step failed; `text` is what OVH reports, `status` the task's final status."""

    def __init__(self, text: str, status: str = "customerError") -> None:
        super().__init__(text)
        self.text = text
        self.status = status


def tool(name: str) -> str:
    """Path of a system tool, also looked up in the sbin directories that a non-root PATH lacks."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (Debian: qemu-utils, util-linux, file)")
    return found


async def _run(*args: str) -> tuple[int, str, str]:
    # Started and waited for in a worker thread: forking from the event loop's thread would stall it for
    # milliseconds per process, which hundreds of concurrent installs add up.
    process = await asyncio.to_thread(
        subprocess.Popen, args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        out, err = await asyncio.to_thread(process.communicate)
    except asyncio.CancelledError:
        process.kill()
        raise
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def check_parameters(customizations: Mapping[str, Any]) -> None:
    if ("imageCheckSum" in customizations) != ("imageCheckSumType" in customizations):
        raise InstallFailure("Please provide checkSum AND checkSumType or none of them")


async def download(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    dest: Path,
    *,
    memory_bytes: int,
    image_type: str,
    mark: str,
) -> int:
    """Downloads the image to `dest` (standing for the installer's RAM disk); returns its size in bytes."""
    room = memory_bytes - RESERVED_MEMORY_BYTES
    too_big = InstallFailure(f"Could not download, {image_type} image is too big to download in memory.")
    unreachable = InstallFailure(f"Could not download image located: {url}")
    sent = CIMultiDict(headers)
    sent[DOWNLOAD_MARK_HEADER] = mark  # last: no header of the user's replaces it
    size = 0
    try:
        async with session.get(url, headers=sent) as response:
            if response.status >= 400:
                raise unreachable
            if response.content_length is not None and response.content_length > room:
                raise too_big
            with dest.open("wb") as sink:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > room:
                        raise too_big
                    sink.write(chunk)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise unreachable from error
    return size


def _digest(path: Path, algorithm: str, limit: int | None = None) -> str:
    digest = hashlib.new(algorithm)
    remaining = limit
    with path.open("rb") as source:
        while remaining is None or remaining > 0:
            chunk = source.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
            if not chunk:
                break
            digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return digest.hexdigest()


async def verify_checksum(path: Path, algorithm: str, expected: str) -> None:
    actual = await asyncio.to_thread(_digest, path, algorithm)
    if actual.lower() != expected.strip().lower():
        raise InstallFailure(
            f"Bad checkSumType for downloaded file, got: {actual} while expecting {expected}."
        )


@dataclass(frozen=True)
class ImageInfo:
    format: str
    virtual_size: int


async def _partition_table(path: Path) -> str | None:
    code, out, _ = await _run(tool("blkid"), "-p", "-o", "export", str(path))
    if code != 0:
        return None
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return fields.get("PTTYPE")


async def _description(path: Path) -> str:
    code, out, _ = await _run(tool("file"), "-b", str(path))
    return out.strip() if code == 0 and out.strip() else "data"


async def inspect(path: Path, *, image_type: str, disk_size: int) -> ImageInfo:
    """Checks the real format, partition table and size of a downloaded image against its type and disk."""
    cannot_write = InstallFailure(f"Can't write {image_type} on disk")
    # Without `-f`, qemu-img probes the real format, whatever the file is called or declared to be.
    code, out, _ = await _run(tool("qemu-img"), "info", "--output=json", str(path))
    if code != 0:
        raise cannot_write
    info = json.loads(out)
    detected = str(info.get("format"))
    if detected != image_type:
        raise InstallFailure(
            f"image provided format is {detected} which does not match expected {image_type} format"
        )
    # A backing file or an external data file would make qemu-img read files of the installer's own system.
    if info.get("backing-filename") or info.get("format-specific", {}).get("data", {}).get("data-file"):
        raise cannot_write
    if info.get("format-specific", {}).get("data", {}).get("corrupt"):
        raise cannot_write
    if image_type == "raw" and await _partition_table(path) is None:
        raise InstallFailure(
            "image provided format is not of type raw because no partition table was found. "
            f"It seems to contain: {await _description(path)}"
        )
    virtual_size = int(info["virtual-size"])
    if virtual_size > disk_size:
        raise InstallFailure(
            f"image provided has a size of {virtual_size} bytes "
            f"which is larger than device of {disk_size} bytes"
        )
    return ImageInfo(detected, virtual_size)


def _count_partitions(disk: Path) -> int:
    with disk.open("rb") as device:
        head = device.read(512 * 2)
        if head[512:520] == b"EFI PART":
            entries_lba, count, size = struct.unpack_from("<QII", head, 512 + 72)
            device.seek(entries_lba * 512)
            table = device.read(min(count, 1024) * size)
            return sum(1 for i in range(0, len(table), size) if any(table[i : i + 16]))
    if head[510:512] != b"\x55\xaa":
        return 0
    return sum(1 for i in range(4) if head[446 + 16 * i + 4] not in (0, 0xEE))


async def count_partitions(disk: Path) -> int:
    """Partitions of the partition table (GPT, else MBR) at the start of a raw disk; 0 without one."""
    return await asyncio.to_thread(_count_partitions, disk)


def _blank_disk(disk: Path, disk_size: int) -> None:
    with disk.open("wb") as device:
        device.truncate(disk_size)


async def write_to_disk(image: Path, *, image_type: str, disk: Path, disk_size: int, image_size: int) -> str:
    """Writes the image onto the server's sparse disk (`qemu-img convert`); returns the sha256 written."""
    await asyncio.to_thread(_blank_disk, disk, disk_size)
    code, _, _ = await _run(
        tool("qemu-img"), "convert", "-n", "-f", image_type, "-O", "raw", str(image), str(disk)
    )
    if code != 0:
        raise InstallFailure(f"Can't write {image_type} on disk")
    return await asyncio.to_thread(_digest, disk, "sha256", image_size)


async def erase_disk(disk: Path, disk_size: int) -> None:
    await asyncio.to_thread(_blank_disk, disk, disk_size)
