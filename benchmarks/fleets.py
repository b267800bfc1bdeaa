"""Figure 2: `pulumi up` of 64 servers at once, against one install run the same way; and 200 plain
`ByoiInstallation`s in one stack, all in flight at once.

Every run is `pulumi up --skip-preview --parallel N` of a new stack of `benchmarks/program` by the real Pulumi
CLI, on a fresh emulator, timed as a user waits for it (the CLI's start, the program, the provider, the
installs, the engine's last writes). The servers are declared as one `ByoiFleet` (`canary=0`,
`max_parallel` = the size: one explicit provider the servers share) or as plain `ByoiInstallation`s (the
default provider, one process, its pool widened by the provider); N is the size, as the fleet's own warning
asks. The baseline is one `ByoiInstallation`, run the same way.

The clocks run `speed` times OVH's pace (the emulator's `--speed`, the provider's `OVH_BYOI_TIME_SCALE`), slow
enough that one install lasts at least a minute of real time: what does not compress (starting the CLI and the
provider, the engine registering and checking 64 resources one after the other) weighs against a
minute-long install, not a seconds-long one. The goal's runs keep the provider's request budget as a user has
it (45 requests a minute per consumer key, counted in OVH time); two more runs turn it off
(`OVH_BYOI_REQUESTS_PER_MINUTE=0`) to show what it costs.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovh_byoi.budget import BUDGET_ENV, BURST, DEFAULT_PER_MINUTE
from ovh_emulator.testing import start_emulator

from .common import (
    EFI_DEBIAN,
    NEAR_LIMIT,
    Figure,
    bench_stack,
    images,
    near_limit,
    server_names,
    sha512,
    spread,
    task_times,
    within_limit,
)

RATIO_GOAL = 1.2
GOAL_SERVERS = 64
GOAL_MANY = 200
# The goal's pace: one install lasts at least this long in real time.
GOAL_INSTALL_SECONDS = 60.0
# Past this, an `up` is stuck: 200 installs of a minute each take about two.
UP_TIMEOUT = 1200.0
# Signed requests an install makes before its reinstall with preflight off (the task list, the POST), and
# after its end (the task, then the server): the request budget paces both.
REQUESTS_TO_START = 2
SHAPES = {"fleet": "ByoiFleet", "installations": "ByoiInstallation"}
BUDGETS = {True: f"{DEFAULT_PER_MINUTE:g} a minute", False: "off"}


@dataclass
class Up:
    """One `pulumi up`, and each install's start and end as the emulator recorded them."""

    shape: str
    servers: int
    metered: bool  # the provider's request budget on, as a user has it
    started: float  # epoch seconds
    ended: float
    installs: list[tuple[float, float]]

    @property
    def wall(self) -> float:
        return self.ended - self.started

    @property
    def install_seconds(self) -> float:
        """The longest install, in real seconds."""
        return max(end - start for start, end in self.installs)

    @property
    def last_start(self) -> float:
        """Seconds from the command's start to the last install's POST."""
        return max(start for start, _ in self.installs) - self.started

    @property
    def tail(self) -> float:
        """Seconds from the last install's end (in the emulator) to the command's: noticing it, the engine's
        last writes."""
        return self.ended - max(end for _, end in self.installs)

    @property
    def most_at_once(self) -> int:
        """The most installs in flight at the same moment (one ending as another begins counts once)."""
        events = sorted([(start, 1) for start, _ in self.installs] + [(end, -1) for _, end in self.installs])
        running = peak = 0
        for _, change in events:
            running += change
            peak = max(peak, running)
        return peak


