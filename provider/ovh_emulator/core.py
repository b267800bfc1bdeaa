"""The emulated OVH: its servers, tasks and installs (how OVH's API shows them: `views`)."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import shutil
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .auth import Credentials
from .faults import Faults
from .installs import Installer
from .plan import BYOI_TEMPLATES, new_steps
from .store import Install, Server, Store, Task

__all__ = [
    "API",
    "BYOI_REQUIRED",
    "DEFAULT_BOOT_MODE",
    "DEFAULT_DISK_BYTES",
    "DEFAULT_MEMORY_BYTES",
    "EMULATOR",
    "HOSTNAME_LABEL",
    "INITIAL_OS",
    "NOT_INSTALLING",
    "SERVER_SETTINGS",
    "SN",
    "TEMPLATES",
    "Emulator",
    "EmulatorConfig",
    "OvhError",
    "emulator_of",
    "json_answer",
    "not_found",
    "server_name",
]

API = "/1.0"
SN = API + "/dedicated/server/{serviceName}"
GIB = 1024**3
# A common OVH server: a 480 GB NVMe disk (decimal, like OVH shows disks), 64 GB of RAM (shown in MB of 2^20).
DEFAULT_DISK_BYTES = 480 * 10**9
DEFAULT_MEMORY_BYTES = 64 * GIB
DEFAULT_BOOT_MODE = "uefi"
INITIAL_OS = "debian12_64"
TEMPLATES = (
    *BYOI_TEMPLATES,
    "debian11_64",
    "debian12_64",
    "ubuntu2204-server_64",
    "ubuntu2404-server_64",
    "rocky9_64",
    "alma9_64",
    "proxmox8_64",
    "win2022-std_64",
)
BYOI_REQUIRED = ("imageURL", "imageType", "efiBootloaderPath")
# OVH's rule applies per label ("Invalid hostname {label} ... see RFC 1035, section 2.3.1"): a full domain
# name whose every label follows it is accepted.
HOSTNAME_LABEL = re.compile(r"^[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
HOSTNAME_MAX = 253
# The realistic mode: how long after a reinstall OVH's API may not know the task, nor the server (emulated
# seconds; terraform-provider-ovh retries such 404s for 5 minutes), and the per-consumer-key budget an OVH
# maintainer gave (python-ovh #81).
REALISTIC_NOT_FOUND_SECONDS = 30.0
REALISTIC_REQUESTS_PER_MINUTE = 60
# What `PUT /dedicated/server/{sn}` may change (the writable properties of `dedicated.server.Dedicated`), with
# each one's value before any PUT; `efiBootloaderPath` is kept with the server, as an install sets it too.
SERVER_SETTINGS: dict[str, Any] = {
    "bootId": 1,
    "bootScript": None,
    "monitoring": True,
    "noIntervention": False,
    "rescueMail": None,
    "rescueSshKey": None,
    "rootDevice": None,
    "state": "ok",
}
# A hard reboot's task: `init`, `todo`, then `doing` until the server is back (emulated seconds).
REBOOT_TODO_AT, REBOOT_DOING_AT, REBOOT_DONE_AT = 5, 10, 120
NOT_INSTALLING = "Server is not being installed or reinstalled at the moment"


def server_name(index: int) -> str:
    """Name of the index-th (1-based) server created by `--servers`."""
    return f"ns{1_000_000 + index}.emulator.ovh"


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    servers: int = 0
    speed: float = 1.0
    state: Path | None = None
    images: Path | None = None
    images_auth: tuple[str, str] | None = None
    credentials: Credentials = field(default_factory=Credentials)
    # OVH as it behaves rather than as it is documented: 404 on fresh tasks and servers, elapsedTime that
    # goes negative across reboots, a rate limit (each overridable below).
    realistic: bool = False
    # Requests per emulated minute per consumer key (0: no limit; the realistic mode's default is 60).
    rate_limit: int | None = None
    # Emulated seconds after a reinstall during which its task and its server answer 404.
    not_found_seconds: float | None = None
    # Emulated seconds after a task ended before OVH purges it (None: never).
    purge_tasks_after: float | None = None

    @property
    def requests_per_minute(self) -> int:
        if self.rate_limit is not None:
            return self.rate_limit
        return REALISTIC_REQUESTS_PER_MINUTE if self.realistic else 0

    @property
    def fresh_task_seconds(self) -> float:
        if self.not_found_seconds is not None:
            return self.not_found_seconds
        return REALISTIC_NOT_FOUND_SECONDS if self.realistic else 0.0


class OvhError(Exception):
    """A business error of OVH's API: `{"class": ..., "message": ...}` with an HTTP status."""

    def __init__(self, status: int, error_class: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_class = error_class
        self.message = message


def not_found(**key: object) -> OvhError:
    name, value = next(iter(key.items()))
    return OvhError(404, "Client::NotFound", f"The requested object ({name} = {value}) does not exist")


def json_answer(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda value: json.dumps(value, separators=(",", ":"))
    )


class Emulator:
    """State and behaviour behind the routes."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store(config.state)
        if config.state is not None:
            self.disks_dir = config.state.with_name(config.state.name + ".disks")
            self.disks_dir.mkdir(exist_ok=True)
            self._owned_dir: str | None = None
        else:
            self._owned_dir = tempfile.mkdtemp(prefix="ovh-emulator-")
            self.disks_dir = Path(self._owned_dir)
        self.faults = Faults()
        self.installer = Installer(
            self.store, speed=config.speed, disks_dir=self.disks_dir, hold=self.faults.hold_install
        )
        self.stats: Counter[str] = Counter()
        self._query_ids = itertools.count(1)
        self._query_prefix = secrets.token_hex(3)
        self._requests: dict[str, deque[float]] = {}
        # Per consumer key: the most requests seen in one emulated minute, and how many were refused.
        self.rate_stats: dict[str, dict[str, int]] = {}
        for index in range(1, config.servers + 1):
            if self.store.server(server_name(index)) is None:
                self.add_server(server_name(index))

    async def close(self) -> None:
        self.store.close()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)

    def query_id(self) -> str:
        return f"EU.emulator.{self._query_prefix}.{int(time.time()):x}.{next(self._query_ids)}"

    def over_budget(self, consumer_key: str) -> float | None:
        """Counts a request against its consumer key's budget: None if within, else the emulated seconds
        until the budget has room again (the request is then refused and not counted)."""
        limit = self.config.requests_per_minute
        if limit <= 0:
            return None
        window = 60.0 / self.config.speed
        now = time.monotonic()
        seen = self._requests.setdefault(consumer_key, deque())
        stats = self.rate_stats.setdefault(consumer_key, {"requests": 0, "peakPerMinute": 0, "refused": 0})
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) >= limit:
            stats["refused"] += 1
            return (seen[0] + window - now) * self.config.speed
        seen.append(now)
        stats["requests"] += 1
        stats["peakPerMinute"] = max(stats["peakPerMinute"], len(seen))
        return None

    def fresh(self, task: Task | None) -> bool:
        """Whether OVH's API may still not know this task (realistic mode: the first seconds of a task)."""
        seconds = self.config.fresh_task_seconds
        return (
            task is not None and seconds > 0 and (time.time() - task.start_date) * self.config.speed < seconds
        )

    def purged(self, task: Task) -> bool:
        after = self.config.purge_tasks_after
        if after is None or task.done_date is None:
            return False
        return (time.time() - task.done_date) * self.config.speed > after

    # servers

    def add_server(
        self,
        service_name: str,
        *,
        disk_size: int = DEFAULT_DISK_BYTES,
        memory_size: int = DEFAULT_MEMORY_BYTES,
        boot_mode: str = DEFAULT_BOOT_MODE,
        disk_groups: list[dict[str, Any]] | None = None,
    ) -> Server:
        if disk_groups:
            # The disk file stands for the disk an image lands on by default: the first one of group 1.
            disk_size = int(disk_groups[0]["diskSize"])
        server = Server(
            service_name=service_name,
            server_id=self.store.next_server_id(),
            disk_size=disk_size,
            memory_size=memory_size,
            boot_mode=boot_mode,
            os=INITIAL_OS,
            disk_groups=disk_groups,
        )
        self.store.add_server(server)
        return server

    def server(self, service_name: str) -> Server:
        server = self.store.server(service_name)
        if server is None:
            raise not_found(serviceName=service_name)
        return server

    def update_server(self, server: Server, changes: dict[str, Any]) -> None:
        """A `PUT /dedicated/server/{sn}` (a body valid against `dedicated.server.Dedicated`): the writable
        properties change, an empty string clears a nullable one, read-only ones are ignored. During an
        install, the install owns `efiBootloaderPath` (it clears it, then sets the one it was given)."""
        settings = self.store.server_settings(server.service_name)
        for name, value in changes.items():
            if value == "":
                value = None
            if name == "efiBootloaderPath":
                self.store.set_efi_bootloader_path(server.service_name, value)
            elif name in SERVER_SETTINGS:
                settings[name] = value
        self.store.set_server_settings(server.service_name, settings)

    # tasks

    def start_reboot(self, server: Server) -> Task:
        return self.store.create_task(server.service_name, "hardReboot", "Reboot asked")

    def settle_reboots(self, service_name: str) -> None:
        """Moves the server's reboot tasks on to the status their age gives them (a reboot does no work)."""
        for task_id in self.store.task_ids(service_name, "hardReboot", None):
            task = self.store.task(service_name, task_id)
            if task is None or not task.active:
                continue
            age = (time.time() - task.start_date) * self.config.speed
            status = "init"
            if age >= REBOOT_DONE_AT:
                status = "done"
                task.done_date = task.start_date + REBOOT_DONE_AT / self.config.speed
            elif age >= REBOOT_DOING_AT:
                status = "doing"
            elif age >= REBOOT_TODO_AT:
                status = "todo"
            if status != task.status:
                task.status = status
                self.store.update_task(task)

    def refuse_if_busy(self, server: Server) -> None:
        running = self.store.active_task(server.service_name, "reinstallServer")
        if running is None:
            return
        if self.faults.busy_answer != "conflict":
            raise OvhError(
                400,
                "Client::BadRequest::TaskAlreadyExists",
                f"Task {running.task_id} of type {running.function} with status {running.status} "
                f"is already running on server {server.service_name}",
            )
        raise OvhError(
            409,
            "Client::Conflict::DisturbAlreadyExists",
            f"Server resource {server.service_name} is already locked by another process, "
            "blocking any new OS reinstallation",
        )

    def start_install(
        self,
        server: Server,
        operating_system: str,
        customizations: dict[str, Any],
        *,
        out_of_band: bool,
        fault: str | None,
        disk_group_id: int = 0,
    ) -> Task:
        self.refuse_if_busy(server)
        task = self.store.create_task(
            server.service_name, "reinstallServer", "Start bare metal OS installation"
        )
        install = Install(
            task_id=task.task_id,
            service_name=server.service_name,
            operating_system=operating_system,
            out_of_band=out_of_band,
            customizations=customizations,
            steps=new_steps(),
            fault=fault,
            disk_group_id=disk_group_id,
        )
        self.store.add_install(install)
        self.installer.launch(task.task_id)
        return task


EMULATOR = web.AppKey("emulator", Emulator)


def emulator_of(request: web.Request) -> Emulator:
    return request.app[EMULATOR]
