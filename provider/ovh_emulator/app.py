"""The emulator's HTTP server: OVH's `/1.0` routes, the `/_emulator/` admin routes, the `/images/` folder."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import math
import signal
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .admin import ADMIN_ROUTES, IMAGE_ROUTES, AdminError
from .auth import check_request
from .core import API, EMULATOR, Emulator, EmulatorConfig, OvhError, emulator_of, json_answer, not_found
from .imagework import DOWNLOAD_MARK_HEADER
from .plan import redact_url
from .routes import API_ROUTES

__all__ = ["EmulatorConfig", "build_app", "front_door", "serve"]

log = logging.getLogger("ovh_emulator")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        return json_answer({"class": error.error_class, "message": error.message}, status=error.status)
    if isinstance(error, AdminError):
        return web.Response(status=error.status, text=error.text, content_type="application/json")
    if isinstance(error, web.HTTPException):
        if is_api and error.status == 404:
            return json_answer(
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
    return json_answer(
        {"class": "Server::InternalServerError", "message": "Internal server error"}, status=500
    )


_FAULT_ANSWERS = {
    429: ("Client::TooManyRequests", "Too many requests, please retry later"),
    500: ("Server::InternalServerError", "Internal server error"),
    503: ("Server::ServiceUnavailable", "Service is temporarily unavailable"),
}


@web.middleware
async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Query id, stats, request log, loopback-only admin, faults, authentication and OVH-shaped errors."""
    emulator = emulator_of(request)
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
    # One function on purpose: the order of the guards (admin, faults, auth, budget) is the contract.
    if is_admin:
        if not _is_loopback(request):
            raise AdminError(403, "the admin interface answers only on loopback")
        if request.headers.get(DOWNLOAD_MARK_HEADER) == emulator.installer.download_mark:
            # An image URL naming the admin interface would have the installer read (or change) the emulator.
            raise AdminError(403, "the emulator's installer downloads nothing from the admin interface")
        return await handler(request)
    decision = emulator.faults.decide(
        request.method, template or request.path, request.match_info.get("serviceName")
    )
    if decision.latency or decision.holds:
        # A slow API has the whole request before it is slow: a client that goes away meanwhile (a killed
        # run) does not take back what it asked, so the body is read now, while the connection is open.
        await request.read()
    for rule in decision.holds:
        log.info("%s %s held until released", request.method, request.path)
        await rule.park()
    if decision.latency:
        await asyncio.sleep(decision.latency)
    if decision.drop:
        return _drop(request)
    if decision.status == 404:
        task_id = request.match_info.get("taskId")
        service_name = request.match_info.get("serviceName")
        if task_id is not None:
            raise not_found(taskId=task_id)
        raise not_found(serviceName=service_name) if service_name else web.HTTPNotFound()
    if decision.status is not None:
        error_class, message = _FAULT_ANSWERS[decision.status]
        refused = json_answer({"class": error_class, "message": message}, status=decision.status)
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
            return json_answer(refusal.body, status=refusal.status)
        wait = emulator.over_budget(request.headers.get("X-Ovh-Consumer", ""))
        if wait is not None:
            error_class, message = _FAULT_ANSWERS[429]
            refused = json_answer({"class": error_class, "message": message}, status=429)
            # OVH documents no Retry-After: this is a guess at what a client could be told.
            refused.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return refused
    if decision.task is not None:
        request["task_fault"] = decision.task
    if decision.task_status is not None:
        request["task_status"] = decision.task_status
    response = await handler(request)
    if decision.drop_answer:
        return _drop(request)
    return response


class _MalformedRequests(logging.Filter):
    """aiohttp answers a request that is not valid HTTP (a control character in a header) with a 400 of its
    own before any route sees it, and logs a traceback: a client's mistake, worth one line, not a trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        first_line = next(iter(str(error.message).strip().splitlines()), "")
        log.info("malformed HTTP request refused with %s: %s", error.code, first_line)
        return False


def build_app(emulator: Emulator) -> web.Application:
    app = web.Application(middlewares=[front_door])
    app[EMULATOR] = emulator
    app.add_routes([*API_ROUTES, *ADMIN_ROUTES, *IMAGE_ROUTES])
    return app


async def serve(config: EmulatorConfig, *, announce: Callable[[str], None]) -> None:
    """Runs the emulator until SIGINT or SIGTERM; `announce` receives the API URL once listening."""
    emulator = Emulator(config)
    # Requests still running at shutdown get a short grace period: an emulator must stop promptly.
    runner = web.AppRunner(build_app(emulator), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    logging.getLogger("aiohttp.server").addFilter(_MalformedRequests())
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Image work (subprocesses, hashing, disk files) runs in threads: many installs at once need many.
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="work")
    )
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
