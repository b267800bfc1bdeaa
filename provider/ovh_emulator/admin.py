"""The `/_emulator/` admin routes (servers, out-of-band reinstalls, faults, stats), the `/images/` folder."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp import web

from . import views
from .core import (
    DEFAULT_BOOT_MODE,
    DEFAULT_DISK_BYTES,
    DEFAULT_MEMORY_BYTES,
    INITIAL_OS,
    TEMPLATES,
    Emulator,
    OvhError,
    emulator_of,
    json_answer,
)
from .faults import spec_errors
from .plan import BYOI_TEMPLATES
from .store import Server
from .untrusted import Unparsable, parse_json

__all__ = ["ADMIN_ROUTES", "IMAGE_ROUTES", "AdminError"]

log = logging.getLogger("ovh_emulator")


class AdminError(web.HTTPException):
    def __init__(self, status: int, message: str) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"message": message}), content_type="application/json")


# A server's disk is a sparse file: ext4 holds no file beyond 16 TiB. Memory only bounds downloads.
MAX_DISK_BYTES = 16 * 10**12
MAX_MEMORY_BYTES = 2**42
_NEW_SERVER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["serviceName"],
    "properties": {
        "serviceName": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9.-]{0,62}$"},
        "diskSizeBytes": {"type": "integer", "minimum": 1024**2, "maximum": MAX_DISK_BYTES},
        "memoryBytes": {"type": "integer", "minimum": 1024**2, "maximum": MAX_MEMORY_BYTES},
        "bootMode": {"enum": ["legacy", "uefi", "uefi-legacy"]},
        "diskGroups": {
            "type": "array",
            "minItems": 1,
            "maxItems": 8,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["diskSizeBytes"],
                "properties": {
                    "diskSizeBytes": {"type": "integer", "minimum": 1024**2, "maximum": MAX_DISK_BYTES},
                    "numberOfDisks": {"type": "integer", "minimum": 1, "maximum": 24},
                    "diskType": {"enum": ["NVMe", "SAS", "SATA", "SSD"]},
                },
            },
        },
    },
    "not": {"required": ["diskSizeBytes", "diskGroups"]},
}


async def _admin_json(request: web.Request) -> Any:
    try:
        return parse_json(await request.read())
    except Unparsable as error:
        raise AdminError(400, f"the body is not JSON: {error}") from None


async def _admin_body(request: web.Request, schema: dict[str, Any]) -> dict[str, Any]:
    body = await _admin_json(request)
    problems = [
        f"{'.'.join(map(str, error.absolute_path)) or 'body'}: {error.message}"
        for error in jsonschema.Draft202012Validator(schema).iter_errors(body)
    ]
    if problems:
        raise AdminError(400, "; ".join(problems))
    result: dict[str, Any] = body
    return result


async def admin_add_server(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    body = await _admin_body(request, _NEW_SERVER_SCHEMA)
    if emulator.store.server(body["serviceName"]) is not None:
        raise AdminError(409, f"server {body['serviceName']} already exists")
    server = emulator.add_server(
        body["serviceName"],
        disk_size=body.get("diskSizeBytes", DEFAULT_DISK_BYTES),
        memory_size=body.get("memoryBytes", DEFAULT_MEMORY_BYTES),
        boot_mode=body.get("bootMode", DEFAULT_BOOT_MODE),
        disk_groups=[
            {
                "numberOfDisks": group.get("numberOfDisks", 1),
                "diskSize": group["diskSizeBytes"],
                "diskType": group.get("diskType", "NVMe"),
            }
            for group in body["diskGroups"]
        ]
        if "diskGroups" in body
        else None,
    )
    return json_answer(views.admin_server(emulator, server), status=201)


def _admin_server(request: web.Request) -> tuple[Emulator, Server]:
    emulator = emulator_of(request)
    server = emulator.store.server(request.match_info["serviceName"])
    if server is None:
        raise AdminError(404, f"no server {request.match_info['serviceName']}")
    return emulator, server


async def admin_list_servers(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    return json_answer(emulator.store.service_names())


async def admin_get_server(request: web.Request) -> web.Response:
    emulator, server = _admin_server(request)
    return json_answer(views.admin_server(emulator, server))


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
    return json_answer(views.api_task(task), status=201)


async def admin_put_faults(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    spec = await _admin_json(request)
    problems = spec_errors(spec)
    if problems:
        raise AdminError(400, "; ".join(problems))
    emulator.faults.replace(spec)
    return json_answer(emulator.faults.to_spec())


_RELEASE_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {"rules": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 1000}}},
}


async def admin_release(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    body = await _admin_body(request, _RELEASE_SCHEMA) or {}
    return json_answer({"released": emulator.faults.release(body.get("rules"))})


async def admin_get_faults(request: web.Request) -> web.Response:
    return json_answer(emulator_of(request).faults.to_spec())


async def admin_stats(request: web.Request) -> web.Response:
    return json_answer(dict(sorted(emulator_of(request).stats.items())))


async def admin_rate(request: web.Request) -> web.Response:
    emulator = emulator_of(request)
    return json_answer(
        {
            "requestsPerMinute": emulator.config.requests_per_minute,
            # Keys are credentials: shown by a short hash only.
            "consumerKeys": {
                hashlib.sha256(key.encode()).hexdigest()[:12]: stats
                for key, stats in emulator.rate_stats.items()
            },
        }
    )


# ----------------------------------------------------------------------------------------------------
# Images


async def serve_image(request: web.Request) -> web.StreamResponse:
    emulator = emulator_of(request)
    folder = emulator.config.images
    if folder is None:
        raise web.HTTPNotFound(text="no images folder (--images)")
    if emulator.config.images_auth is not None and not _basic_auth_ok(request, emulator.config.images_auth):
        raise web.HTTPUnauthorized(
            text="authentication required", headers={"WWW-Authenticate": 'Basic realm="images"'}
        )
    name = request.match_info["name"]
    path = _image_path(folder, name)
    if path is None:
        raise web.HTTPNotFound(text=f"no image {name[:200]}")
    return web.FileResponse(path)


# Linux refuses longer paths and names (ENAMETOOLONG); no file of the folder can have one.
_PATH_MAX = 4096
_NAME_MAX = 255


def _image_path(folder: Path, name: str) -> Path | None:
    """The file of the images folder that `name` designates, or None if there is none (nothing outside)."""
    if "\x00" in name or len(name.encode("utf-8", "surrogatepass")) > _PATH_MAX:
        return None
    if any(len(part.encode("utf-8", "surrogatepass")) > _NAME_MAX for part in name.split("/")):
        return None
    try:
        root = folder.resolve()
        path = (root / name).resolve()
        return path if root in path.parents and path.is_file() else None
    except (OSError, ValueError):
        # What the folder's file system refuses to look up (a name it cannot encode, a loop) is not there.
        return None


def _basic_auth_ok(request: web.Request, expected: tuple[str, str]) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, f"{expected[0]}:{expected[1]}".encode())


ADMIN_ROUTES = [
    web.post("/_emulator/servers", admin_add_server),
    web.get("/_emulator/servers", admin_list_servers),
    web.get("/_emulator/servers/{serviceName}", admin_get_server),
    web.post("/_emulator/servers/{serviceName}/reinstall-out-of-band", admin_reinstall_out_of_band),
    web.put("/_emulator/faults", admin_put_faults),
    web.get("/_emulator/faults", admin_get_faults),
    web.post("/_emulator/faults/release", admin_release),
    web.get("/_emulator/stats", admin_stats),
    web.get("/_emulator/rate", admin_rate),
]
IMAGE_ROUTES = [web.get("/images/{name:.+}", serve_image)]
