"""The install plan: OVH's installation steps in the order OVH shows them, how long each takes, and the real
work some of them do to the server's disk (erase, download, check and write the image, config drive)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from . import imagework
from .imagework import InstallFailure
from .store import Install, Server, Step

__all__ = [
    "BYOI_TEMPLATES",
    "NEVER_ENDING_STEP",
    "OVH_ERROR_STEP",
    "PLAN",
    "InstallContext",
    "PlannedStep",
    "new_steps",
    "redact_url",
]

BYOI_TEMPLATES = ("byoi_64", "byolinux_64")
OVH_ERROR_STEP = "Rebooting server on the installed OS"
NEVER_ENDING_STEP = "Waiting for services to be up"

log = logging.getLogger("ovh_emulator")


def redact_url(url: str) -> str:
    """The URL as logs may show it: no password of a `user:password@` part, no query (it may hold a token)."""
    try:
        parsed = yarl.URL(url)
    except ValueError:
        return "<invalid URL>"
    if parsed.password is not None:
        parsed = parsed.with_password("***")
    return str(parsed.with_query(None)) + ("?***" if parsed.query_string else "")


@dataclass
class InstallContext:
    """What one running step may use and change."""

    install: Install
    server: Server
    disk: Path
    download: Path
    session: aiohttp.ClientSession
    heavy_work: asyncio.Semaphore
    download_mark: str
    image_info: imagework.ImageInfo | None = None

    @property
    def byoi(self) -> bool:
        return self.install.operating_system in BYOI_TEMPLATES

    @property
    def byolinux(self) -> bool:
        return self.install.operating_system == "byolinux_64"

    @property
    def customizations(self) -> dict[str, Any]:
        return self.install.customizations

    @property
    def image_type(self) -> str:
        # BYOLinux takes qcow2 only, and needs no imageType (OVH's Terraform acceptance test sends none).
        return str(self.customizations.get("imageType") or "qcow2")

    @property
    def disk_size(self) -> int:
        """The disk the image goes to: BYOI writes to the first disk of the target disk group only."""
        return self.server.first_disk_of(self.install.disk_group_id) or self.server.disk_size


async def _wipe_disk(context: InstallContext) -> None:
    # From here on the server's previous system is gone, whether or not the install succeeds.
    await imagework.erase_disk(context.disk, context.disk_size)
    context.server.disk_sha256 = None
    context.server.config_drive = None
    context.server.efi_bootloader_path = None


async def _check_parameters(context: InstallContext) -> None:
    if context.byoi:
        imagework.check_parameters(context.customizations)


async def _download(context: InstallContext) -> None:
    if not context.byoi:
        return
    c = context.customizations
    size = await imagework.download(
        context.session,
        c["imageURL"],
        c.get("httpHeaders") or {},
        context.download,
        memory_bytes=context.server.memory_size,
        image_type=context.image_type,
        mark=context.download_mark,
    )
    log.info("task %s: downloaded %s (%d bytes)", context.install.task_id, redact_url(c["imageURL"]), size)
    if "imageCheckSum" in c:
        async with context.heavy_work:
            await imagework.verify_checksum(context.download, c["imageCheckSumType"], c["imageCheckSum"])


async def _ensure_downloaded(context: InstallContext) -> None:
    # After a restart the downloaded image may be gone with the temporary folder: fetch it again.
    if not context.download.exists():
        await _download(context)


async def _check_image(context: InstallContext) -> imagework.ImageInfo:
    await _ensure_downloaded(context)
    async with context.heavy_work:
        context.image_info = await imagework.inspect(
            context.download,
            image_type=context.image_type,
            disk_size=context.disk_size,
        )
    return context.image_info


async def _check_byoi_image(context: InstallContext) -> None:
    if context.byoi:
        await _check_image(context)


async def _write_image(context: InstallContext) -> None:
    if not context.byoi:
        return
    # After a restart the checks run again: what was downloaded before may not be there any more.
    info = (
        context.image_info
        if context.download.exists() and context.image_info
        else await _check_image(context)
    )
    async with context.heavy_work:
        context.install.written_sha256 = await imagework.write_to_disk(
            context.download,
            image_type=context.image_type,
            disk=context.disk,
            disk_size=context.disk_size,
            image_size=info.virtual_size,
        )
    if context.byolinux:
        partitions = await imagework.count_partitions(context.disk)
        if partitions != 1:
            # BYOLinux images hold one partition: OVH's make_image_bootable.sh adds the rest.
            raise InstallFailure(
                f"image provided has {partitions} partitions while BYOLinux expects a single partition"
            )
    context.server.disk_sha256 = context.install.written_sha256
    await asyncio.to_thread(context.download.unlink, missing_ok=True)


async def _config_drive(context: InstallContext) -> None:
    c = context.customizations
    drive = {
        "userData": c.get("configDriveUserData"),
        "metadata": c.get("configDriveMetadata") or {},
        "hostname": c.get("hostname"),
        "sshKey": c.get("sshKey"),
    }
    context.server.config_drive = drive
    if context.byoi:
        context.server.efi_bootloader_path = c.get("efiBootloaderPath")


Work = Callable[[InstallContext], Awaitable[None]]


@dataclass(frozen=True)
class PlannedStep:
    comment: str
    seconds: float
    work: Work | None = None


# About ten minutes in all, like the installs OVH reports (21 steps over 10 to 11 minutes), in the order OVH
# shows them: the disk is erased before the image is downloaded, so a failed BYOI install leaves it empty.
PLAN: tuple[PlannedStep, ...] = (
    PlannedStep("Checking BIOS version", 20),
    PlannedStep("Rebooting server on the installation environment", 45),
    PlannedStep("Checking installation parameters", 5, _check_parameters),
    PlannedStep("Checking hardware", 25),
    PlannedStep("Preparing disks for new Partitioning", 15),
    PlannedStep("Cleaning Partitioning", 20, _wipe_disk),
    PlannedStep("Applying Partitioning", 15),
    PlannedStep("Downloading OS image", 60, _download),
    PlannedStep("Checking OS image", 10, _check_byoi_image),
    PlannedStep("Writing OS image on disk", 90, _write_image),
    PlannedStep("Checking Partitioning", 10),
    PlannedStep("Creating config drive", 10, _config_drive),
    PlannedStep("Configuring EFI boot entry", 10),
    PlannedStep("Configuring network", 15),
    PlannedStep(OVH_ERROR_STEP, 90),
    PlannedStep("Waiting for server to boot", 60),
    PlannedStep(NEVER_ENDING_STEP, 60),
    PlannedStep("Checking installation", 10),
    PlannedStep("Cleaning installation environment", 10),
    PlannedStep("Updating server information", 5),
    PlannedStep("Sending end of installation mail", 5),
)


def new_steps() -> list[Step]:
    return [Step(planned.comment) for planned in PLAN]