def measure(size: int, *, shape: str, speed: float, work: Path, metered: bool = True) -> Up:
    image = images(work / "images")["small.qcow2"]
    folder = Path(tempfile.mkdtemp(dir=work))
    with start_emulator(servers=size, speed=speed, images=image.parent) as emulator:
        shared: dict[str, Any] = {
            "image_url": emulator.image_url(image.name),
            "image_type": "qcow2",
            "image_checksum": sha512(image),
            "efi_bootloader_path": EFI_DEBIAN,
            "preflight": "off",
        }
        names = server_names(size)
        env = None if metered else {BUDGET_ENV: "0"}
        stack = bench_stack(emulator, folder, names, shape=shape, shared=shared, speed=speed, env=env)
        started = time.time()
        stack.run("up", "--yes", "--skip-preview", "--parallel", str(max(size, 1)), timeout=UP_TIMEOUT)
        ended = time.time()
        times = task_times(emulator)
    installs = [(start, done) for start, done in times.values() if done is not None]
    if len(installs) != size:
        raise RuntimeError(f"{len(installs)} installs ended for {size} servers")
    print(f"   {SHAPES[shape]} x {size}, budget {BUDGETS[metered]}: {ended - started:.1f} s", flush=True)
    return Up(shape, size, metered, started, ended, installs)


