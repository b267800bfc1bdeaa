"""Waiting policies on a simulated clock: tests never sleep.

The simulated install follows the emulator's plan (init and todo, then OVH's 21 steps, about ten minutes), so
the polling schedule is measured on the same install the end-to-end tests run at 600 times the speed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import ovh.exceptions
import pytest
import requests
from ovh_byoi.budget import _NEWS_IN, _URGENCY, NEWS_HORIZON, _Urgency
from ovh_byoi.clock import Clock, Deadline, time_scale
from ovh_byoi.ovh_api import InstallStatus, Task
from ovh_byoi.progress import Progress
from ovh_byoi.retrying import RetryPolicy, is_transient
from ovh_byoi.waiting import InstallTimeoutError, PollSchedule, TaskWatcher
from ovh_emulator.installs import INIT_SECONDS, TODO_SECONDS
from ovh_emulator.plan import PLAN
from testkit.emulator_records import terraform_polls

STEP_SECONDS = [step.seconds for step in PLAN]
INSTALL_SECONDS = INIT_SECONDS + TODO_SECONDS + sum(STEP_SECONDS)


@dataclass
class SimulatedTime:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def clock(self, scale: float = 1.0) -> Clock:
        return Clock(sleep=self.sleep, monotonic=self.monotonic, scale=scale)


@dataclass
class SimulatedInstall:
    """OVH's view of one reinstall started at time 0, as the emulator schedules it."""

    time: SimulatedTime
    scale: float = 1.0
    step_seconds: list[float] = field(default_factory=lambda: list(STEP_SECONDS))
    calls: list[str] = field(default_factory=list)
    service_name: str = "ns1000001.emulator.ovh"
    # Other installs' requests fill the shared budget: every look waits this many seconds for its turn.
    turn_wait: float = 0.0

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        self.time.now += self.turn_wait / self.scale
        yield

    @property
    def elapsed(self) -> float:
        return self.time.now * self.scale

    @property
    def end(self) -> float:
        return INIT_SECONDS + TODO_SECONDS + sum(self.step_seconds)

    def task(self, task_id: int) -> Task:
        self.calls.append("task")
        if self.elapsed < INIT_SECONDS:
            status = "init"
        elif self.elapsed < INIT_SECONDS + TODO_SECONDS:
            status = "todo"
        elif self.elapsed < self.end:
            status = "doing"
        else:
            status = "done"
        return Task(taskId=task_id, function="reinstallServer", status=status)

    def install_status(self) -> InstallStatus | None:
        self.calls.append("install/status")
        if not INIT_SECONDS + TODO_SECONDS <= self.elapsed < self.end:
            return None
        started = INIT_SECONDS + TODO_SECONDS
        progress: list[dict[str, Any]] = []
        for number, seconds in enumerate(self.step_seconds):
            status = (
                "done"
                if self.elapsed >= started + seconds
                else "doing"
                if self.elapsed >= started
                else "todo"
            )
            progress.append({"comment": f"step {number + 1}", "status": status, "error": None})
            started += seconds
        return InstallStatus.model_validate({"elapsedTime": int(self.elapsed), "progress": progress})


def watch(install: SimulatedInstall, clock: Clock, minutes: float = 120) -> tuple[Task, list[str]]:
    lines: list[str] = []
    progress = Progress(install.service_name, write=lines.append)
    retry = RetryPolicy(clock, Deadline(minutes, clock), progress)
    watcher = TaskWatcher(install, Task(taskId=42, status="init"), retry=retry)  # type: ignore[arg-type]
    return watcher.wait(), lines


def test_completion_is_noticed_within_two_seconds_with_a_third_of_terraforms_calls() -> None:
    time = SimulatedTime()
    install = SimulatedInstall(time)

    task, lines = watch(install, time.clock())

    assert task.status == "done"
    assert time.now - install.end <= 2.0
    assert len(install.calls) <= terraform_polls(install.end) / 2.5
    assert lines[-1] == "[ns1000001.emulator.ovh] 21/21 step 21"


