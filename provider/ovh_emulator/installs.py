"""The reinstall state machine: a task goes `init` -> `todo` -> `doing` -> `done` through OVH-like steps.

Every install is an asyncio task driven by timestamps stored in SQLite (task start, current step and when
it started), so that a restarted emulator picks each unfinished install up where its schedule says it is:
time spent stopped counts as elapsed (the real server kept installing while the API was away), and a step
that does real work (download, checks, write) runs again from its beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from . import imagework
from .imagework import InstallFailure
from .store import Install, Server, Step, Store, Task

__all__ = [
    "BYOI_TEMPLATES",
    "INIT_SECONDS",
    "NEVER_ENDING_STEP",
    "OVH_ERROR_STEP",
    "PLAN",
    "TODO_SECONDS",
    "Installer",
    "new_steps",
    "redact_url",
]

BYOI_TEMPLATES = ("byoi_64", "byolinux_64")
INIT_SECONDS = 10.0
TODO_SECONDS = 15.0
OVH_ERROR_STEP = "Rebooting server on the installed OS"
OVH_ERROR_TEXT = (
    "An internal error occurred while installing the server, OVHcloud technicians have been notified"
)
NEVER_ENDING_STEP = "Waiting for services to be up"

log = logging.getLogger("ovh_emulator")


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


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


Hold = Callable[[str, str], Awaitable[None]]


async def _never_hold(service_name: str, stage: str) -> None:
    return None


class Installer:
    """Runs installs as asyncio tasks; owns the HTTP client that downloads images."""

    def __init__(self, store: Store, *, speed: float, disks_dir: Path, hold: Hold = _never_hold) -> None:
        self._store = store
        # Awaited as an install reaches a status or a step (server, stage): a test's fault may park it there.
        self._hold = hold
        self._speed = speed
        self._disks_dir = disks_dir
        self._running: dict[int, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None
        # Subprocesses spend much of their life starting up and waiting on I/O: run a few per core.
        self._heavy_work = asyncio.Semaphore(4 * (os.cpu_count() or 2))
        self.download_mark = secrets.token_hex(16)

    @property
    def speed(self) -> float:
        return self._speed

    async def open(self) -> None:
        # No proxy from the environment: images are fetched the way a server in a datacenter fetches them.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60),
            connector=aiohttp.TCPConnector(limit=0),
        )

    def resume(self) -> None:
        """Picks up the installs that were running when the emulator last stopped."""
        for task in self._store.active_tasks():
            if self._store.install(task.task_id) is not None:
                log.info("task %s: resuming the install of %s", task.task_id, task.service_name)
                self.launch(task.task_id)

    async def close(self) -> None:
        running = list(self._running.values())
        for job in running:
            job.cancel()
        for job in running:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        if self._session is not None:
            await self._session.close()

    def launch(self, task_id: int) -> None:
        job = asyncio.get_running_loop().create_task(self._drive(task_id), name=f"install-{task_id}")
        self._running[task_id] = job
        job.add_done_callback(lambda _: self._running.pop(task_id, None))

    def stop(self, task_id: int) -> None:
        job = self._running.get(task_id)
        if job is not None:
            job.cancel()

    def elapsed_seconds(self, task: Task) -> int:
        """Emulated seconds since the install began."""
        end = task.done_date if task.done_date is not None else time.time()
        return max(0, int((end - task.start_date) * self._speed))

    async def _sleep_until(self, deadline: float) -> None:
        delay = deadline - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _drive(self, task_id: int) -> None:
        store = self._store
        install = store.install(task_id)
        assert install is not None
        task = store.task(install.service_name, task_id)
        server = store.server(install.service_name)
        assert task is not None and server is not None
        assert self._session is not None
        context = InstallContext(
            install,
            server,
            disk=self._disks_dir / f"{server.service_name}.disk",
            download=self._disks_dir / f"task-{task_id}.image",
            session=self._session,
            heavy_work=self._heavy_work,
            download_mark=self.download_mark,
        )
        try:
            await self._advance_status(task, "init", "todo", INIT_SECONDS)
            await self._advance_status(task, "todo", "doing", INIT_SECONDS + TODO_SECONDS)
            while install.step_index < len(PLAN):
                await self._run_step(context, task)
            self._finish(context, task)
        except InstallFailure as failure:
            self._fail(context, task, failure)
        except Exception:
            log.exception("task %s: the emulator itself failed", task_id)
            self._fail(context, task, InstallFailure(OVH_ERROR_TEXT, "ovhError"))
        finally:
            if task.status not in ("init", "todo", "doing") and context.download.exists():
                context.download.unlink()

    async def _advance_status(self, task: Task, current: str, following: str, at_seconds: float) -> None:
        if task.status != current:
            return
        await self._hold(task.service_name, current)
        await self._sleep_until(task.start_date + at_seconds / self._speed)
        task.status = following
        self._store.update_task(task)

    async def _run_step(self, context: InstallContext, task: Task) -> None:
        install, planned = context.install, PLAN[context.install.step_index]
        step = install.steps[install.step_index]
        if step.status != "doing":
            step.status = "doing"
            if install.step_started is None:  # the first step starts when the task turns `doing`
                install.step_started = task.start_date + (INIT_SECONDS + TODO_SECONDS) / self._speed
            self._store.update_install(install)
        assert install.step_started is not None
        await self._hold(install.service_name, planned.comment)
        if install.fault == "ovhError" and planned.comment == OVH_ERROR_STEP:
            raise InstallFailure(OVH_ERROR_TEXT, "ovhError")
        if install.fault == "neverFinish" and planned.comment == NEVER_ENDING_STEP:
            await asyncio.Event().wait()
        if planned.work is not None:
            await planned.work(context)
            self._store.update_server(context.server)
        worked_until = time.time()
        deadline = install.step_started + planned.seconds / self._speed
        await self._sleep_until(deadline)
        step.status = "done"
        install.step_index += 1
        # The next step starts when this one was due to end (or when its work did, if later), not when the
        # loop woke up: late wake-ups do not add up over 21 steps at high speed.
        install.step_started = max(deadline, worked_until)
        if install.step_index < len(install.steps):
            install.steps[install.step_index].status = "doing"
        self._store.update_install(install)

    def _finish(self, context: InstallContext, task: Task) -> None:
        context.server.os = context.install.operating_system
        self._store.update_server(context.server)
        context.install.progress_visible = False
        self._store.update_install(context.install)
        task.status = "done"
        task.done_date = time.time()
        self._store.update_task(task)
        log.info("task %s: %s now runs %s", task.task_id, task.service_name, context.server.os)

    def _fail(self, context: InstallContext, task: Task, failure: InstallFailure) -> None:
        install = context.install
        step = install.steps[min(install.step_index, len(install.steps) - 1)]
        step.status = "error"
        step.error = failure.text
        # The failed progress stays readable until the next install, so the failing step's error can be read.
        self._store.update_install(install)
        self._store.update_server(context.server)
        task.status = failure.status
        task.comment = failure.text
        task.done_date = time.time()
        self._store.update_task(task)
        # The text may quote the image URL, password and all (OVH repeats what it was given): not in the log.
        shown = _URL.sub(lambda match: redact_url(match.group(0)), failure.text)
        log.info("task %s: %s on %s: %s", task.task_id, failure.status, task.service_name, shown)

    def cancel(self, task: Task) -> None:
        """Cancels a task that has not started working yet (the caller checked its status)."""
        self.stop(task.task_id)
        install = self._store.install(task.task_id)
        if install is not None:
            install.progress_visible = False
            self._store.update_install(install)
        task.status = "cancelled"
        task.done_date = time.time()
        self._store.update_task(task)
