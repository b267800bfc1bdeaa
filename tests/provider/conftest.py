"""A real `python -m pulumi.dynamic` server running ByoiProvider, configured against a fresh emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.provider import ByoiProvider
from ovh_byoi.spec import MAX_TIMEOUT_MINUTES
from ovh_emulator.testing import RunningEmulator
from testkit import emulator_records
from testkit.provider_process import ProviderProcess
from testkit.pulumi_cli import emulator_credentials as stack_config

from .inputs import EFI_DEBIAN

SERVER = "ns1000001.emulator.ovh"
# At 600 times the speed the default deadline (120 minutes) is 12 real seconds, and every real second the
# emulator spends downloading and converting counts ten OVH minutes: a loaded machine, or a test holding
# the emulator, would spend it. Tests of the deadline set their own.
BEYOND_ANY_TEST = MAX_TIMEOUT_MINUTES


def installs(emulator: RunningEmulator, service_name: str = SERVER) -> list[dict[str, Any]]:
    """The emulator's install history of a server (by default, the one these tests install)."""
    return emulator_records.installs(emulator, service_name)


@pytest.fixture
def provider_env(tmp_path: Path) -> dict[str, str]:
    """Waits in step with an emulator at speed 600; a journal of reinstalls of this test's own."""
    return {"OVH_BYOI_TIME_SCALE": "600", "OVH_BYOI_JOURNAL": str(tmp_path / "journal" / "reinstalls.sqlite")}


@pytest.fixture
def provider(
    emulator: RunningEmulator, provider_env: dict[str, str], tmp_path: Path
) -> Iterator[ProviderProcess]:
    """A provider process as `pulumi up` starts it, configured with the stack config."""
    with ProviderProcess(ByoiProvider(), env=provider_env, cwd=tmp_path) as process:
        process.configure(stack_config(emulator))
        yield process


@pytest.fixture
def image_inputs(emulator: RunningEmulator, test_images: dict[str, Path]) -> Callable[..., dict[str, Any]]:
    """Inputs of a ByoiInstallation of one of the emulator's images (by file name), with its checksum."""

    def make(name: str = "debian.qcow2", **changes: Any) -> dict[str, Any]:
        image = test_images[name]
        inputs: dict[str, Any] = {
            "service_name": SERVER,
            "image_url": emulator.image_url(name),
            "image_type": "qcow2" if name.endswith(".qcow2") else "raw",
            "image_checksum": emulator_records.sha512(image),
            "efi_bootloader_path": EFI_DEBIAN,
            "hostname": "web-1",
            "timeout_minutes": BEYOND_ANY_TEST,
        }
        inputs.update(changes)
        return {key: value for key, value in inputs.items() if value is not None}

    return make
