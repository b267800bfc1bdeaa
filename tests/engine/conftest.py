"""What the real Pulumi engine does with ByoiInstallation, proven with the real CLI on the root stack (two
servers of the emulator, set up as Pulumi.demo.yaml documents), on the emulator's own records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import sha512
from testkit.pulumi_cli import PulumiStack, documented_stack

ROOT = Path(__file__).resolve().parents[2]
WEB_1, WEB_2 = "ns1000001.emulator.ovh", "ns1000002.emulator.ovh"


def demo_stack(
    emulator: RunningEmulator, test_images: dict[str, Path], work: Path, **config: Any
) -> PulumiStack:
    """The demo stack as documented, its image known by its checksum (so that a URL is only where it is)."""
    stack = documented_stack(ROOT, work, "demo", emulator=emulator, **config)
    defaults = stack.config()["ovh-byoi:defaults"]
    defaults["image_checksum"] = sha512(test_images["debian.qcow2"])
    stack.set_config({"ovh-byoi:defaults": defaults})
    return stack


@pytest.fixture
def deployed_demo(emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path) -> PulumiStack:
    """The demo stack after its first `pulumi up`."""
    stack = demo_stack(emulator, test_images, tmp_path)
    stack.up()
    return stack


def installed(stack: PulumiStack) -> dict[str, dict[str, Any]]:
    """Each server's outputs in the state, by server."""
    return {name: resource["outputs"] for name, resource in stack.resources().items()}
