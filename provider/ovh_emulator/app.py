"""The emulator's HTTP server: OVH's `/1.0` routes, the `/_emulator/` admin routes, the `/images/` folder."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import itertools
import json
import logging
import re
import secrets
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp import web

from . import openapi
from .auth import Credentials, check_request
from .faults import REINSTALL_ROUTE, Faults, spec_errors
from .installs import BYOI_TEMPLATES, PLAN, Installer, new_steps, redact_url
from .store import Install, Server, Store, Task

__all__ = ["DEFAULT_SERVER", "EmulatorConfig", "build_app", "serve", "server_name"]

log = logging.getLogger("ovh_emulator")

API = "/1.0"
SN = API + "/dedicated/server/{serviceName}"
GIB = 1024**3
# A common OVH server: a 480 GB NVMe disk (decimal, like OVH shows disks), 64 GB of RAM (shown in MB of 2^20).
DEFAULT_SERVER: dict[str, Any] = {"diskSizeBytes": 480 * 10**9, "memoryBytes": 64 * GIB, "bootMode": "uefi"}
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

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda value: json.dumps(value, separators=(",", ":"))
    )


def _size(value: int, units: tuple[tuple[str, int], ...]) -> dict[str, Any]:
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
        self.installer = Installer(self.store, speed=config.speed, disks_dir=self.disks_dir)
        self.faults = Faults()
        self.stats: Counter[str] = Counter()
        self._query_ids = itertools.count(1)
        self._query_prefix = secrets.token_hex(3)
        for index in range(1, config.servers + 1):
            if self.store.server(server_name(index)) is None:
                self.add_server(server_name(index), **DEFAULT_SERVER)

    async def close(self) -> None:
        self.store.close()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)

    def query_id(self) -> str:
        return f"EU.emulator.{self._query_prefix}.{int(time.time()):x}.{next(self._query_ids)}"

    # servers

    def add_server(self, service_name: str, *, diskSizeBytes: int, memoryBytes: int, bootMode: str) -> Server:
        server = Server(
            service_name=service_name,
            server_id=self.store.next_server_id(),
            disk_size=diskSizeBytes,
            memory_size=memoryBytes,
            boot_mode=bootMode,
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
        disk = _size(server.disk_size, (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)))
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
            "memorySize": _size(server.memory_size, (("MB", 2**20),)),
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


# ----------------------------------------------------------------------------------------------------
# OVH API routes

EMULATOR = web.AppKey("emulator", Emulator)


def _emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR]


async def auth_time(request: web.Request) -> web.Response:
    return _json(int(time.time()))


async def list_servers(request: web.Request) -> web.Response:
    return _json(_emulator(request).store.service_names())


async def get_server(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    return _json(emulator.api_server(emulator.server(request.match_info["serviceName"])))


async def get_hardware(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    return _json(emulator.hardware(emulator.server(request.match_info["serviceName"])))


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
    emulator = _emulator(request)
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
    return _json(emulator.api_task(task, short=True))


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
    emulator = _emulator(request)
    server = emulator.server(request.match_info["serviceName"])
    function = _enum_query(request, "function", _TASK_FUNCTIONS)
    status = _enum_query(request, "status", _TASK_STATUSES)
    return _json(emulator.store.task_ids(server.service_name, function, status))


def _task(request: web.Request) -> tuple[Emulator, Task]:
    emulator = _emulator(request)
    server = emulator.server(request.match_info["serviceName"])
    raw_id = request.match_info["taskId"]
    if not raw_id.isdigit():
        raise OvhError(400, "Client::BadRequest", f"[taskId] Given data ({raw_id}) is not of type integer")
    task = emulator.store.task(server.service_name, int(raw_id))
    if task is None:
        raise not_found(taskId=raw_id)
    return emulator, task


async def get_task(request: web.Request) -> web.Response:
    emulator, task = _task(request)
    return _json(emulator.api_task(task))


async def cancel_task(request: web.Request) -> web.Response:
    emulator, task = _task(request)
    if task.status not in ("init", "todo"):
        raise OvhError(
            400,
            "Client::BadRequest::TaskCannotBeCancelled",
            f"Task {task.task_id} with status {task.status} can not be cancelled",
        )
    emulator.installer.cancel(task)
    return _json(None)


async def install_status(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    server = emulator.server(request.match_info["serviceName"])
    install = emulator.store.visible_install(server.service_name)
    if install is None:
        raise OvhError(404, "Client::NotFound", NOT_INSTALLING)
    task = emulator.store.task(server.service_name, install.task_id)
    assert task is not None
    progress = [
        {"comment": step.comment, "status": step.status, "error": step.error} for step in install.steps
    ]
    return _json({"elapsedTime": emulator.installer.elapsed_seconds(task), "progress": progress})


# ----------------------------------------------------------------------------------------------------
# Admin routes


class AdminError(web.HTTPException):
    def __init__(self, status: int, message: str) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"message": message}), content_type="application/json")


_NEW_SERVER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["serviceName"],
    "properties": {
        "serviceName": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9.-]{0,62}$"},
        "diskSizeBytes": {"type": "integer", "minimum": 1024**2},
        "memoryBytes": {"type": "integer", "minimum": 1024**2},
        "bootMode": {"enum": ["legacy", "uefi", "uefi-legacy"]},
    },
}


async def _admin_body(request: web.Request, schema: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(await request.text() or "null")
    except ValueError as error:
        raise AdminError(400, f"the body is not JSON: {error}") from error
    problems = [
        f"{'.'.join(map(str, error.absolute_path)) or 'body'}: {error.message}"
        for error in jsonschema.Draft202012Validator(schema).iter_errors(body)
    ]
    if problems:
        raise AdminError(400, "; ".join(problems))
    result: dict[str, Any] = body
    return result


async def admin_add_server(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    body = await _admin_body(request, _NEW_SERVER_SCHEMA)
    if emulator.store.server(body["serviceName"]) is not None:
        raise AdminError(409, f"server {body['serviceName']} already exists")
    fields = {**DEFAULT_SERVER, **{key: value for key, value in body.items() if key != "serviceName"}}
    server = emulator.add_server(body["serviceName"], **fields)
    return _json(emulator.admin_server(server), status=201)


def _admin_server(request: web.Request) -> tuple[Emulator, Server]:
    emulator = _emulator(request)
    server = emulator.store.server(request.match_info["serviceName"])
    if server is None:
        raise AdminError(404, f"no server {request.match_info['serviceName']}")
    return emulator, server


async def admin_list_servers(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    return _json(emulator.store.service_names())


async def admin_get_server(request: web.Request) -> web.Response:
    emulator, server = _admin_server(request)
    return _json(emulator.admin_server(server))


_OUT_OF_BAND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"operatingSystem": {"enum": [name for name in TEMPLATES if name not in BYOI_TEMPLATES]}},
}


async def admin_reinstall_out_of_band(request: web.Request) -> web.Response:
    emulator, server = _admin_server(request)
    body = await _admin_body(request, _OUT_OF_BAND_SCHEMA)
    try:
        task = emulator.start_install(
            server, body.get("operatingSystem", INITIAL_OS), {}, out_of_band=True, fault=None
        )
    except OvhError as error:
        raise AdminError(error.status, error.message) from error
    log.info("task %s: out-of-band reinstall of %s started", task.task_id, server.service_name)
    return _json(emulator.api_task(task), status=201)


async def admin_put_faults(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    try:
        spec = json.loads(await request.text() or "null")
    except ValueError as error:
        raise AdminError(400, f"the body is not JSON: {error}") from error
    problems = spec_errors(spec)
    if problems:
        raise AdminError(400, "; ".join(problems))
    emulator.faults.replace(spec)
    return _json(emulator.faults.to_spec())


async def admin_get_faults(request: web.Request) -> web.Response:
    return _json(_emulator(request).faults.to_spec())


async def admin_stats(request: web.Request) -> web.Response:
    return _json(dict(sorted(_emulator(request).stats.items())))


# ----------------------------------------------------------------------------------------------------
# Images


async def serve_image(request: web.Request) -> web.StreamResponse:
    emulator = _emulator(request)
    folder = emulator.config.images
    if folder is None:
        raise web.HTTPNotFound(text="no images folder (--images)")
    if emulator.config.images_auth is not None and not _basic_auth_ok(request, emulator.config.images_auth):
        raise web.HTTPUnauthorized(
            text="authentication required", headers={"WWW-Authenticate": 'Basic realm="images"'}
        )
    root = folder.resolve()
    path = (root / request.match_info["name"]).resolve()
    if root not in path.parents or not path.is_file():
        raise web.HTTPNotFound(text=f"no image {request.match_info['name']}")
    return web.FileResponse(path)


def _basic_auth_ok(request: web.Request, expected: tuple[str, str]) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, f"{expected[0]}:{expected[1]}".encode())


# ----------------------------------------------------------------------------------------------------
# Middlewares


def _route_template(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


def _is_loopback(request: web.Request) -> bool:
    try:
        return request.remote is not None and ipaddress.ip_address(request.remote).is_loopback
    except ValueError:
        return False


def _drop(request: web.Request) -> web.Response:
    """Closes the connection without an answer; aiohttp then fails quietly to send the returned response."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    request["dropped"] = True
    return web.Response(status=204)


