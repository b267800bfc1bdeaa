"""How long to wait and how often to ask: retries of transient API errors, task polling, the overall deadline.

Every duration here is OVH time, divided by `OVH_BYOI_TIME_SCALE` (default 1) before anyone sleeps: tests and
benchmarks pair an emulator running 600 times faster with `OVH_BYOI_TIME_SCALE=600`. `Clock` carries the scale
and the sleep function, so unit tests inject a fake clock and never wait.

Polling reads OVH's install steps (`install/status`: step i of n) to estimate how long the install has left,
and asks sparsely while much remains and every 2 s near the end: it notices completion within about 2 s while
making a third of the calls of OVH's Terraform provider (3 s backing off to 10 s). Time is measured on this
machine's clock: OVH's `elapsedTime` goes negative across the install's reboots (ovhcloud-cli saw -1935, then
+42, then -87) and is only shown, never computed with. Every request also waits for the consumer key's shared
budget (`budget.py`); polls far from the expected end are "relaxed" so that a contended budget goes to the
installs about to end.

A 404 on a task within minutes of the reinstall is OVH's API not knowing it yet (terraform-provider-ovh
retries those for 5 minutes): it is asked again, bounded the same way. A 429 waits what `Retry-After` says.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

import ovh.exceptions
import tenacity

from .budget import prompt, relaxed
from .errors import ByoiError, http_status
from .ovh_api import InstallStatus, OvhApi, Task
from .redaction import redact

__all__ = [
    "TIME_SCALE_ENV",
    "Clock",
    "Deadline",
    "InstallTimeoutError",
    "PollSchedule",
    "Progress",
    "RetryPolicy",
    "TaskWatcher",
    "is_transient",
    "time_scale",
]

TIME_SCALE_ENV: Final = "OVH_BYOI_TIME_SCALE"
# How long a task may answer 404 before that is believed (OVH seconds; terraform-provider-ovh's 5 minutes).
TASK_NOT_FOUND_GRACE: Final = 300.0
# How long a task status outside OVH's enumeration is re-read before the install is reported as not succeeded.
UNKNOWN_STATUS_GRACE: Final = 300.0

T = TypeVar("T")


def time_scale(environ: Mapping[str, str] = os.environ) -> float:
    """How many times faster than real time every wait runs (a test and benchmark knob; default 1)."""
    raw = environ.get(TIME_SCALE_ENV, "").strip()
    try:
        scale = float(raw) if raw else 1.0
    except ValueError:
        return 1.0
    return scale if math.isfinite(scale) and scale > 0 else 1.0


@dataclass(frozen=True)
class Clock:
    """Where waiting takes its time from. `scale` divides every OVH-time duration before it is slept."""

    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    scale: float = 1.0

    @classmethod
    def from_env(cls) -> Clock:
        return cls(scale=time_scale())

    def real(self, ovh_seconds: float) -> float:
        """Real seconds for a duration in OVH time."""
        return ovh_seconds / self.scale


class Deadline:
    """The overall limit of one operation (`timeout_minutes`), in OVH time."""

    def __init__(self, minutes: float, clock: Clock) -> None:
        self.minutes = minutes
        self._clock = clock
        self._end = clock.monotonic() + clock.real(minutes * 60)

    def remaining(self) -> float:
        """Real seconds left."""
        return max(0.0, self._end - self._clock.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


def is_transient(exc: BaseException) -> bool:
    """Worth asking again: no answer at all (network), OVH's side failed (5xx), or OVH asked us to slow (429).

    Every other refusal (400, 403, 404, 409) says something about the request: asking again would get the
    same answer.
    """
    if isinstance(exc, ovh.exceptions.HTTPError | ovh.exceptions.NetworkError):
        return True
    if isinstance(exc, ovh.exceptions.APIError):
        code = http_status(exc)
        return code is not None and (code >= 500 or code == 429)
    return False


class Progress:
    """What `pulumi up` shows of a dynamic provider: lines on stderr, prefixed with the server."""

    def __init__(self, service_name: str, write: Callable[[str], None] | None = None) -> None:
        self.service_name = service_name
        self._write = write or _write_stderr
        self._last_step: tuple[int, str, str] | None = None
        # Values of the install at hand that no line may show (header values): set by whoever knows them.
        self.secrets: tuple[str, ...] = ()

    def say(self, text: str) -> None:
        self._write(redact(f"[{self.service_name}] {text}", self.secrets))

    def show(self, status: InstallStatus) -> None:
        """One line per change of OVH's install step (`5/21 Downloading OS image`)."""
        current = status.current
        if current is None:
            return
        position, step = current
        key = (position, step.comment, step.status)
        if key == self._last_step:
            return
        self._last_step = key
        line = f"{position}/{len(status.progress)} {step.comment}"
        if step.status == "error":
            line += f": failed: {step.error or 'no detail'}"
        self.say(line)


