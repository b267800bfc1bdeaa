"""The variants of a disk image the preflight and command tests need beyond what
`ovh_emulator.images.build_image` builds: a qcow2 overlay on a backing file, a gzip copy, an ISO's head."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

_TOOL_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def run(*args: str | Path) -> None:
    subprocess.run(
        [str(arg) for arg in args],
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": _TOOL_PATH},
    )


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
