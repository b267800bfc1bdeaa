"""OVH's `/1.0` routes for dedicated-server reinstalls."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from aiohttp import web

from . import openapi
from .core import (
    API,
    BYOI_REQUIRED,
    HOSTNAME,
    NOT_INSTALLING,
    SN,
    TEMPLATES,
    Emulator,
    OvhError,
    emulator_of,
    json_answer,
    not_found,
)
from .installs import BYOI_TEMPLATES
from .store import Task

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
    return json_answer(emulator.api_server(emulator.server(request.match_info["serviceName"])))


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
    return json_answer(emulator.api_task(task))


async def authentication_secret(request: web.Request) -> web.Response:
    """The accesses OVH manages on the server; none here (a BYOI image brings its own, and the emulator keeps
    no password for the templates it pretends to install)."""
    emulator_of(request).server(request.match_info["serviceName"])
    return json_answer([])


async def get_hardware(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    return json_answer(emulator.hardware(emulator.server(request.match_info["serviceName"])))


async def _json_body(request: web.Request) -> Any:
    text = await request.text()
    try:
        return json.loads(text) if text else None
    except ValueError as error:
        raise OvhError(400, "Client::BadRequest", f"Invalid JSON received: {error}") from error


def _check_byoi(operating_system: str, customizations: dict[str, Any]) -> None:
    if operating_system not in BYOI_TEMPLATES:
        return
    missing = [name for name in BYOI_REQUIRED if not customizations.get(name)]
    if missing:
        fields = ", ".join(f"customizations.{name}" for name in missing)
        raise OvhError(400, "Client::BadRequest", f"[{fields}] Property is mandatory for {operating_system}")


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
    if hostname is not None and not HOSTNAME.match(hostname):
        raise OvhError(
            400,
            "Client::BadRequest::HostnameInvalidFormat",
            f"Hostname {hostname} must contain no more than 63 characters, start with a letter, "
            "end with a letter or a digit and contain only letters, digits and hyphens",
        )
    task = emulator.start_install(
        server, operating_system, customizations, out_of_band=False, fault=request.get("task_fault")
    )
    log.info("task %s: %s reinstall of %s started", task.task_id, operating_system, server.service_name)
    return json_answer(emulator.api_task(task, short=True))


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
    return json_answer(emulator.store.task_ids(server.service_name, function, status))


def _task(request: web.Request) -> tuple[Emulator, Task]:
    emulator = emulator_of(request)
    server = emulator.server(request.match_info["serviceName"])
    emulator.settle_reboots(server.service_name)
    raw_id = request.match_info["taskId"]
    if not raw_id.isdigit():
        raise OvhError(400, "Client::BadRequest", f"[taskId] Given data ({raw_id}) is not of type integer")
    task = emulator.store.task(server.service_name, int(raw_id))
    if task is None:
        raise not_found(taskId=raw_id)
    return emulator, task


async def get_task(request: web.Request) -> web.Response:
    emulator, task = _task(request)
    return json_answer(emulator.api_task(task))


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
    if install is None:
        raise OvhError(404, "Client::NotFound", NOT_INSTALLING)
    task = emulator.store.task(server.service_name, install.task_id)
    assert task is not None
    progress = [
        {"comment": step.comment, "status": step.status, "error": step.error} for step in install.steps
    ]
    return json_answer({"elapsedTime": emulator.installer.elapsed_seconds(task), "progress": progress})


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
