"""How OVH's API, and the emulator's admin routes, show servers, their hardware, tasks and dates."""

from __future__ import annotations

import ipaddress
import math
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .core import SERVER_SETTINGS, Emulator
from .store import Server, Task

__all__ = ["admin_server", "api_server", "api_task", "emulator_seconds", "hardware", "iso", "iso_ms"]


# OVH shows dates in Paris time with an offset (`2024-01-26T17:57:10+01:00`) on some fields and in UTC with
# milliseconds (`2024-11-20T15:22:14.449Z`) on others; clients must read both.
def _paris(moment: datetime) -> timezone:
    # Central European Time; summer time from the last Sunday of March to that of October, 01:00 UTC.
    def last_sunday(month: int) -> datetime:
        end = datetime(moment.year, month + 1, 1, 1, tzinfo=UTC) - timedelta(days=1)
        return end - timedelta(days=(end.weekday() + 1) % 7)

    summer = last_sunday(3) <= moment < last_sunday(10)
    return timezone(timedelta(hours=2 if summer else 1))


def iso(timestamp: float | None) -> str | None:
    """A date as OVH shows task start and done dates: local time of Paris, to the second, with its offset."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(int(timestamp), UTC)
    return moment.astimezone(_paris(moment)).isoformat()


def iso_ms(timestamp: float | None) -> str | None:
    """A date as OVH shows some others: UTC with milliseconds, `Z`."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(math.floor(timestamp * 1000) / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def emulator_seconds(task: Task, speed: float) -> float:
    """How long the task has lasted so far, in emulated seconds."""
    end = task.done_date if task.done_date is not None else time.time()
    return round((end - task.start_date) * speed, 1)


def size_of(value: int, units: tuple[tuple[str, int], ...]) -> dict[str, Any]:
    for unit, factor in units:
        if value % factor == 0:
            return {"unit": unit, "value": value // factor}
    return {"unit": "B", "value": value}


def api_server(emulator: Emulator, server: Server) -> dict[str, Any]:
    index = server.server_id - 1_000_000
    settings = {**SERVER_SETTINGS, **emulator.store.server_settings(server.service_name)}
    return {
        **settings,
        "availabilityZone": "eu-west-gra-a",
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
        "name": server.service_name,
        "newUpgradeSystem": True,
        "os": server.os,
        "powerState": "poweron",
        "professionalUse": False,
        "rack": "G102A07",
        "region": "eu-west-gra",
        "reverse": f"{server.service_name}.",
        "serverId": server.server_id,
        "supportLevel": "pro",
    }


def hardware(server: Server) -> dict[str, Any]:
    groups = []
    for group_id, group in enumerate(server.groups, start=1):
        # As OVH shows it: the size of one disk of the group, and how many there are.
        disk = size_of(int(group["diskSize"]), (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)))
        label = f"{group['numberOfDisks']} x {disk['value']} {disk['unit']} {group['diskType']}"
        groups.append(
            {
                "defaultHardwareRaidSize": None,
                "defaultHardwareRaidType": None,
                "description": label,
                "diskGroupId": group_id,
                "diskSize": disk,
                "diskType": group["diskType"],
                "numberOfDisks": group["numberOfDisks"],
                "raidController": None,
            }
        )
    return {
        "bootMode": server.boot_mode,
        "coresPerProcessor": 8,
        "defaultHardwareRaidSize": None,
        "defaultHardwareRaidType": None,
        "description": "Emulated server, " + " + ".join(group["description"] for group in groups),
        "diskGroups": groups,
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


def admin_server(emulator: Emulator, server: Server) -> dict[str, Any]:
    history = []
    for install in emulator.store.installs(server.service_name):
        task = emulator.store.task(server.service_name, install.task_id)
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
                "diskGroupId": install.disk_group_id,
                "outOfBand": install.out_of_band,
                "emulatedSeconds": emulator_seconds(task, emulator.config.speed),
                "diskSha256": install.written_sha256,
            }
        )
    return {
        "serviceName": server.service_name,
        "serverId": server.server_id,
        "os": server.os,
        "diskSizeBytes": server.disk_size,
        "diskGroups": [
            {"diskGroupId": group_id, **group} for group_id, group in enumerate(server.groups, start=1)
        ],
        "memoryBytes": server.memory_size,
        "bootMode": server.boot_mode,
        "diskSha256": server.disk_sha256,
        "efiBootloaderPath": server.efi_bootloader_path,
        "configDrive": server.config_drive,
        "installs": history,
    }


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
                "lastUpdate": iso_ms(task.last_update),
                "needSchedule": False,
                "note": None,
                "plannedInterventionId": None,
                "tags": None,
                "ticketReference": None,
            }
        )
    return answer
