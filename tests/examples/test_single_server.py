"""examples/01-single-server: installed once, then left alone; a new image previews as a replacement."""

from __future__ import annotations

from pathlib import Path

from ovh_emulator.testing import RunningEmulator

from .conftest import EXAMPLES, installs, project_engine, reinstall_requests, sha512

PROJECT = EXAMPLES / "01-single-server"
SERVER = "ns1000001.emulator.ovh"


def test_the_single_server_example_installs_once_and_previews_a_new_image_as_a_replacement(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    checksum = sha512(test_images["debian.qcow2"])
    engine = project_engine(
        PROJECT,
        emulator,
        tmp_path / "state.json",
        stack="emulator",
        **{"single-server:imageChecksum": checksum},
    )

    first = engine.up().raise_for_errors()

    assert first.ops() == {"web-1": "create"}
    assert first.stack_outputs["os"] == "byoi_64"
    [install] = installs(emulator, SERVER)
    assert (install["status"], install["imageURL"]) == ("done", emulator.image_url("debian.qcow2"))
    assert emulator.server(SERVER)["configDrive"]["hostname"] == "web-1"
    assert "[web-1] " not in first.printed() and f"[{SERVER}] installed" in first.printed()

    engine.up(expect_no_changes=True).raise_for_errors()
    assert reinstall_requests(emulator) == 1

    new_image = project_engine(
        PROJECT,
        emulator,
        tmp_path / "state.json",
        stack="emulator",
        **{"single-server:imageChecksum": sha512(test_images["ubuntu.raw"])},
    ).preview()

    assert new_image.step("web-1").op == "replace"
    assert new_image.step("web-1").replaces == ("image_checksum",)
    assert reinstall_requests(emulator) == 1
