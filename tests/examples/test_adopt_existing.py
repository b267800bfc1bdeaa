"""examples/02-adopt-existing with the Pulumi CLI: a server installed by hand is taken over without a
reinstall."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, installs, sha512, writes

from .conftest import EXAMPLES, assert_no_secret_in, documented_stack

PROJECT = EXAMPLES / "02-adopt-existing"
SERVER = "ns1000001.emulator.ovh"


def install_by_hand(emulator: RunningEmulator, image_url: str, folder: Path) -> None:
    """What the server's owner did before the stack existed: `ovh-byoi install`, credentials from OVH_*."""
    env = {
        **os.environ,
        "OVH_ENDPOINT": emulator.url,
        "OVH_APPLICATION_KEY": emulator.application_key,
        "OVH_APPLICATION_SECRET": emulator.application_secret,
        "OVH_CONSUMER_KEY": emulator.consumer_key,
        "OVH_BYOI_TIME_SCALE": "600",
        "OVH_BYOI_JOURNAL": str(folder / "by-hand.sqlite"),
    }
    command = [
        str(Path(sys.executable).with_name("ovh-byoi")),
        "install",
        SERVER,
        "--image-url",
        image_url,
        "--image-type",
        "qcow2",
        "--efi-bootloader-path",
        r"\efi\debian\grubx64.efi",
        "--hostname",
        "db-1",
        "--yes",
    ]
    subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=120)


def test_adopting_a_server_installed_by_hand_reinstalls_nothing(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    install_by_hand(emulator, emulator.image_url("debian.qcow2"), tmp_path)
    [by_hand] = installs(emulator, SERVER)
    assert by_hand["status"] == "done"
    checksum = {"adopt-existing:imageChecksum": sha512(test_images["debian.qcow2"])}
    stack = documented_stack(PROJECT, emulator, tmp_path / "stack", "emulator", **checksum)

    adopted = stack.up()

    assert "+ 2 created" in adopted.output, adopted
    assert "adopted without reinstalling" in adopted.output
    assert stack.outputs()["task_id"] == by_hand["taskId"]
    assert writes(emulator) == {REINSTALL: 1}, "only the install by hand"
    assert_no_secret_in(stack.raw_state(), emulator.application_secret, emulator.consumer_key)

    stack.refresh("--preview-only", "--expect-no-changes")

    stack.set_config({"adopt-existing:adopt": "false"})
    settled = stack.up("--diff")

    assert "~ adopt" in settled.output and "~ 1 updated" in settled.output, settled
    assert writes(emulator) == {REINSTALL: 1}
    assert len(installs(emulator, SERVER)) == 1
