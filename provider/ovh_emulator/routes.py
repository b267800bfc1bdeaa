"""OVH's `/1.0` routes for dedicated-server reinstalls."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from . import openapi, views
from .core import (
    API,
    BYOI_REQUIRED,
    HOSTNAME_LABEL,
    HOSTNAME_MAX,
    NOT_INSTALLING,
    SN,
    TEMPLATES,
    Emulator,
    OvhError,
    emulator_of,
    json_answer,
    not_found,
)
from .plan import BYOI_TEMPLATES, PLAN
from .store import Install, Server, Task
from .untrusted import Unparsable, parse_int, parse_json

__all__ = ["API_ROUTES"]

log = logging.getLogger("ovh_emulator")


async def auth_time(request: web.Request) -> web.Response:
    return json_answer(int(time.time()))


async def auth_details(request: web.Request) -> web.Response:
    """Who the caller is. Not in the dedicated-server OpenAPI file: the shape is what OVH's Terraform provider
    reads (`OvhAuthDetails`: account, allowedRoutes, description, identities, method, roles, user)."""
    account = "emulator-ovh"
    return json_answer(
        {
            "account": account,
            "allowedRoutes": [{"method": verb, "path": "/*"} for verb in ("GET", "POST", "PUT", "DELETE")],
            "description": "OVH API emulator credential",
            "identities": [f"urn:v1:eu:identity:account:{account}"],
            "method": "account",
            "roles": [],
            "user": None,
        }
    )


async def list_servers(request: web.Request) -> web.Response:
    return json_answer(emulator_of(request).store.service_names())


async def get_server(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    server = emulator.server(request.match_info["serviceName"])
    if emulator.fresh(emulator.store.active_task(server.service_name, "reinstallServer")):
        # OVH's API, right after a reinstall, may not know the server it was asked to reinstall.
        raise not_found(serviceName=server.service_name)
    return json_answer(views.api_server(emulator, server))


async def put_server(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    server = emulator.server(request.match_info["serviceName"])
    body = await _json_body(request)
    problems = openapi.body_errors("dedicated.server.Dedicated", body)
    if problems:
        raise OvhError(400, "Client::BadRequest", "; ".join(problems))
    emulator.update_server(server, body)
    return json_answer(None)


async def reboot(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    server = emulator.server(request.match_info["serviceName"])
    task = emulator.start_reboot(server)
    log.info("task %s: hard reboot of %s", task.task_id, server.service_name)
    return json_answer(views.api_task(task))


async def authentication_secret(request: web.Request) -> web.Response:
    """The accesses OVH manages on the server; none here (a BYOI image brings its own, and the emulator keeps
    no password for the templates it pretends to install)."""
    emulator_of(request).server(request.match_info["serviceName"])
    return json_answer([])


async def get_hardware(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    return json_answer(views.hardware(emulator.server(request.match_info["serviceName"])))


async def _json_body(request: web.Request) -> Any:
    try:
        return parse_json(await request.read())
    except Unparsable as error:
        raise OvhError(400, "Client::BadRequest", f"Invalid JSON received: {error}") from None


def _check_byoi(operating_system: str, customizations: dict[str, Any]) -> None:
    if operating_system not in BYOI_TEMPLATES:
        return
    # BYOLinux needs only the image's URL: its image is qcow2, and OVH's own script makes it bootable.
    required = ("imageURL",) if operating_system == "byolinux_64" else BYOI_REQUIRED
    missing = [name for name in required if not customizations.get(name)]
    if missing:
        fields = ", ".join(f"customizations.{name}" for name in missing)
        raise OvhError(400, "Client::BadRequest", f"[{fields}] Property is mandatory for {operating_system}")
    if operating_system != "byolinux_64":
        return
    if customizations.get("imageType", "qcow2") != "qcow2":
        raise OvhError(
            400,
            "Client::BadRequest::CustomizationInvalidFormat",
            f"[customizations.imageType] Given data ({customizations['imageType']}) is not supported by "
            "byolinux_64: its image must be qcow2",
        )
    if "postInstallationScript" in customizations:
        raise OvhError(
            400,
            "Client::BadRequest::CustomizationInvalidFormat",
            "[customizations.postInstallationScript] Property is not supported by byolinux_64",
        )


def _check_hostname(hostname: str) -> None:
    labels = hostname.removesuffix(".").split(".")
    bad = next((label for label in labels if not HOSTNAME_LABEL.match(label)), None)
    if bad is None and len(hostname) <= HOSTNAME_MAX:
        return
    shown = bad if bad is not None else hostname
    raise OvhError(
        400,
        "Client::BadRequest::HostnameInvalidFormat",
        f"Invalid hostname {shown}: each label must contain no more than 63 characters, start with a letter, "
        "end with a letter or a digit and contain only letters, digits and hyphens (see RFC 1035, "
        "section 2.3.1), and the whole name no more than 253 characters",
    )


def _disk_group_id(server: Server, storage: list[dict[str, Any]] | None) -> int:
    wanted = {int(item.get("diskGroupId", 0)) for item in storage or ()}
    if len(wanted) > 1:
        raise OvhError(
            400, "Client::BadRequest", "[storage] An OS is installed on one disk group: give one diskGroupId"
        )
    disk_group_id = wanted.pop() if wanted else 0
    if disk_group_id < 0 or (disk_group_id != 0 and server.first_disk_of(disk_group_id) is None):
        known = ", ".join(str(group_id) for group_id in range(1, len(server.groups) + 1))
        raise OvhError(
            400,
            "Client::BadRequest",
            f"[storage.diskGroupId] Disk group {disk_group_id} does not exist on {server.service_name} "
            f"(its disk groups: {known}; 0 chooses automatically)",
        )
    return disk_group_id


async def reinstall(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    server = emulator.server(request.match_info["serviceName"])
    body = await _json_body(request)
    problems = openapi.body_errors("dedicated.server.Reinstall", body)
    if problems:
        raise OvhError(400, "Client::BadRequest", "; ".join(problems))
    operating_system: str = body["operatingSystem"]
    if operating_system not in TEMPLATES:
        raise OvhError(
            404, "Client::NotFound::OperatingSystem", f"Operating system {operating_system} does not exist"
        )
    customizations: dict[str, Any] = dict(body.get("customizations") or {})
    if body.get("properties"):
        customizations["properties"] = body["properties"]
    _check_byoi(operating_system, customizations)
    hostname = customizations.get("hostname")
    if hostname is not None:
        _check_hostname(hostname)
    disk_group_id = _disk_group_id(server, body.get("storage"))
    task = emulator.start_install(
        server,
        operating_system,
        customizations,
        out_of_band=False,
        fault=request.get("task_fault"),
        disk_group_id=disk_group_id,
    )
    log.info("task %s: %s reinstall of %s started", task.task_id, operating_system, server.service_name)
    return json_answer(views.api_task(task, short=True))


_TASK_FUNCTIONS = openapi.load_document()["components"]["schemas"]["dedicated.TaskFunctionEnum"]["enum"]
_TASK_STATUSES = openapi.load_document()["components"]["schemas"]["dedicated.TaskStatusEnum"]["enum"]


def _enum_query(request: web.Request, name: str, allowed: list[str]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise OvhError(
            400,
            "Client::BadRequest",
            f"[{name}] Given data ({value}) does not belong to the enumeration: {', '.join(allowed)}",
        )
    return value


async def list_tasks(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    server = emulator.server(request.match_info["serviceName"])
    emulator.settle_reboots(server.service_name)
    function = _enum_query(request, "function", _TASK_FUNCTIONS)
    status = _enum_query(request, "status", _TASK_STATUSES)
    ids = emulator.store.task_ids(server.service_name, function, status)
    if emulator.config.purge_tasks_after is not None:
        ids = [
            task_id
            for task_id in ids
            if not emulator.purged(_known(emulator.store.task(server.service_name, task_id)))
        ]
    return json_answer(ids)


def _known(task: Task | None) -> Task:
    assert task is not None
    return task


def _task(request: web.Request) -> tuple[Emulator, Task]:
    emulator = emulator_of(request)
    server = emulator.server(request.match_info["serviceName"])
    emulator.settle_reboots(server.service_name)
    raw_id = request.match_info["taskId"]
    task_id = parse_int(raw_id)
    if task_id is None:
        # OVH's task ids are 64-bit integers: a longer number is no more a task id than a word is.
        raise OvhError(400, "Client::BadRequest", f"[taskId] Given data ({raw_id}) is not of type integer")
    task = emulator.store.task(server.service_name, task_id)
    if task is None or emulator.purged(task):
        raise not_found(taskId=raw_id)
    return emulator, task


async def get_task(request: web.Request) -> web.Response:
    emulator, task = _task(request)
    if emulator.fresh(task):
        # What terraform-provider-ovh retries for 5 minutes: the region executing the task is not the one
        # answering yet.
        raise not_found(taskId=task.task_id)
    answer = views.api_task(task)
    if request.get("task_status") is not None:
        answer["status"] = request["task_status"]
    return json_answer(answer)


async def cancel_task(request: web.Request) -> web.Response:
    emulator, task = _task(request)
    if task.status not in ("init", "todo"):
        raise OvhError(
            400,
            "Client::BadRequest::TaskCannotBeCancelled",
            f"Task {task.task_id} with status {task.status} can not be cancelled",
        )
    emulator.installer.cancel(task)
    return json_answer(None)


async def install_status(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    server = emulator.server(request.match_info["serviceName"])
    install = emulator.store.visible_install(server.service_name)
    task = None if install is None else emulator.store.task(server.service_name, install.task_id)
    if install is None or task is None or task.status in ("init", "todo"):
        # Nothing is installing before the task has started working, nor after a success.
        raise OvhError(404, "Client::NotFound", NOT_INSTALLING)
    # A live payload shows "" where a step has no error, not null.
    progress = [
        {"comment": step.comment, "status": step.status, "error": step.error or ""} for step in install.steps
    ]
    return json_answer({"elapsedTime": _elapsed_time(emulator, task, install), "progress": progress})


# The reboots during which OVH's elapsedTime goes negative (ovhcloud-cli saw -1935 during the hardware reboot,
# +42 four minutes later, -87 after the final reboot): it seems to count from a clock the reboots reset.
_FIRST_REBOOT = 1
_FINAL_REBOOT = next(
    i for i, step in enumerate(PLAN) if step.comment == "Rebooting server on the installed OS"
)
_FIRST_REBOOT_OFFSET = 1980
_FINAL_REBOOT_OFFSET = 160


def _elapsed_time(emulator: Emulator, task: Task, install: Install) -> int:
    elapsed = emulator.installer.elapsed_seconds(task)
    if not emulator.config.realistic or task.status != "doing" or install.step_started is None:
        return elapsed
    index = min(install.step_index, len(PLAN) - 1)
    step_age = max(0.0, (time.time() - install.step_started) * emulator.config.speed)
    if index == _FIRST_REBOOT:
        return int(step_age) - _FIRST_REBOOT_OFFSET
    if index >= _FINAL_REBOOT:
        since = sum(step.seconds for step in PLAN[_FINAL_REBOOT:index]) + step_age
        return int(since) - _FINAL_REBOOT_OFFSET
    if index > _FIRST_REBOOT:
        return int(sum(step.seconds for step in PLAN[_FIRST_REBOOT + 1 : index]) + step_age)
    return elapsed


API_ROUTES = [
    web.get(API + "/auth/time", auth_time),
    web.get(API + "/auth/details", auth_details),
    web.get(API + "/dedicated/server", list_servers),
    web.get(SN, get_server),
    web.put(SN, put_server),
    web.post(SN + "/reboot", reboot),
    web.post(SN + "/authenticationSecret", authentication_secret),
    web.get(SN + "/specifications/hardware", get_hardware),
    web.post(SN + "/reinstall", reinstall),
    web.get(SN + "/task", list_tasks),
    web.get(SN + "/task/{taskId}", get_task),
    web.post(SN + "/task/{taskId}/cancel", cancel_task),
    web.get(SN + "/install/status", install_status),
]
