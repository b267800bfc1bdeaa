"""Figure 3: `pulumi preview` of an existing fleet of 200 servers with nothing to change: how long it takes,
how much memory the provider processes hold, and how many OVH API calls it makes (none).

The stack is created first (`pulumi up` against a fresh emulator at 60 times OVH's pace: only the preview
is measured), then `pulumi preview --expect-no-changes` is run twice, as a user types it, timed whole (the
CLI's start, the program, the provider, a Check and a Diff per server). The same servers are measured as one
`ByoiFleet` (one explicit provider its servers share) and as plain `ByoiInstallation`s (the default
provider). While each preview runs, the resident memory (RSS) of every process under this one is sampled
from /proc: the provider processes' sum is what the goal bounds; the whole tree's (CLI, language host,
program, providers) is shown beside it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ovh_emulator.testing import RunningEmulator, start_emulator

from .common import (
    EFI_DEBIAN,
    Figure,
    ProviderWatch,
    api_calls,
    bench_stack,
    images,
    server_names,
    sha512,
    spread,
    watch_providers,
    within_limit,
)

MIB = 1024**2
GOAL_SECONDS = 15.0
GOAL_MIB = 1024.0
GOAL_SERVERS = 200
REPEATS = 2
# The pace the stack is created at: at 600 times OVH's, the provider's 120-minute install deadline is 12 real
# seconds, less than a loaded machine may take to start 200 installs; at 60, one install lasts 10 s.
SPEED = 60.0
UP_TIMEOUT = 900.0
SHAPES = {"fleet": "ByoiFleet, one shared provider", "installations": "ByoiInstallation, default provider"}


def figure(*, servers: int = GOAL_SERVERS) -> Figure:
    fig = Figure(
        3,
        f"No-change preview of an existing {servers}-server fleet",
        f"`pulumi preview` of {GOAL_SERVERS} existing servers with no change in at most {GOAL_SECONDS:g} s, "
        f"the provider processes holding at most {GOAL_MIB / 1024:g} GiB; no OVH API call",
        [
            "declared as",
            "servers",
            "seconds",
            "OVH API calls",
            "provider processes",
            "their memory (MiB)",
            "all processes (MiB)",
        ],
    )
    seconds: dict[str, list[float]] = {}
    memory: dict[str, list[float]] = {}
    calls_seen = 0
    with tempfile.TemporaryDirectory(prefix="bench-preview-") as scratch:
        work = Path(scratch)
        image_folder = images(work / "images")["small.qcow2"].parent
        for shape, label in SHAPES.items():
            with start_emulator(servers=servers, speed=SPEED, images=image_folder) as emulator:
                runs = measure(emulator, work / shape, servers, shape=shape)
            for taken, calls, providers in runs:
                seconds.setdefault(shape, []).append(taken)
                memory.setdefault(shape, []).append(providers.peak_bytes / MIB)
                calls_seen += calls
                fig.rows.append(
                    [
                        label,
                        servers,
                        taken,
                        calls,
                        providers.peak_processes,
                        providers.peak_bytes / MIB,
                        providers.peak_tree_bytes / MIB,
                    ]
                )
    fig.verdict = verdict(seconds, memory, calls_seen, servers)
    fig.notes.append(
        f"Each shape's stack is created first, then previewed {REPEATS} times (one row each) with "
        "`pulumi preview --expect-no-changes` (which fails if anything would change); its time is the whole "
        "command's. Memory: the peak of the summed resident sets (RSS, shared pages counted in every "
        "process, so an upper bound), sampled every 0.25 s."
    )
    return fig


def measure(
    emulator: RunningEmulator, folder: Path, servers: int, *, shape: str
) -> list[tuple[float, int, ProviderWatch]]:
    """Creates the stack, then times `REPEATS` no-change previews: seconds, OVH API calls, provider peaks."""
    image = images(folder.parent / "images")["small.qcow2"]
    shared: dict[str, Any] = {
        "image_url": emulator.image_url(image.name),
        "image_type": "qcow2",
        "image_checksum": sha512(image),
        "efi_bootloader_path": EFI_DEBIAN,
        "preflight": "off",
    }
    stack = bench_stack(emulator, folder, server_names(servers), shape=shape, shared=shared, speed=SPEED)
    stack.run("up", "--yes", "--skip-preview", "--parallel", str(servers), timeout=UP_TIMEOUT)
    runs = []
    for _ in range(REPEATS):
        before = emulator.stats()
        with watch_providers() as providers:
            started = time.time()
            stack.preview("--expect-no-changes")
            ended = time.time()
        runs.append((ended - started, sum(api_calls(before, emulator.stats()).values()), providers))
        print(f"   {SHAPES[shape]}: {ended - started:.1f} s", flush=True)
    return runs


def verdict(seconds: dict[str, list[float]], memory: dict[str, list[float]], calls: int, servers: int) -> str:
    """Met or missed only when every preview of both shapes agrees, at the goal's size."""
    parts = [
        f"{SHAPES[shape].split(',')[0]} in {spread(seconds[shape], ' s')}, "
        f"its providers at {spread(memory[shape], ' MiB')}"
        for shape in seconds
    ]
    measured = "; ".join(parts) + (f"; {calls} API calls" if calls else "; no API call")
    if servers < GOAL_SERVERS:
        return f"not decided: {servers} servers previewed (the goal: {GOAL_SERVERS}): {measured}"
    decisions = [within_limit(seconds[shape], GOAL_SECONDS) for shape in seconds]
    decisions += [within_limit(memory[shape], GOAL_MIB) for shape in memory]
    if calls == 0 and all(decision is True for decision in decisions):
        return f"goal met: {measured}"
    if calls or any(decision is False for decision in decisions):
        return f"goal missed: {measured}"
    return f"not decided (previews on both sides of the goal): {measured}"