def figure(
    *, speed: float = 10.0, size: int = GOAL_SERVERS, many: int = GOAL_MANY, budget_cost: bool = True
) -> Figure:
    fig = Figure(
        2,
        f"`pulumi up` of {size} servers at once, and {many} in one stack",
        f"{GOAL_SERVERS} servers at once (`--parallel` {GOAL_SERVERS}) within {RATIO_GOAL:g} install times, "
        f"at a pace where one install lasts at least {GOAL_INSTALL_SECONDS:.0f} s; {GOAL_MANY} plain "
        "ByoiInstallations in one stack all in flight at once",
        [
            "run",
            "declared as",
            "servers",
            "request budget",
            "seconds",
            "x one install",
            "installs at once",
            "last install began (s)",
            "ended after the last install (s)",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="bench-fleets-") as scratch:
        work = Path(scratch)
        ones, goal, crowd = measure_all(size, many, speed=speed, work=work)
        # What the request budget costs: the fleet and the crowd again without it.
        without_budget = [
            measure(servers, shape=shape, speed=speed, work=work, metered=False)
            for servers, shape in ((size, "fleet"), (many, "installations"))
            if budget_cost
        ]
    for number, one in enumerate(ones, 1):
        fig.rows.append(_row(f"one install #{number}", one, 1.0))
    ratios: dict[str, list[float]] = {}
    for shape, runs in goal.items():
        ratios[shape] = [run.wall / one.wall for run, one in zip(runs, ones, strict=False)]
        fig.rows += [
            _row(f"#{number}", run, ratio)
            for number, (run, ratio) in enumerate(zip(runs, ratios[shape], strict=True), 1)
        ]
    for run in (*crowd, *without_budget):
        fig.rows.append(_row(f"--parallel {run.servers}", run, run.wall / ones[0].wall))
    fig.verdict = verdict(ratios, crowd[0], size=size, many=many, install_seconds=ones[0].install_seconds)
    fig.notes += notes(ones, speed)
    fig.notes.append(floor_note(ones[0], size, speed))
    if without_budget:
        fig.notes.append(budget_note(without_budget, ones[0], size, many))
    return fig


def floor_note(one: Up, size: int, speed: float) -> str:
    """The least wall time the request budget allows `size` installs at once, from one install's."""
    ramp = max(0.0, REQUESTS_TO_START * size - BURST) / (DEFAULT_PER_MINUTE / 60 * speed)
    return (
        f"The request budget's floor: each install makes {REQUESTS_TO_START} signed requests before its "
        f"reinstall (the task list, the POST) and {REQUESTS_TO_START} to notice its end (the task, the "
        f"server). At {DEFAULT_PER_MINUTE:g} a minute after a burst of {BURST:g}, the last of {size} POSTs "
        f"comes {ramp * speed / 60:.1f} OVH minutes after the first ({ramp:.1f} s at this pace), and the "
        "ends come as far apart as the starts, each needing as many requests: however its polls are spent, "
        f"an `up` of {size} lasts at least {(one.wall + ramp) / one.wall:.2f} install times."
    )


def budget_note(without_budget: list[Up], one: Up, size: int, many: int) -> str:
    fleet, many_off = without_budget
    return (
        f"Without the request budget (`{BUDGET_ENV}=0`, the last two rows): {size} as a ByoiFleet in "
        f"{fleet.wall / one.wall:.2f} install times, {many_off.most_at_once} of {many} plain installs in "
        f"flight at once. A user keeps the budget (OVH allows about 60 requests a minute per consumer key, "
        f"figure 6), so the verdict is on the runs with it."
    )


def measure_all(
    size: int, many: int, *, speed: float, work: Path
) -> tuple[list[Up], dict[str, list[Up]], list[Up]]:
    """One install; `size` servers of each shape, twice when the first sits near the goal (each repetition
    against a one-install run of its own); then `many` plain ones."""
    ones = [measure(1, shape="installations", speed=speed, work=work)]
    goal: dict[str, list[Up]] = {}
    for shape in SHAPES:
        goal[shape] = [measure(size, shape=shape, speed=speed, work=work)]
        if near_limit(goal[shape][0].wall / ones[0].wall, RATIO_GOAL):
            if len(ones) < 2:
                ones.append(measure(1, shape="installations", speed=speed, work=work))
            goal[shape].append(measure(size, shape=shape, speed=speed, work=work))
    crowd = [measure(many, shape="installations", speed=speed, work=work)]
    return ones, goal, crowd


def _row(label: str, run: Up, ratio: float) -> list[Any]:
    cells = [SHAPES[run.shape], run.servers, BUDGETS[run.metered], run.wall, ratio]
    return [label, *cells, run.most_at_once, run.last_start, run.tail]


def verdict(
    ratios: dict[str, list[float]], crowd: Up, *, size: int, many: int, install_seconds: float
) -> str:
    """Met or missed only when every repetition of both shapes agrees, at the goal's size and pace."""
    parts = [f"{size} as {SHAPES[shape]} in {spread(times)} install times" for shape, times in ratios.items()]
    measured = "; ".join(parts) + f"; {crowd.most_at_once} of {many} plain installs in flight at once"
    if size < GOAL_SERVERS or many < GOAL_MANY or install_seconds < GOAL_INSTALL_SECONDS:
        return (
            f"not decided: one install lasted {install_seconds:.0f} s (the goal: {GOAL_SERVERS} and "
            f"{GOAL_MANY} servers, installs of at least {GOAL_INSTALL_SECONDS:.0f} s): {measured}"
        )
    decisions = [within_limit(values, RATIO_GOAL) for values in ratios.values()]
    all_at_once = crowd.most_at_once == many
    if all(decision is True for decision in decisions) and all_at_once:
        return f"goal met: {measured}"
    if any(decision is False for decision in decisions) or not all_at_once:
        return f"goal missed: {measured}"
    return f"not decided (repetitions on both sides of {RATIO_GOAL:g}): {measured}"


def notes(ones: Sequence[Up], speed: float) -> list[str]:
    one = ones[0]
    walls = spread([run.wall for run in ones], " s")
    return [
        f"One install (one ByoiInstallation, `pulumi up` of a new stack): {walls} at {speed:g} times OVH's "
        f"pace, {one.install_seconds:.1f} s of it the install itself in the emulator "
        f"({one.install_seconds * speed / 60:.1f} minutes at OVH's pace).",
        "x one install: the `up`'s wall time over one install's `up`, both measured at the same pace; a "
        f"second run (#2, against a second one-install run) is made when the first sits within "
        f"{NEAR_LIMIT:.0%} of {RATIO_GOAL:g}, and the verdict stands only when both agree.",
        "Installs at once: the most installs the emulator had in flight at the same moment (from each "
        "task's start and end as it recorded them). Last install began: seconds from the command's start to "
        "the last POST of a reinstall: the CLI's and the provider's start, the engine's registrations and "
        "Checks, and the request budget's pacing of the first calls. Ended after the last install: from the "
        "last task's end in the emulator to the command's, mostly the provider noticing it (its polls wait "
        "for the budget too).",
        "Earlier runs projected the wall time to OVH's pace from installs of 17 s; this one reports the wall "
        "time as measured at its pace, and projects nothing.",
    ]
