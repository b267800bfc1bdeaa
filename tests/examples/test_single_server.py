"""examples/01-single-server with the Pulumi CLI: installed once, then left alone; a new image previews as a
replacement; no credential or user data in the state."""

from __future__ import annotations

from pathlib import Path

from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, installs, sha512, writes

from .conftest import EXAMPLES, assert_no_secret_in, documented_stack

PROJECT = EXAMPLES / "01-single-server"
SERVER = "ns1000001.emulator.ovh"


def test_the_single_server_example_installs_once_and_previews_a_new_image_as_a_replacement(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    checksum = {"single-server:imageChecksum": sha512(test_images["debian.qcow2"])}
    stack = documented_stack(PROJECT, emulator, tmp_path, "emulator", **checksum)

    first = stack.up()

    assert stack.outputs()["os"] == "byoi_64"
    [install] = installs(emulator, SERVER)
    assert (install["status"], install["imageURL"]) == ("done", emulator.image_url("debian.qcow2"))
    assert emulator.server(SERVER)["configDrive"]["hostname"] == "web-1"
    # Progress is named after the server, not the resource: that is what OVH's panel and the on-call know.
    assert f"[{SERVER}] installed: OVH task {install['taskId']} done" in first.output
    assert "[web-1] " not in first.output
    assert_no_secret_in(
        stack.raw_state(), emulator.application_secret, emulator.consumer_key, "Europe/Paris", "#cloud-config"
    )

    stack.up("--expect-no-changes")
    assert writes(emulator) == {REINSTALL: 1}

    stack.set_config({"single-server:imageChecksum": sha512(test_images["ubuntu.raw"])})
    new_image = stack.preview("--diff")

    assert "+-pulumi-python:dynamic/ovh_byoi:ByoiInstallation: (replace)" in new_image.output, new_image
    assert "~ image_checksum" in new_image.output
    assert "+-1 to replace" in new_image.output
    assert writes(emulator) == {REINSTALL: 1}
