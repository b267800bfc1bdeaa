"""What one installation does against OVH: verify, reinstall exactly once, wait, adopt, and look for drift.

Two rules shape every function here. Never a second reinstall while one runs: before asking, the newest
reinstall task is looked at and waited for, and OVH's own "already running" refusals (both of its forms) are
waited out. Never a reinstall asked twice: when the reinstall request gets no usable answer (network failure,
5xx), the task list is read again before asking anew, and a task that appeared since is ours; and a run that
was interrupted (or reached its deadline) leaves an open record in the journal, so that the next run of the
same install follows that task instead of erasing the server again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import ovh.exceptions

from .budget import prompt
from .clock import Clock, Deadline
from .errors import (
    ByoiError,
    DiskGroups,
    InstallInterruptedError,
    PreflightFailedError,
    TaskFailedError,
    fix_for,
)
from .journal import Journal, ServerJournal
from .ovh_api import Hardware, OvhApi, OvhSettings, Server, Task
from .ovh_errors import failure_reasons, task_failure, translated
from .preflight import Finding, ProgressCallback, run_preflight
from .progress import Progress
from .redaction import url_secrets
from .retrying import TASK_NOT_FOUND_GRACE, RetryPolicy, is_transient
from .sdk_compat import engine_gave_up
from .spec import ByoiInstallationArgs, ByoiInstallationState, ReinstallRequest
from .waiting import InstallTimeoutError, PollSchedule, TaskWatcher

__all__ = ["Session", "resource_id"]

# After the task is done, how long the server may take to report the new OS (OVH time). What OVH shows in
# `os` after a BYOI install is not documented: the finished task is the proof, `os` only a check.
OS_SETTLE_SECONDS = 60.0
OS_POLL_SECONDS = 10.0
# A request whose answer was lost started its task within the request's timeout; the margin allows for the
# difference between this machine's clock and OVH's. A task started outside it is someone else's.
UNANSWERED_WITHIN_SECONDS = 600.0

T = TypeVar("T")


def resource_id(service_name: str, task_id: int | None) -> str:
    """One id per installation: the server, and the reinstall task that put the image there."""
    return f"{service_name}/{task_id}" if task_id is not None else service_name


@dataclass
class Session:
    """One provider call's dealings with one server: a client of its own, a deadline, progress lines, and the
    journal's records about the server. OVH's refusals become this package's errors in `ovh_errors`."""

    api: OvhApi
    retry: RetryPolicy
    progress: Progress
    journal: ServerJournal

    @classmethod
    def open(
        cls,
        settings: OvhSettings,
        service_name: str,
        *,
        timeout_minutes: float,
        clock: Clock | None = None,
        progress: Progress | None = None,
    ) -> Session:
        clock = clock or Clock.from_env()
        progress = progress or Progress(service_name)
        retry = RetryPolicy(clock, Deadline(timeout_minutes, clock), progress)
        api = OvhApi.connect(settings, service_name, tell=progress.say)
        journal = ServerJournal(Journal.default(), api.endpoint, service_name, progress.say)
        return cls(api, retry, progress, journal)

    @property
    def service_name(self) -> str:
        return self.api.service_name

    def call(self, action: str, fn: Callable[[], T]) -> T:
        """`fn()`, transient failures retried; a final failure becomes an error with OVH's words and fix."""
        with translated(self.service_name, action):
            return self.retry.call(action, fn)

    # -- installing ------------------------------------------------------------------------------------------

    def install(self, args: ByoiInstallationArgs) -> ByoiInstallationState:
        """Verify the image, reinstall the server once, wait until OVH reports it done."""
        secrets = _secret_values(args)
        self.progress.secrets = secrets
        try:
            return self._install(args)
        except ByoiError as exc:
            # OVH's texts may repeat what it was sent (a URL's token, a header): none of it reaches the user.
            raise exc.redacted(secrets) from None

    def _install(self, args: ByoiInstallationArgs) -> ByoiInstallationState:
        request = ReinstallRequest.from_args(args)
        fingerprint = self.journal.fingerprint(request)
        task = self.resume(fingerprint) if fingerprint else None
        if task is None:
            if args.preflight != "off":
                self.preflight(args)
            task = self.start_reinstall(request, fingerprint=fingerprint)
        task = self.follow(task)
        # The answer that reported the end: its query id is the one OVH support can trace.
        query_id = self.api.last_query_id
        if engine_gave_up():
            # Interrupted (a second Ctrl-C) while OVH finished: the engine records nothing this create
            # returns, so the journal's record stays open and the next run takes this install as its own
            # instead of erasing the server again.
            raise InstallInterruptedError(self.service_name, task.task_id)
        if task.known_status:
            # A status OVH does not document stays open: the next run follows this task, never reinstalls.
            self.journal.close(task.task_id)
        if task.failed:
            raise self.task_failure(task, query_id, disk_group_id=args.disk_group_id)
        server = self.settled_server(args.operating_system)
        self.progress.say(f"installed: OVH task {task.task_id} done, the server reports os {server.os!r}")
        return ByoiInstallationState(
            **args.model_dump(), task_id=task.task_id, installed_at=task.done_date, os=server.os
        )

    def preflight(
        self, args: ByoiInstallationArgs, download_progress: ProgressCallback | None = None
    ) -> None:
        """Every check that can run before the reinstall erases the server."""
        self.progress.secrets = _secret_values(args)
        hardware = self.call("read the server's hardware", self.api.hardware)
        target = hardware.group(args.disk_group_id)
        if args.disk_group_id and target is None:
            known = ", ".join(map(str, hardware.group_ids())) or "none listed"
            raise PreflightFailedError(
                self.service_name,
                [
                    Finding(
                        "disk_group_id",
                        f"{self.service_name} has no disk group {args.disk_group_id} "
                        f"(its disk groups: {known})",
                        "set disk_group_id to one of the server's disk groups, or leave it out (OVH then "
                        "installs on disk group 1)",
                    )
                ],
            )
        self.progress.say(f"checking the image before reinstalling ({args.preflight} preflight)")
        findings = run_preflight(
            image_url=args.image_url,
            image_type=args.image_type or "qcow2",
            image_checksum=args.image_checksum,
            image_checksum_type=args.image_checksum_type,
            http_headers=args.http_headers,
            efi_bootloader_path=args.efi_bootloader_path,
            level=args.preflight,
            disk_bytes=hardware.disk_bytes_of(args.disk_group_id),
            memory_bytes=hardware.memory_bytes,
            disk_groups=_groups(hardware),
            disk_group_id=args.disk_group_id,
            progress=download_progress,
        )
        if findings:
            raise PreflightFailedError(self.service_name, findings)

    # -- taking over the reinstall an earlier run started ----------------------------------------------------

    def resume(self, fingerprint: str) -> Task | None:
        """The reinstall an interrupted run started for this same install, if it is still the latest one."""
        started = self.journal.open_reinstall(fingerprint)
        if started is None:
            return self.resume_unanswered(fingerprint)
        ids = self.reinstall_task_ids()
        task = self.task(started.task_id) if ids and max(ids) == started.task_id else None
        if task is None or (task.failed and task.known_status):
            # Another reinstall came since, OVH purged the task, or it failed: this run installs anew.
            self.journal.close(started.task_id)
            return None
        self.progress.say(
            f"an earlier run started this same install (OVH task {task.task_id}, {task.status}): "
            "following it instead of reinstalling again"
        )
        return task

    def resume_unanswered(self, fingerprint: str) -> Task | None:
        """The task OVH started for a request whose run died before the answer came, if it started one."""
        asked = self.journal.unanswered(fingerprint)
        if asked is None:
            return None
        known = {task_id for task_id in self.reinstall_task_ids() if task_id <= asked.newest_known_task}
        task = self.task_started_since(known, fingerprint)
        if task is None or task.failed or not _started_about(task, asked.asked_at):
            # OVH never started it (a later task is someone else's), or it failed: this run installs anew.
            self.journal.answered(fingerprint)
            return None
        self.journal.record(task.task_id, fingerprint)
        self.progress.say(
            f"an earlier run asked for this same install and was stopped before OVH answered; OVH started "
            f"task {task.task_id} ({task.status}): following it instead of reinstalling again"
        )
        return task

    # -- asking for the reinstall ----------------------------------------------------------------------------

    def start_reinstall(self, request: ReinstallRequest, *, fingerprint: str | None = None) -> Task:
        """Ask OVH for the reinstall, exactly once, and only when no reinstall runs on the server."""
        asked_with: set[int] | None = None

        def attempt() -> Task:
            nonlocal asked_with
            if asked_with is not None:
                # The last request got no usable answer: if OVH created the task anyway, it is ours.
                started = self.task_started_since(asked_with, fingerprint)
                if started is not None:
                    self.progress.say(
                        f"OVH's answer was lost, but it started task {started.task_id}: following it"
                    )
                    self.journal.record(started.task_id, fingerprint)
                    return started
            known = self.wait_while_reinstalling()
            self.journal.asking(fingerprint, known)
            try:
                asked_with = known
                task = self.api.reinstall(request)
            except ovh.exceptions.APIError as exc:
                if not is_transient(exc):
                    # OVH answered and refused: it started nothing.
                    asked_with = None
                    self.journal.answered(fingerprint)
                raise
            self.journal.record(task.task_id, fingerprint)
            self.progress.say(f"OVH started the reinstall: task {task.task_id}")
            return task

        with translated(self.service_name, "start a reinstall"):
            return self.retry.ask(attempt)

    def reinstall_task_ids(self) -> list[int]:
        return self.call("list the server's reinstall tasks", self.api.reinstall_task_ids)

    def task(self, task_id: int) -> Task:
        action = f"read task {task_id}"
        with translated(self.service_name, action):
            # A task listed a moment ago, or just started, may be unknown to OVH's API for a while.
            return self.retry.call(
                action, lambda: self.api.task(task_id), not_found_grace=TASK_NOT_FOUND_GRACE
            )

    def task_started_since(self, known: set[int], fingerprint: str | None = None) -> Task | None:
        """The newest reinstall task not among `known` that no other install from this machine started."""
        new = [task_id for task_id in self.reinstall_task_ids() if task_id not in known]
        if new and fingerprint:
            # Another stack's reinstall may have started meanwhile: its run recorded it as its own.
            claimed = self.journal.claimed(new)
            new = [task_id for task_id in new if claimed.get(task_id, fingerprint) == fingerprint]
        return self.task(max(new)) if new else None

    def wait_while_reinstalling(self) -> set[int]:
        """Wait until no reinstall runs on the server; the reinstall task ids then known."""
        while True:
            ids = self.reinstall_task_ids()
            if not ids:
                return set()
            newest = self.task(max(ids))
            if not newest.running:
                return set(ids)
            self.progress.say(
                f"reinstall task {newest.task_id} ({newest.status}, started {newest.start_date}) runs on the "
                "server: waiting for it to end before starting this one"
            )
            try:
                ended = self.follow(newest)
            except InstallTimeoutError as exc:
                # The deadline passed while waiting for someone else's reinstall: say that ours never began.
                raise InstallTimeoutError(
                    self.service_name, exc.task, self.retry.deadline.minutes, exc.status, ours=False
                ) from None
            self.progress.say(f"task {ended.task_id} ended: {ended.status}")

    def follow(self, task: Task) -> Task:
        """Poll the task until it ends, printing OVH's install steps."""
        watcher = TaskWatcher(self.api, task, retry=self.retry, schedule=PollSchedule())
        with translated(self.service_name, f"follow task {task.task_id}"):
            return watcher.wait()

    def task_failure(
        self, task: Task, query_id: str | None = None, *, disk_group_id: int | None = None
    ) -> TaskFailedError:
        """The failed task as an error with all of OVH's reasons: task comment, note, failing step's error."""
        try:
            status = self.call("read the install steps", self.api.install_status)
        except ByoiError:
            # The task's own words are enough to report; the steps only add detail.
            status = None
        groups: DiskGroups = ()
        reasons = failure_reasons(task, status)
        if any(fix_for(reason) and "larger than device" in reason for reason in reasons):
            # The fix names the disk groups whose disks would hold the image.
            try:
                groups = _groups(self.call("read the server's hardware", self.api.hardware))
            except ByoiError:
                groups = ()
        return task_failure(
            self.service_name, task, status, query_id=query_id, groups=groups, disk_group_id=disk_group_id
        )

    def settled_server(self, operating_system: str) -> Server:
        """The server once it reports `operating_system`, or as it is after a grace period."""
        clock = self.retry.clock
        waited = 0.0
        while True:
            # The first read completes the look that saw the task end: it goes before other installs' polls,
            # so that noticing an end costs one turn of a contended budget, not two.
            with prompt() if waited == 0.0 else contextlib.nullcontext():
                server = self.call("read the server", self.api.server)
            if server.os == operating_system or waited >= OS_SETTLE_SECONDS:
                break
            clock.sleep(clock.real(OS_POLL_SECONDS))
            waited += OS_POLL_SECONDS
        if server.os != operating_system:
            self.progress.say(
                f"the task is done but OVH reports os {server.os!r}, not {operating_system!r}: recorded as "
                "reported; refresh compares the server with this value"
            )
        return server

    # -- adopting and reading --------------------------------------------------------------------------------

    def adopt(self, args: ByoiInstallationArgs) -> ByoiInstallationState:
        """Take over the server as it is: nothing is installed, the latest reinstall task is recorded."""
        self.wait_while_reinstalling()
        server = self.call("read the server", self.api.server)
        ids = self.reinstall_task_ids()
        latest = self.task(max(ids)) if ids else None
        if server.os != args.operating_system:
            self.progress.say(
                f"adopting a server whose os OVH reports as {server.os!r}, not {args.operating_system!r}: "
                "recorded as reported"
            )
        where = f"latest reinstall: task {latest.task_id}, {latest.status}" if latest else "no reinstall task"
        self.progress.say(f"adopted without reinstalling ({where})")
        return ByoiInstallationState(
            **args.model_dump(),
            task_id=latest.task_id if latest else None,
            installed_at=latest.done_date if latest else None,
            os=server.os,
        )

    def server_for_refresh(self) -> Server:
        """The server, for a refresh; a 404 is never taken as "the server is gone" (see `translated`)."""
        with translated(self.service_name, "read the server", refreshing=True):
            return self.retry.call("read the server", self.api.server)


def _groups(hardware: Hardware) -> DiskGroups:
    return [
        (group.disk_group_id, group.disk_bytes, group.description or "")
        for group in hardware.disk_groups or ()
        if group.disk_group_id is not None and group.disk_bytes is not None
    ]


# Shorter values would mask common words and numbers (task ids) in every line; header values, tokens and
# passwords are longer.
_SHORTEST_MASKED = 8


def _secret_values(args: ByoiInstallationArgs) -> tuple[str, ...]:
    """What an install carries that no message may show: header and metadata values, URL tokens."""
    values = [*(args.http_headers or {}).values(), *(args.config_drive_metadata or {}).values()]
    values += url_secrets(args.image_url)
    return tuple(value for value in values if len(value) >= _SHORTEST_MASKED)


def _started_about(task: Task, asked_at: float) -> bool:
    """Whether OVH started `task` when a request sent at `asked_at` (local clock) would have started it."""
    try:
        started = datetime.fromisoformat(task.start_date or "").timestamp()
    except ValueError:
        # No usable date: the task that appeared since the request is the best guess.
        return True
    return abs(started - asked_at) <= UNANSWERED_WITHIN_SECONDS