def _error_response(request: web.Request, error: Exception) -> web.Response:
    is_api = request.path.startswith(API + "/")
    if isinstance(error, OvhError):
        return _json({"class": error.error_class, "message": error.message}, status=error.status)
    if isinstance(error, AdminError):
        return web.Response(status=error.status, text=error.text, content_type="application/json")
    if isinstance(error, web.HTTPException):
        if is_api and error.status == 404:
            return _json(
                {"class": "Client::NotFound", "message": "Got an invalid (or empty) URL"}, status=404
            )
        message = error.text or error.reason
        if error.status == 405:
            message = f"Method {request.method} is not allowed on {request.path}"
        return web.json_response(
            {"message": message},
            status=error.status,
            headers={k: v for k, v in error.headers.items() if k == "WWW-Authenticate"},
        )
    log.exception("internal error on %s %s", request.method, request.path)
    return _json({"class": "Server::InternalServerError", "message": "Internal server error"}, status=500)


_FAULT_ANSWERS = {
    429: ("Client::TooManyRequests", "Too many requests, please retry later"),
    500: ("Server::InternalServerError", "Internal server error"),
    503: ("Server::ServiceUnavailable", "Service is temporarily unavailable"),
}


@web.middleware
async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Query id, stats, request log, loopback-only admin, faults, authentication and OVH-shaped errors."""
    emulator = _emulator(request)
    started = time.monotonic()
    query_id = emulator.query_id()
    template = _route_template(request)
    route_key = f"{request.method} {template}" if template else f"{request.method} (no route)"
    is_admin = request.path.startswith("/_emulator/")
    outcome = "?"
    response: web.StreamResponse
    try:
        if not is_admin:
            emulator.stats[route_key] += 1
        response = await _guarded(request, handler, emulator, template, is_admin)
        outcome = "dropped" if request.get("dropped") else str(response.status)
    except Exception as error:
        response = _error_response(request, error)
        outcome = str(response.status)
    finally:
        elapsed_ms = (time.monotonic() - started) * 1000
        # Query strings of API routes are filters; elsewhere (image URLs) they may carry a token.
        shown = request.rel_url if request.path.startswith(API + "/") else redact_url(request.path_qs)
        log.info("%s %s %s %.1fms %s", request.method, shown, outcome, elapsed_ms, query_id)
    response.headers["X-OVH-QUERYID"] = query_id
    return response


async def _guarded(
    request: web.Request, handler: Handler, emulator: Emulator, template: str | None, is_admin: bool
) -> web.StreamResponse:
    if is_admin:
        if not _is_loopback(request):
            raise AdminError(403, "the admin interface answers only on loopback")
        return await handler(request)
    decision = emulator.faults.decide(
        request.method, template or request.path, request.match_info.get("serviceName")
    )
    if decision.latency:
        # A slow API has the whole request before it is slow: a client that goes away meanwhile (a killed
        # run) does not take back what it asked, so the body is read now, while the connection is open.
        await request.read()
        await asyncio.sleep(decision.latency)
    if decision.drop:
        return _drop(request)
    if decision.status is not None:
        error_class, message = _FAULT_ANSWERS[decision.status]
        refused = _json({"class": error_class, "message": message}, status=decision.status)
        if decision.status == 429:
            refused.headers["Retry-After"] = "1"
        return refused
    if request.path.startswith(API + "/") and request.path != API + "/auth/time":
        try:
            body = (await request.read()).decode("utf-8")
        except UnicodeDecodeError:
            # OVH's client only sends JSON, which is UTF-8: anything else is a malformed request.
            raise OvhError(400, "Client::BadRequest", "Invalid JSON received: not UTF-8") from None
        url = f"{request.scheme}://{request.host}{request.raw_path}"
        refusal = check_request(
            emulator.config.credentials, request.headers, request.method, url, body, int(time.time())
        )
        if refusal is not None:
            return _json(refusal.body, status=refusal.status)
    if decision.task is not None:
        request["task_fault"] = decision.task
    response = await handler(request)
    if decision.drop_answer:
        return _drop(request)
    return response


# ----------------------------------------------------------------------------------------------------


def build_app(emulator: Emulator) -> web.Application:
    app = web.Application(middlewares=[front_door])
    app[EMULATOR] = emulator
    routes = [
        web.get(API + "/auth/time", auth_time),
        web.get(API + "/dedicated/server", list_servers),
        web.get(SN, get_server),
        web.get(SN + "/specifications/hardware", get_hardware),
        web.post(SN + "/reinstall", reinstall),
        web.get(SN + "/task", list_tasks),
        web.get(SN + "/task/{taskId}", get_task),
        web.post(SN + "/task/{taskId}/cancel", cancel_task),
        web.get(SN + "/install/status", install_status),
        web.post("/_emulator/servers", admin_add_server),
        web.get("/_emulator/servers", admin_list_servers),
        web.get("/_emulator/servers/{serviceName}", admin_get_server),
        web.post("/_emulator/servers/{serviceName}/reinstall-out-of-band", admin_reinstall_out_of_band),
        web.put("/_emulator/faults", admin_put_faults),
        web.get("/_emulator/faults", admin_get_faults),
        web.get("/_emulator/stats", admin_stats),
        web.get("/images/{name:.+}", serve_image),
    ]
    app.add_routes(routes)
    assert REINSTALL_ROUTE == "POST " + SN + "/reinstall"
    assert len(PLAN) == 21
    return app


async def serve(config: EmulatorConfig, *, announce: Callable[[str], None]) -> None:
    """Runs the emulator until SIGINT or SIGTERM; `announce` receives the API URL once listening."""
    emulator = Emulator(config)
    # Requests still running at shutdown get a short grace period: an emulator must stop promptly.
    runner = web.AppRunner(build_app(emulator), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await emulator.installer.open()
        site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
        await site.start()
        host, port = runner.addresses[0][:2]
        # Only now: a resumed install may download its image from this very server.
        emulator.installer.resume()
        announce(f"http://{host}:{port}{API}")
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await emulator.installer.close()
        await runner.cleanup()
        await emulator.close()
        log.info("stopped")