@pytest.mark.parametrize(
    "steps",
    [
        [30.0] * 21,
        [5.0] * 20 + [300.0],
        [300.0] + [5.0] * 20,
        [120.0] * 10 + [5.0] * 5,
        [2.0, 60.0, 600.0, 5.0, 5.0, 5.0, 5.0, 10.0],
    ],
    ids=["even", "long-last-step", "long-first-step", "short-tail", "long-download"],
)
def test_other_step_durations_are_noticed_promptly_with_fewer_calls_than_terraform(
    steps: list[float],
) -> None:
    time = SimulatedTime()
    install = SimulatedInstall(time, step_seconds=steps)

    task, _ = watch(install, time.clock())

    assert task.status == "done"
    # Steps shorter than the 5 s the schedule assumes may be jumped over, and a long final step is polled
    # at a fifth of how long it has run: the delay stays a few seconds, or a fifth of a long final step.
    assert time.now - install.end <= max(5.0, 0.2 * steps[-1])
    assert len(install.calls) < terraform_polls(install.end)


def test_once_the_last_step_runs_only_the_task_is_read_so_noticing_the_end_costs_one_read() -> None:
    """On the last step the steps have nothing more to say: the task tells its end or its failure. Under a
    fleet's contended budget each read saved is one more for another install's end."""
    time = SimulatedTime()
    install = SimulatedInstall(time, step_seconds=[30.0] * 21)

    task, lines = watch(install, time.clock())

    assert task.status == "done"
    assert lines[-1] == "[ns1000001.emulator.ovh] 21/21 step 21"
    # The look that saw the end was one task read, not a read of the steps (gone) and then of the task.
    assert install.calls[-2:] == ["task", "task"]
    assert time.now - install.end <= 2.0 + 0.2 * 30


def test_a_long_last_step_is_read_as_a_poll_far_from_the_end_leaving_a_contended_budget_to_others() -> None:
    time = SimulatedTime()
    install = SimulatedInstall(time, step_seconds=[5.0] * 20 + [300.0])
    relaxed_task_reads: list[bool] = []
    read_task = install.task

    def task(task_id: int) -> Task:
        if "install/status" in install.calls:
            relaxed_task_reads.append(_URGENCY.get() == _Urgency.RELAXED)
        return read_task(task_id)

    install.task = task  # type: ignore[method-assign]

    done, _ = watch(install, time.clock())

    assert done.status == "done"
    # Dense at first, then sparse as the step runs on: the sparse reads wait behind installs near their end.
    assert relaxed_task_reads[0] is False
    assert True in relaxed_task_reads


def test_each_poll_queues_for_a_contended_budget_by_when_its_install_is_expected_to_end() -> None:
    """The budget serves first the polls whose news is due first: a poll at the start of a ten-minute install
    counts as far behind, the reads near its end as about due."""
    time = SimulatedTime()
    install = SimulatedInstall(time)
    expected: list[tuple[float, float]] = []
    read_steps, read_task = install.install_status, install.task

    def steps() -> InstallStatus | None:
        expected.append((time.now, _NEWS_IN.get()))
        return read_steps()

    def task(task_id: int) -> Task:
        expected.append((time.now, _NEWS_IN.get()))
        return read_task(task_id)

    install.install_status = steps  # type: ignore[method-assign]
    install.task = task  # type: ignore[method-assign]

    done, _ = watch(install, time.clock())

    assert done.status == "done"
    first_steps = next(news for at, news in expected if at >= INIT_SECONDS + TODO_SECONDS)
    assert first_steps >= 60.0, "a poll at the start expects no news for minutes"
    assert max(news for _, news in expected) <= NEWS_HORIZON
    # The last looks come closer and closer to the end, and so does the news they expect.
    last_looks = [news for _, news in expected[-3:]]
    assert last_looks == sorted(last_looks, reverse=True)
    assert last_looks[-1] <= 30.0


def test_a_look_held_up_by_a_contended_budget_reads_the_task_alone_so_an_end_costs_one_read() -> None:
    """64 installs sharing 45 requests a minute: each look waits about a minute and a half for its turn. By
    then the install may be over, and reading the steps (gone), then the task, would spend two requests of
    the shared budget where the task alone notices the end."""
    time = SimulatedTime()
    install = SimulatedInstall(time, turn_wait=85.0)

    task, lines = watch(install, time.clock())

    assert task.status == "done"
    assert install.calls[-1] == "task"
    assert install.calls[-2] != "install/status", "the look that saw the end read the task alone"
    assert any("/21" in line for line in lines), "the steps were read, and shown, while far from the end"


