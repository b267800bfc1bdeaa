"""Figure 3: `pulumi preview` of 200 servers: how long it takes, and how many OVH API calls it makes (none).

Through LocalEngine, against a fresh emulator whose statistics count every call. The same 200 servers are
previewed as plain `ByoiInstallation` resources on the default provider (one provider process: the
baseline), and as a `ByoiFleet` (one provider process per server, started and asked one at a time as the
engine does), whose cost in processes and memory is reported too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ovh_byoi import ByoiFleet, ByoiInstallation
from ovh_byoi_harness.engine import LocalEngine
from ovh_emulator.testing import start_emulator

from .common import (
    EFI_DEBIAN,
    SECRET_CONFIG,
    Figure,
    api_calls,
    images,
    memory_available,
    provider_env,
    server_names,
    sha512,
    stack_config,
    watch_providers,
)

MIB = 1024**2
# A fleet's preview runs one provider process per server, about 50 MB each: leave the machine room.
HEADROOM_BYTES = 4 * 1024**3
PROVIDER_BYTES_ESTIMATE = 80 * MIB


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

            def installations() -> None:
                for name in names:
                    ByoiInstallation(f"web-{name}", service_name=name, **shared)

            fits = memory_available() - HEADROOM_BYTES
            fleet_size = min(servers, max(1, int(fits // PROVIDER_BYTES_ESTIMATE)))

            def fleet() -> None:
                members: dict[str, dict[str, Any]] = {name: {} for name in names[:fleet_size]}
                ByoiFleet("web", servers=members, max_parallel=16, **shared)

            for label, program, size in (
                ("ByoiInstallation, default provider", installations, servers),
                ("ByoiFleet, a provider per server", fleet, fleet_size),
            ):
                if size < servers:
                    fig.notes.append(
                        f"The fleet's preview was limited to {size} servers: {servers} provider processes "
                        "would not fit in this machine's free memory."
                    )
                engine = LocalEngine(
                    work / f"{label[:4]}.json",
                    config=stack_config(emulator),
                    secret_config=SECRET_CONFIG,
                    env=provider_env(600, work),
                    cwd=work,
                    passphrase="benchmark",
                    parallel=2 * servers + 8,
                )
                before = emulator.stats()
                with watch_providers() as providers:
                    result = engine.preview(program).raise_for_errors()
                calls = sum(api_calls(before, emulator.stats()).values())
                calls_seen += calls
                fig.rows.append(
                    [
                        label,
                        size,
                        result.ended - result.started,
                        calls,
                        providers.peak_processes,
                        providers.peak_bytes / MIB,
                    ]
                )
    fig.verdict = "goal met: no API call" if calls_seen == 0 else f"goal missed: {calls_seen} API calls"
    fig.notes.append(
        "Memory: the summed proportional set size (PSS) of the provider processes, sampled every 0.5 s."
    )
    return fig
