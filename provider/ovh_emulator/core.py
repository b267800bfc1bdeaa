"""The emulated OVH: its servers, tasks and installs, and how OVH's API shows them."""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
import secrets
import shutil
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from .auth import Credentials
from .faults import Faults
from .installs import BYOI_TEMPLATES, Installer, new_steps
from .store import Install, Server, Store, Task

__all__ = [
    "API",
    "BYOI_REQUIRED",
    "DEFAULT_BOOT_MODE",
    "DEFAULT_DISK_BYTES",
    "DEFAULT_MEMORY_BYTES",
    "EMULATOR",
    "HOSTNAME",
    "INITIAL_OS",
    "NOT_INSTALLING",
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
HOSTNAME = re.compile(r"^[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
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


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(int(timestamp), UTC).isoformat()


def emulator_seconds(task: Task, speed: float) -> float:
    """How long the task has lasted so far, in emulated seconds."""
    end = task.done_date if task.done_date is not None else time.time()
    return round((end - task.start_date) * speed, 1)


def json_answer(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda value: json.dumps(value, separators=(",", ":"))
    )


def size_of(value: int, units: tuple[tuple[str, int], ...]) -> dict[str, Any]:
    for unit, factor in units:
        if value % factor == 0:
            return {"unit": unit, "value": value // factor}
    return {"unit": "B", "value": value}


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
        for index in range(1, config.servers + 1):
            if self.store.server(server_name(index)) is None:
                self.add_server(server_name(index))

    async def close(self) -> None:
        self.store.close()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)

    def query_id(self) -> str:
        return f"EU.emulator.{self._query_prefix}.{int(time.time()):x}.{next(self._query_ids)}"

    # servers

    def add_server(
        self,
        service_name: str,
        *,
        disk_size: int = DEFAULT_DISK_BYTES,
        memory_size: int = DEFAULT_MEMORY_BYTES,
        boot_mode: str = DEFAULT_BOOT_MODE,
    ) -> Server:
        server = Server(
            service_name=service_name,
            server_id=self.store.next_server_id(),
            disk_size=disk_size,
            memory_size=memory_size,
            boot_mode=boot_mode,
            os=INITIAL_OS,
        )
        self.store.add_server(server)
        return server

    def server(self, service_name: str) -> Server:
        server = self.store.server(service_name)
        if server is None:
            raise not_found(serviceName=service_name)
        return server

    def api_server(self, server: Server) -> dict[str, Any]:
        index = server.server_id - 1_000_000
        return {
            "availabilityZone": "eu-west-gra-a",
            "bootId": 1,
            "bootScript": None,
            "commercialRange": "advance",
            "datacenter": "gra3",
            "efiBootloaderPath": server.efi_bootloader_path,
            "iam": {
                "displayName": server.service_name,
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, server.service_name)),
                "tags": None,
                "urn": f"urn:v1:eu:resource:dedicatedServer:{server.service_name}",
            },
            "ip": str(ipaddress.IPv4Address("10.0.0.0") + index),
            "linkSpeed": 1000,
            "monitoring": True,
            "name": server.service_name,
            "newUpgradeSystem": True,
            "noIntervention": False,
            "os": server.os,
            "powerState": "poweron",
            "professionalUse": False,
            "rack": "G102A07",
            "region": "eu-west-gra",
            "rescueMail": None,
            "rescueSshKey": None,
            "reverse": f"{server.service_name}.",
            "rootDevice": None,
            "serverId": server.server_id,
            "state": "ok",
            "supportLevel": "pro",
        }

    @staticmethod
    def hardware(server: Server) -> dict[str, Any]:
        disk = size_of(server.disk_size, (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)))
        return {
            "bootMode": server.boot_mode,
            "coresPerProcessor": 8,
            "defaultHardwareRaidSize": None,
            "defaultHardwareRaidType": None,
            "description": f"Emulated server, 1 x {disk['value']} {disk['unit']} NVMe",
            "diskGroups": [
                {
                    "defaultHardwareRaidSize": None,
                    "defaultHardwareRaidType": None,
                    "description": f"1 x {disk['value']} {disk['unit']} NVMe",
                    "diskGroupId": 1,
                    "diskSize": disk,
                    "diskType": "NVME",
                    "numberOfDisks": 1,
                    "raidController": None,
                }
            ],
            "expansionCards": None,
            "formFactor": "1u",
            "memorySize": size_of(server.memory_size, (("MB", 2**20),)),
            "motherboard": "Emulated board",
            "numberOfProcessors": 1,
            "processorArchitecture": "x86_64",
            "processorName": "AMD Ryzen 7 7700",
            "threadsPerProcessor": 16,
            "usbKeys": None,
        }

    def admin_server(self, server: Server) -> dict[str, Any]:
        history = []
        for install in self.store.installs(server.service_name):
            task = self.store.task(server.service_name, install.task_id)
            assert task is not None
            history.append(
                {
                    "taskId": task.task_id,
                    "status": task.status,
                    "comment": task.comment,
                    "startDate": iso(task.start_date),
                    "doneDate": iso(task.done_date),
                    "operatingSystem": install.operating_system,
                    "imageURL": install.customizations.get("imageURL"),
                    "imageType": install.customizations.get("imageType"),
                    "outOfBand": install.out_of_band,
                    "emulatedSeconds": emulator_seconds(task, self.config.speed),
                    "diskSha256": install.written_sha256,
                }
            )
        return {
            "serviceName": server.service_name,
            "serverId": server.server_id,
            "os": server.os,
            "diskSizeBytes": server.disk_size,
            "memoryBytes": server.memory_size,
            "bootMode": server.boot_mode,
            "diskSha256": server.disk_sha256,
            "efiBootloaderPath": server.efi_bootloader_path,
            "configDrive": server.config_drive,
            "installs": history,
        }

    # tasks

    @staticmethod
    def api_task(task: Task, *, short: bool = False) -> dict[str, Any]:
        answer = {
            "taskId": task.task_id,
            "function": task.function,
            "status": task.status,
            "comment": task.comment,
            "startDate": iso(task.start_date),
            "doneDate": iso(task.done_date),
        }
        if not short:
            answer.update(
                {
                    "lastUpdate": iso(task.last_update),
                    "needSchedule": False,
                    "note": None,
                    "plannedInterventionId": None,
                    "tags": None,
                    "ticketReference": None,
                }
            )
        return answer

    def refuse_if_busy(self, server: Server) -> None:
        running = self.store.active_task(server.service_name, "reinstallServer")
        if running is None:
            return
        if self.faults.busy_answer == "taskAlreadyExists":
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
        )
        self.store.add_install(install)
        self.installer.launch(task.task_id)
        return task


EMULATOR = web.AppKey("emulator", Emulator)


def emulator_of(request: web.Request) -> Emulator:
    return request.app[EMULATOR]
