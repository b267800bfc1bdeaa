"""Figure 6: a fleet under OVH's rate limit: requests per minute per consumer key, and completion latency.

1, 10, 64 and 200 installs at once against the emulator in its realistic mode (404 bursts on fresh tasks and
servers, elapsedTime negative across reboots, 60 requests a minute per consumer key answered 429 beyond),
all with one consumer key, driven through real provider processes (one per four installs, as
`detection.py` does: they share the budget through its SQLite file, as a machine's stacks do). Clocks are
compressed (`--speed`, `OVH_BYOI_TIME_SCALE`); figures are in OVH (uncompressed) time.

Requests per minute are what the emulator counted per consumer key: its busiest sliding minute, and the
429s it answered. Latency is how long after OVH's task was done `create` returned.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from ovh_byoi.provider import ByoiProvider
from ovh_emulator.testing import start_emulator
from testkit.provider_process import ProviderProcess
from testkit.pulumi_cli import emulator_credentials as stack_config

from .common import (
    EFI_DEBIAN,
    Figure,
    api_calls,
    images,
    median,
    provider_env,
    server_names,
    sha512,
    task_times,
)

LIMIT_PER_MINUTE = 60
INSTALLS_PER_PROCESS = 4


def measure(count: int, *, speed: float, work: Path) -> list[object]:
    image = images(work / "images")["small.qcow2"]
    servers = server_names(count)
    with (
        start_emulator(servers=count, speed=speed, images=image.parent, realistic=True) as emulator,
        ExitStack() as stack,
    ):
        env = provider_env(speed, work)
        providers = [
            stack.enter_context(ProviderProcess(ByoiProvider(), env=env, cwd=work))
            for _ in range(-(-count // INSTALLS_PER_PROCESS))
        ]
        for provider in providers:
            provider.configure(stack_config(emulator))
        before = emulator.stats()
        started = time.time()
        returned: dict[str, float] = {}

        def install(service_name: str) -> None:
            provider = providers[servers.index(service_name) % len(providers)]
            provider.create(
                {
                    "service_name": service_name,
                    "image_url": emulator.image_url(image.name),
                    "image_type": "qcow2",
                    "image_checksum": sha512(image),
                    "efi_bootloader_path": EFI_DEBIAN,
                }
            )
            returned[service_name] = time.time()

        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(install, servers))
        ended = time.time()
        calls = sum(api_calls(before, emulator.stats()).values())
        rate = emulator.rate()
        times = task_times(emulator)
        tasks = {sn: emulator.server(sn)["installs"][-1]["taskId"] for sn in servers}

    [key] = rate["consumerKeys"].values()
    latencies = []
    for service_name in servers:
        _, done = times[int(tasks[service_name])]
        assert done is not None
        latencies.append((returned[service_name] - done) * speed)
    minutes = (ended - started) * speed / 60
    return [
        count,
        len(providers),
        calls,
        calls / minutes,
        key["peakPerMinute"],
        key["refused"],
        minutes,
        median(latencies),
        max(latencies),
    ]


def figure(*, speed: float = 60.0, sizes: tuple[int, ...] = (1, 10, 64, 200)) -> Figure:
    fig = Figure(
        6,
        "Request budget of a fleet under OVH's rate limit",
        f"at most {LIMIT_PER_MINUTE} requests a minute per consumer key, no 429, each completion noticed "
        "within seconds to tens of seconds",
        [
            "installs",
            "provider processes",
            "API requests",
            "requests / min (mean)",
            "busiest minute",
            "429s",
            "fleet duration (min)",
            "latency median (s)",
            "latency worst (s)",
        ],
    )
    met = True
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as scratch:
        for count in sizes:
            row = measure(count, speed=speed, work=Path(scratch))
            fig.rows.append(row)
            print(f"  {count} installs: {row}", flush=True)
            peak, refused = int(str(row[4])), int(str(row[5]))
            met = met and peak <= LIMIT_PER_MINUTE and refused == 0
    fig.verdict = "budget kept" if met else "budget exceeded (see the rows)"
    fig.notes.append(
        f"Emulator --realistic at --speed {speed:g} with OVH_BYOI_TIME_SCALE={speed:g}: a real-time jitter "
        f"of 10 ms shows as {0.01 * speed:.1f} s. The provider's budget is 45 requests a minute plus a burst "
        "of 10 (OVH_BYOI_REQUESTS_PER_MINUTE), shared by its processes through budget.sqlite beside the "
        "journal."
    )
    fig.notes.append(
        "Each install makes about 7 signed requests that do not depend on its length (hardware, task list, "
        "POST, first task reads, server read; OVH's clock, unsigned, is asked once per process and costs no "
        "budget): a fleet of N needs at least 7N/45 minutes of budget, so large fleets start in waves and "
        "their latency is bounded by how many installs end together."
    )
    return fig