def retry_after(exc: BaseException | None) -> float | None:
    """OVH seconds a 429 answer asks to wait (`Retry-After`, in seconds), or None."""
    if exc is None or http_status(exc) != 429:
        return None
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        seconds = float(headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        # An HTTP date, or nothing: the exponential backoff decides.
        return None
    return seconds if math.isfinite(seconds) and 0 <= seconds <= 3600 else None


def _write_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries one API call while its failures are transient, with jittered exponential backoff.

    Gives up after `give_up_after` seconds of failures in a row (an outage longer than that is reported, not
    waited out), or when the operation's deadline is reached.
    """

    clock: Clock
    deadline: Deadline
    progress: Progress
    first_wait: float = 1.0
    longest_wait: float = 60.0
    give_up_after: float = 600.0

    def call(self, action: str, fn: Callable[[], T], *, not_found_grace: float = 0.0) -> T:
        """`fn()`, asked again on transient failures; `action` completes "while ..." in the log line.

        `not_found_grace`: OVH seconds during which a 404 counts as transient (a task OVH's API does not
        know yet).
        """
        started = self.clock.monotonic()

        def failing_for() -> float:
            return self.clock.monotonic() - started

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, ovh.exceptions.ResourceNotFoundError):
                return failing_for() < self.clock.real(not_found_grace)
            return is_transient(exc)

        def give_up(state: tenacity.RetryCallState) -> bool:
            return failing_for() >= self.clock.real(self.give_up_after) or self.deadline.expired

        backoff = tenacity.wait_exponential_jitter(
            multiplier=self.clock.real(self.first_wait),
            max=self.clock.real(self.longest_wait),
            jitter=self.clock.real(self.first_wait),
        )

        def wait(state: tenacity.RetryCallState) -> float:
            asked = retry_after(state.outcome.exception() if state.outcome else None)
            return self.clock.real(asked) if asked is not None else backoff(state)

        def announce(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            code = http_status(exc) if exc else None
            what = f"OVH answered {code}" if code else "OVH's API could not be reached"
            query_id = getattr(exc, "query_id", None)
            query = f" (query id {query_id})" if query_id else ""
            why = ""
            if code == 404:
                why = " (OVH's API often does not know a task for a few minutes after a reinstall)"
            elif retry_after(exc) is not None:
                why = " (as OVH's Retry-After asks)"
            wait = state.upcoming_sleep * self.clock.scale
            self.progress.say(f"{what} while {action}{query}{why}; asking again in {wait:.0f} s")

        retrying = tenacity.Retrying(
            sleep=self.clock.sleep,
            stop=give_up,
            wait=wait,
            retry=tenacity.retry_if_exception(retryable),
            before_sleep=announce,
            reraise=True,
        )
        return retrying(fn)


@dataclass(frozen=True)
class PollSchedule:
    """When to ask again about a running install, in OVH seconds.

    OVH's steps give step i of n and the elapsed time, hence an estimate of the time left: the next poll
    comes after `share_of_remaining` of it (at most `sparsest`). It never comes later than the steps still to
    start could end if each took only `shortest_step`, plus `share_of_step` of the time the current step has
    run so far (a step that has run long is likely to run on): short final steps are not jumped over, and near
    the end polls come every `densest` seconds.
    """

    queued: float = 10.0
    densest: float = 2.0
    sparsest: float = 60.0
    share_of_remaining: float = 0.5
    shortest_step: float = 5.0
    share_of_step: float = 0.2
    # OVH's installs: 21 steps over about 10 minutes.
    typical_step: float = 30.0
    # Polls whose delay is at least this long are far from the end: they may wait for the shared budget.
    relaxed_from: float = 15.0

    def delay(
        self, status: InstallStatus | None, step_age: float = 0.0, per_step: float | None = None
    ) -> float:
        """`step_age`: how long the current step has been seen running; `per_step`: the average step length
        measured on this machine's clock (None: from OVH's elapsedTime when it is positive, else typical)."""
        if status is None or not status.progress:
            return self.queued
        steps_left = len(status.progress) - status.steps_done
        if steps_left <= 0:
            return self.densest
        if per_step is None:
            # elapsedTime goes negative (and restarts) across reboots: only a positive one is a hint.
            positive = status.elapsed_time > 0 and status.steps_done > 0
            per_step = status.elapsed_time / status.steps_done if positive else self.typical_step
        # A step that has already run longer than the average is likely to run about as long again.
        remaining = per_step * (steps_left - 1) + max(per_step - step_age, step_age)
        soonest_end = (steps_left - 1) * self.shortest_step + self.share_of_step * step_age
        return max(self.densest, min(self.sparsest, self.share_of_remaining * remaining, soonest_end))


class InstallTimeoutError(ByoiError):
    """The overall deadline passed while a reinstall task was still running: OVH goes on with it."""

    def __init__(
        self,
        service_name: str,
        task: Task,
        minutes: float,
        status: InstallStatus | None,
        *,
        ours: bool = True,
    ) -> None:
        """`ours`: the task is this install's own reinstall, not another one this install waited for."""
        self.service_name = service_name
        self.task = task
        self.status = status
        self.ours = ours
        where = ""
        if status is not None and status.current is not None:
            position, step = status.current
            where = f", at step {position}/{len(status.progress)} {step.comment!r}"
        if ours:
            fix = (
                "Fix: run `pulumi up` again from this machine (or raise timeout_minutes): it follows this "
                f"same task rather than reinstalling. `ovh-byoi status {service_name}` shows OVH's progress."
            )
        else:
            fix = (
                "This install was not started: it waits for the running reinstall to end first.\nFix: follow "
                f"that reinstall with `ovh-byoi status {service_name}`; once it has ended, run `pulumi up` "
                "again (or raise timeout_minutes). If OVH's task stays stuck, give OVH support its task id."
            )
        super().__init__(
            f"The reinstall of {service_name} (OVH task {task.task_id}) did not end within {minutes:g} "
            f"minutes: OVH still reports it {task.status}{where}. The server was left alone and OVH goes on "
            f"installing.\n{fix}"
        )


