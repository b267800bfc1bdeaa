"""Figure 3: `pulumi preview` of 200 servers: how long it takes, and how many OVH API calls it makes (none).

The real Pulumi CLI previews a new stack of `benchmarks/program` against a fresh emulator whose statistics
count every call. The same servers are previewed as plain `ByoiInstallation` resources on the default
provider (one provider process: the baseline), and as a `ByoiFleet` (one explicit provider its servers share,
so one provider process too), whose cost in processes and memory is reported too. The time is the
whole command's, as a user waits for it: the CLI's start, the program, the providers, the Checks.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ovh_emulator.testing import start_emulator

from .common import (
    EFI_DEBIAN,
    Figure,
    api_calls,
    bench_stack,
    images,
    server_names,
    sha512,
    watch_providers,
)

MIB = 1024**2


def figure(*, servers: int = 200) -> Figure:
    fig = Figure(
        3,
        f"Preview of {servers} servers",
        "no OVH API call at all",
        ["declared as", "servers", "seconds", "OVH API calls", "provider processes", "their memory (MiB)"],
    )
    calls_seen = 0
    with tempfile.TemporaryDirectory(prefix="bench-preview-") as scratch:
        work = Path(scratch)
        image = images(work / "images")["small.qcow2"]
        names = server_names(servers)
        with start_emulator(servers=servers, speed=600, images=image.parent) as emulator:
            shared: dict[str, Any] = {
                "image_url": emulator.image_url(image.name),
                "image_type": "qcow2",
                "image_checksum": sha512(image),
                "efi_bootloader_path": EFI_DEBIAN,
            }
            for label, shape, size in (
                ("ByoiInstallation, default provider", "installations", servers),
                ("ByoiFleet, one shared provider", "fleet", servers),
            ):
                stack = bench_stack(
                    emulator, work / shape, names[:size], shape=shape, shared=shared, speed=600
                )
                before = emulator.stats()
                with watch_providers() as providers:
                    # As many steps at once as servers: the engine's default (4 x CPUs) would not bound
                    # the preview's Checks, but the fleet warns when its batch is above --parallel.
                    started = time.time()
                    stack.preview("--parallel", str(max(size, 8)))
                    ended = time.time()
                calls = sum(api_calls(before, emulator.stats()).values())
                calls_seen += calls
                memory = providers.peak_bytes / MIB
                fig.rows.append([label, size, ended - started, calls, providers.peak_processes, memory])
    fig.verdict = "goal met: no API call" if calls_seen == 0 else f"goal missed: {calls_seen} API calls"
    fig.notes.append(
        "Under the real Pulumi CLI (`pulumi preview` of a new stack, its time the whole command's). Memory: "
        "the summed proportional set size (PSS) of the provider processes, sampled every 0.5 s."
    )
    return fig
