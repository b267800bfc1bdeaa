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
from pathlib import Path

import aiohttp

from .imagework import InstallFailure
from .plan import NEVER_ENDING_STEP, OVH_ERROR_STEP, PLAN, InstallContext, redact_url
from .store import Store, Task

__all__ = ["INIT_SECONDS", "TODO_SECONDS", "Installer"]

INIT_SECONDS = 10.0
TODO_SECONDS = 15.0
OVH_ERROR_TEXT = (
    "An internal error occurred while installing the server, OVHcloud technicians have been notified"
)

log = logging.getLogger("ovh_emulator")

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


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
