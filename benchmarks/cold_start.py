"""Figure 4: a provider process's cold start, from its launch to the first Check answered.

What the engine waits for before a stack's first ByoiInstallation can be planned (and, for a fleet, once per
server): `python -m pulumi.dynamic` starts and prints its port, Configure, then Check, which unpickles the
provider and imports `ovh_byoi`. The baseline is the same server running a provider that imports nothing
more than Pulumi: the difference is what `ovh_byoi` costs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ovh_byoi.provider import ByoiProvider
from pulumi.dynamic import ResourceProvider
from testkit.provider_process import ProviderProcess

from .common import EFI_DEBIAN, ROOT, Figure, median
from .empty_provider import EmptyProvider

GOAL_SECONDS = 1.5
INPUTS = {
    "service_name": "ns1000001.emulator.ovh",
    "image_url": "https://images.example.net/debian-12.qcow2",
    "image_type": "qcow2",
    "efi_bootloader_path": EFI_DEBIAN,
}


def cold_start(provider: ResourceProvider, work: Path) -> tuple[float, float]:
    """Seconds to the port line, and to the first Check answered."""
    began = time.perf_counter()
    # The benchmark package must be importable by the provider process, as a stack's modules are.
    with ProviderProcess(provider, cwd=ROOT, env={"OVH_BYOI_JOURNAL": str(work / "j.sqlite")}) as process:
        listening = time.perf_counter()
        process.configure({"ovh:endpoint": "ovh-eu"})
        checked = process.check({}, INPUTS)
        answered = time.perf_counter()
        assert not checked.failures, checked.failures
    return listening - began, answered - began


def figure(*, runs: int = 7) -> Figure:
    fig = Figure(
        4,
        "Provider cold start",
        f"process start to the first Check answered in under {GOAL_SECONDS:g} s",
        ["provider", "runs", "to its port, median (s)", "to first Check, median (s)", "worst (s)"],
    )
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
        for label, provider in (
            ("pulumi.dynamic + an empty provider (baseline)", EmptyProvider()),
            ("ByoiProvider", ByoiProvider()),
        ):
            results[label] = [cold_start(provider, Path(scratch)) for _ in range(runs)]
            fig.rows.append(
                [
                    label,
                    runs,
                    median(port for port, _ in results[label]),
                    median(check for _, check in results[label]),
                    max(check for _, check in results[label]),
                ]
            )
    ours = median(check for _, check in results["ByoiProvider"])
    fig.verdict = (
        f"goal met: {ours:.2f} s"
        if ours < GOAL_SECONDS
        else f"goal missed by {ours - GOAL_SECONDS:.2f} s: {ours:.2f} s"
    )
    return fig