class TaskWatcher:
    """Follows one reinstall task to its end, showing each change of OVH's install step."""

    def __init__(
        self,
        api: OvhApi,
        task: Task,
        *,
        retry: RetryPolicy,
        schedule: PollSchedule | None = None,
    ) -> None:
        self._api = api
        self.task = task
        self.last_status: InstallStatus | None = None
        # The current step (position, comment) and when (OVH seconds on this machine's clock) it was first
        # seen running; OVH's elapsedTime is not monotonic and is never used to measure.
        self._step_seen: tuple[tuple[int, str], float] | None = None
        # When the install was first seen working, and how many steps were done then.
        self._first_seen: tuple[float, int] | None = None
        self._unknown_since: float | None = None
        self._retry = retry
        self._schedule = schedule or PollSchedule()
        self._last_delay = self._schedule.queued

    def _now(self) -> float:
        """This machine's clock in OVH seconds."""
        clock = self._retry.clock
        return clock.monotonic() * clock.scale

    def _read_task(self) -> None:
        self.task = self._retry.call(
            f"reading task {self.task.task_id}",
            lambda: self._api.task(self.task.task_id),
            not_found_grace=TASK_NOT_FOUND_GRACE,
        )

    def _ended(self) -> bool:
        if self.task.running:
            return False
        if self.task.known_status:
            return True
        # A status outside OVH's enumeration is never a success; it may be a passing oddity: read it again
        # for a while before reporting it.
        now = self._now()
        if self._unknown_since is None:
            self._unknown_since = now
            self._retry.progress.say(
                f"OVH reports task {self.task.task_id} as {self.task.status!r}, none of its documented "
                "statuses: asking again"
            )
        return now - self._unknown_since >= UNKNOWN_STATUS_GRACE

    def observe(self) -> bool:
        """Ask OVH once or twice; True when the task has ended."""
        if self.task.status in ("init", "todo"):
            # Queued: no steps to read yet, only the task says when work begins.
            with relaxed():
                self._read_task()
            return self._ended()
        if self._last_delay >= self._schedule.relaxed_from:
            with relaxed():
                status = self._retry.call("reading the install steps", self._api.install_status)
        else:
            status = self._retry.call("reading the install steps", self._api.install_status)
        if status is not None and status.progress:
            self.last_status = status
            self._retry.progress.show(status)
            now = self._now()
            if self._first_seen is None:
                self._first_seen = (now, status.steps_done)
            current = status.current
            step = (current[0], current[1].comment) if current else None
            if step is not None and (self._step_seen is None or self._step_seen[0] != step):
                self._step_seen = (step, now)
        if status is None or status.current is None or status.failed_step is not None:
            # The steps say it may be over; the task is the authority (asked in the same turn of the budget).
            with prompt():
                self._read_task()
        return self._ended()

    def _per_step(self, status: InstallStatus) -> float | None:
        """Average step length seen on this machine's clock, once a step has ended under watch."""
        if self._first_seen is None:
            return None
        since, steps_then = self._first_seen
        ended = status.steps_done - steps_then
        return (self._now() - since) / ended if ended > 0 else None

    def next_delay(self) -> float:
        """Real seconds until the next look."""
        if self.task.status in ("init", "todo") or not self.task.known_status:
            ovh_seconds = self._schedule.queued
        else:
            status = self.last_status
            step_age = self._now() - self._step_seen[1] if status and self._step_seen else 0.0
            per_step = self._per_step(status) if status else None
            ovh_seconds = self._schedule.delay(status, max(step_age, 0.0), per_step)
        self._last_delay = ovh_seconds
        return self._retry.clock.real(ovh_seconds)

    def wait(self) -> Task:
        """The task once it has ended (done or failed); InstallTimeoutError at the deadline."""
        deadline = self._retry.deadline
        clock = self._retry.clock

        def timed_out(state: tenacity.RetryCallState) -> Task:
            raise InstallTimeoutError(self._api.service_name, self.task, deadline.minutes, self.last_status)

        polling = tenacity.Retrying(
            sleep=clock.sleep,
            stop=lambda state: deadline.expired,
            wait=lambda state: min(self.next_delay(), deadline.remaining()),
            retry=tenacity.retry_if_result(lambda ended: not ended),
            retry_error_callback=timed_out,
        )
        polling(self.observe)
        return self.task
