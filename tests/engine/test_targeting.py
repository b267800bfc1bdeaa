"""`pulumi up --replace` and `--target` with the real CLI: what they reinstall, and what they leave alone."""

from __future__ import annotations

from pathlib import Path

from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, installs, sha512, writes

from .conftest import WEB_1, WEB_2, demo_stack


def test_replace_reinstalls_its_server_exactly_once_and_target_touches_only_its_server(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    stack = demo_stack(emulator, test_images, tmp_path)
    stack.up()

    stack.up("--replace", stack.urn(WEB_1))

    assert [entry["status"] for entry in installs(emulator, WEB_1)] == ["done", "done"]
    assert len(installs(emulator, WEB_2)) == 1
    assert writes(emulator) == {REINSTALL: 3}

    # A new image for both servers, applied to one of them: the other keeps its image, and its `+-` waits.
    defaults = stack.config()["ovh-byoi:defaults"]
    defaults.update(
        image_url=emulator.image_url("debian.raw"),
        image_type="raw",
        image_checksum=sha512(test_images["debian.raw"]),
    )
    stack.set_config({"ovh-byoi:defaults": defaults})
    stack.up("--target", stack.urn(WEB_2))

    assert installs(emulator, WEB_2)[-1]["imageURL"] == emulator.image_url("debian.raw")
    assert len(installs(emulator, WEB_2)) == 2
    assert len(installs(emulator, WEB_1)) == 2
    pending = stack.preview()
    assert f"+- pulumi-python:dynamic/ovh_byoi:ByoiInstallation {WEB_1} replace" in pending.output, pending
    assert f"ByoiInstallation {WEB_2} replace" not in pending.output