def test_a_look_that_had_its_turn_at_once_reads_the_steps_and_shows_them() -> None:
    time = SimulatedTime()
    install = SimulatedInstall(time, step_seconds=[30.0] * 21, turn_wait=0.5)

    task, lines = watch(install, time.clock())

    assert task.status == "done"
    assert lines[-1] == "[ns1000001.emulator.ovh] 21/21 step 21"


def test_waits_are_divided_by_the_time_scale() -> None:
    time = SimulatedTime()
    install = SimulatedInstall(time, scale=600)

    task, _ = watch(install, time.clock(scale=600))

    assert task.status == "done"
    assert time.now * 600 - install.end <= 2.0
    assert max(time.slept) <= 60 / 600


def test_polls_sparsely_early_and_densely_near_the_end() -> None:
    schedule = PollSchedule()
    early = InstallStatus.model_validate(
        {
            "elapsedTime": 60,
            "progress": [{"status": "done"}] * 2 + [{"status": "doing"}] + [{"status": "todo"}] * 18,
        }
    )
    late = InstallStatus.model_validate(
        {"elapsedTime": 600, "progress": [{"status": "done"}] * 20 + [{"status": "doing"}]}
    )
    assert schedule.delay(None) == schedule.queued
    assert schedule.delay(early) >= 30
    assert schedule.delay(late) == 2.0


def test_the_deadline_ends_the_wait_naming_the_task_and_what_to_do() -> None:
    time = SimulatedTime()
    install = SimulatedInstall(time, step_seconds=[3600.0] * 21)

    with pytest.raises(InstallTimeoutError) as timeout:
        watch(install, time.clock(), minutes=90)

    assert time.now == pytest.approx(90 * 60, abs=1)
    message = str(timeout.value)
    assert "task 42" in message and "90 minutes" in message
    assert "doing" in message
    assert "left alone" in message
    assert "Fix: " in message


def api_error(status: int | None) -> ovh.exceptions.APIError:
    if status is None:
        return ovh.exceptions.HTTPError("Low HTTP request failed error", requests.ConnectionError("reset"))
    response = requests.Response()
    response.status_code = status
    response.headers["X-OVH-QUERYID"] = "EU.ext-1.query"
    return ovh.exceptions.APIError("refused", response=response)


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (None, True),
        (500, True),
        (503, True),
        (429, True),
        (400, False),
        (403, False),
        (404, False),
        (409, False),
    ],
)
def test_only_network_failures_5xx_and_429_are_transient(status: int | None, transient: bool) -> None:
    assert is_transient(api_error(status)) is transient


def test_transient_failures_are_asked_again_with_growing_jittered_waits() -> None:
    time = SimulatedTime()
    clock = time.clock()
    lines: list[str] = []
    policy = RetryPolicy(clock, Deadline(120, clock), Progress("ns1", write=lines.append))
    answers: list[Any] = [api_error(503), api_error(500), api_error(None), api_error(429), "answer"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    assert policy.call("reading the task", call) == "answer"
    assert len(time.slept) == 4
    assert time.slept[-1] > time.slept[0]
    assert all(wait <= 60 + 1 for wait in time.slept)
    assert "OVH answered 503 while reading the task (query id EU.ext-1.query)" in lines[0]


def test_a_refusal_is_not_asked_again() -> None:
    time = SimulatedTime()
    clock = time.clock()
    policy = RetryPolicy(clock, Deadline(120, clock), Progress("ns1", write=lambda line: None))
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise api_error(403)

    with pytest.raises(ovh.exceptions.APIError):
        policy.call("reading the task", refused)
    assert calls == [1]
    assert time.slept == []


def test_an_outage_is_reported_after_ten_minutes_not_waited_out() -> None:
    time = SimulatedTime()
    clock = time.clock()
    policy = RetryPolicy(clock, Deadline(120, clock), Progress("ns1", write=lambda line: None))

    def down() -> None:
        raise api_error(503)

    with pytest.raises(ovh.exceptions.APIError):
        policy.call("reading the task", down)
    assert 600 <= time.now <= 700


@pytest.mark.parametrize(
    ("raw", "scale"),
    [("", 1.0), ("600", 600.0), ("0.5", 0.5), ("fast", 1.0), ("0", 1.0), ("-3", 1.0), ("inf", 1.0)],
)
def test_time_scale_comes_from_the_environment(raw: str, scale: float) -> None:
    assert time_scale({"OVH_BYOI_TIME_SCALE": raw}) == scale
