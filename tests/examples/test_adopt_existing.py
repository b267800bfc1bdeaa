"""examples/02-adopt-existing: a server installed by hand is taken over without a reinstall."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ovh_emulator.testing import RunningEmulator

from .conftest import EXAMPLES, installs, project_engine, provider_env, reinstall_requests, sha512

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
        **provider_env(folder),
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
    state = tmp_path / "state.json"
    checksum = {"adopt-existing:imageChecksum": sha512(test_images["debian.qcow2"])}

    adopted = project_engine(PROJECT, emulator, state, stack="emulator", **checksum).up().raise_for_errors()

    assert adopted.ops() == {"db-1": "create"}
    assert adopted.stack_outputs["task_id"] == by_hand["taskId"]
    assert "adopted without reinstalling" in adopted.printed()
    assert reinstall_requests(emulator) == 1, "only the install by hand"

    engine = project_engine(PROJECT, emulator, state, stack="emulator", **checksum)
    engine.refresh(preview_only=True, expect_no_changes=True).raise_for_errors()

    settled = project_engine(
        PROJECT, emulator, state, stack="emulator", **checksum, **{"adopt-existing:adopt": "false"}
    ).up()

    assert settled.ops() == {"db-1": "update"}
    assert reinstall_requests(emulator) == 1
    assert len(installs(emulator, SERVER)) == 1
