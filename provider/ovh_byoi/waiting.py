"""Following a reinstall task to its end: when to ask OVH again, what to show, when the deadline ends it.

Polling reads OVH's install steps (`install/status`: step i of n) to estimate how long the install has left,
and asks sparsely while much remains and every 2 s near the end: it notices completion within about 2 s while
making a third of the calls of OVH's Terraform provider (3 s backing off to 10 s). Time is measured on this
machine's clock: OVH's `elapsedTime` goes negative across the install's reboots (ovhcloud-cli saw -1935, then
+42, then -87) and is only shown, never computed with. Every request also waits for the consumer key's shared
budget (`budget.py`), queued by when its install is expected to end, so that a contended budget goes to the
installs about to end. What a look reads is chosen once its turn has come. Once OVH's last step runs, only
the task is read: its end or failure is the only news left, and one read notices it; so does a look that the
budget held up past half the time the install had left. Each single read is retried as `ovh_byoi.retrying`
says; durations are OVH time (`ovh_byoi.clock`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NoReturn

from .budget import news_in, prompt, relaxed
from .errors import ByoiError
from .ovh_api import InstallStatus, OvhApi, Task

# Progress lived here first: `ovh_byoi.cli` still imports it from this module.
from .progress import Progress
from .retrying import TASK_NOT_FOUND_GRACE, RetryPolicy

__all__ = ["InstallTimeoutError", "PollSchedule", "Progress", "TaskWatcher"]

# How long a task status outside OVH's enumeration is re-read before the install is reported as not succeeded.
UNKNOWN_STATUS_GRACE: Final = 300.0


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
        remaining = self.time_left(status, step_age, per_step)
        soonest_end = (steps_left - 1) * self.shortest_step + self.share_of_step * step_age
        return max(self.densest, min(self.sparsest, self.share_of_remaining * remaining, soonest_end))

    def time_left(
        self, status: InstallStatus | None, step_age: float = 0.0, per_step: float | None = None
    ) -> float:
        """OVH seconds the install is expected to run on (as `delay` takes its arguments); 0 once no step
        is left, `sparsest` while no step is known."""
        if status is None or not status.progress:
            return self.sparsest
        steps_left = len(status.progress) - status.steps_done
        if steps_left <= 0:
            return 0.0
        if per_step is None:
            # elapsedTime goes negative (and restarts) across reboots: only a positive one is a hint.
            positive = status.elapsed_time > 0 and status.steps_done > 0
            per_step = status.elapsed_time / status.steps_done if positive else self.typical_step
        # A step that has already run longer than the average is likely to run about as long again.
        return per_step * (steps_left - 1) + max(per_step - step_age, step_age)


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
        # Half the time the install had left, after the last read of the steps: a look later than this may
        # find it over.
        self._look_due_at: float | None = None

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

    def _on_the_last_step(self) -> bool:
        """OVH's last step runs: its end, or its failure, is news the task gives alone."""
        status = self.last_status
        if status is None or status.current is None or status.failed_step is not None:
            return False
        return status.current[0] == len(status.progress)

    def _past_due(self) -> bool:
        """Half the time the install had left when its steps were last read has passed: a look held up this
        long may find it over."""
        return self._look_due_at is not None and self._now() >= self._look_due_at

    def observe(self) -> bool:
        """Ask OVH once or twice; True when the task has ended."""
        if self.task.status in ("init", "todo"):
            # Queued: no steps to read yet, only the task says when work begins.
            with relaxed():
                self._read_task()
            return self._ended()
        # A contended budget goes first to the installs expected to end soonest; a poll far from the expected
        # end (a long last step too) also leaves the reserve to the reads that notice an end.
        left = self._time_left()
        far = self._last_delay >= self._schedule.relaxed_from
        priority = relaxed(left) if far else news_in(left)
        asked = self._now()
        with priority, self._api.turn():
            # What to read is chosen once the turn has come. On OVH's last step, or after a wait for a
            # contended budget that took the look past due, the task alone notices an end (or a failure,
            # whose steps are read when it is reported): one request, where the steps then the task take two.
            held_up = self._now() - asked > self._schedule.densest
            if self._on_the_last_step() or (held_up and self._past_due()):
                self._read_task()
                return self._ended()
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
            self._look_due_at = now + self._schedule.share_of_remaining * self._time_left()
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

    def _estimate_inputs(self) -> tuple[InstallStatus | None, float, float | None]:
        """The last steps seen, how long the current one has run, the average step length measured."""
        status = self.last_status
        step_age = self._now() - self._step_seen[1] if status and self._step_seen else 0.0
        per_step = self._per_step(status) if status else None
        return status, max(step_age, 0.0), per_step

    def _time_left(self) -> float:
        return self._schedule.time_left(*self._estimate_inputs())

    def next_delay(self) -> float:
        """Real seconds until the next look."""
        if self.task.status in ("init", "todo") or not self.task.known_status:
            ovh_seconds = self._schedule.queued
        else:
            ovh_seconds = self._schedule.delay(*self._estimate_inputs())
        self._last_delay = ovh_seconds
        return self._retry.clock.real(ovh_seconds)

    def wait(self) -> Task:
        """The task once it has ended (done or failed); InstallTimeoutError at the deadline."""

        def timed_out() -> NoReturn:
            raise InstallTimeoutError(
                self._api.service_name, self.task, self._retry.deadline.minutes, self.last_status
            )

        self._retry.poll(self.observe, self.next_delay, timed_out)
        return self.task
