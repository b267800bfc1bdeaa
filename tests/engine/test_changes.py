"""`pulumi up`, `pulumi preview --diff` and what each change does to a server, with the real CLI."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, installs, sha512, writes
from testkit.pulumi_cli import PulumiStack, revealed

from .conftest import WEB_1, WEB_2, demo_stack, installed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def read_until_all(process: subprocess.Popen[str], texts: list[str]) -> str:
    """What `process` printed until every one of `texts` was on a line, in any order."""
    assert process.stdout is not None
    pending, lines = set(texts), []
    for line in process.stdout:
        lines.append(line)
        pending -= {text for text in pending if text in line}
        if not pending:
            return "".join(lines)
    raise AssertionError(f"the command ended without printing {sorted(pending)}:\n{''.join(lines)}")


def test_up_installs_each_server_once_with_its_progress_and_a_second_up_sends_ovh_no_write(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    stack = demo_stack(emulator, test_images, tmp_path)

    # Each install waits at its write until its progress line is out: the line is shown however sparsely a
    # loaded machine lets the provider poll.
    writing = "Writing OS image on disk"
    emulator.set_faults(
        {"rules": [{"holdAtStep": writing, "serviceName": server, "times": 1} for server in (WEB_1, WEB_2)]}
    )
    process = stack.start("up", "--yes")
    printed = read_until_all(process, [f"[{server}] 10/21 {writing}" for server in (WEB_1, WEB_2)])
    emulator.release()
    rest, _ = process.communicate(timeout=240)
    first = printed + rest
    assert process.returncode == 0, first

    for server in (WEB_1, WEB_2):
        [install] = installs(emulator, server)
        assert install["status"] == "done"
        assert installed(stack)[server]["task_id"] == install["taskId"]
        assert installed(stack)[server]["os"] == "byoi_64"
        # Two installs run at once: each progress line says which server it is about.
        assert re.search(rf"^.*\[{re.escape(server)}\] \d+/\d+ Writing OS image on disk$", first, re.M)
        assert f"[{server}] installed: OVH task {install['taskId']} done" in first
    assert writes(emulator) == {REINSTALL: 2}

    second = stack.run("up", "--yes", "--expect-no-changes")

    assert "3 unchanged" in second.output, second
    assert writes(emulator) == {REINSTALL: 2}
    stack.preview("--expect-no-changes")


def test_a_moved_image_is_an_update_and_a_new_image_a_replacement_of_that_server_only(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    stack = demo_stack(emulator, test_images, tmp_path)
    stack.up()
    defaults = stack.config()["ovh-byoi:defaults"]

    # The same bytes elsewhere (a mirror): recorded, no server touched.
    moved = emulator.image_url("debian.qcow2") + "?mirror=2"
    stack.set_config({"ovh-byoi:defaults": {**defaults, "image_url": moved}})
    review = stack.preview("--diff")

    assert review.output.count("~ pulumi-python:dynamic/ovh_byoi:ByoiInstallation: (update)") == 2, review
    assert "~ 2 to update" in review.output and "+-" not in review.output
    stack.up()
    # A URL with a query string may carry a token: the state keeps it as a secret.
    assert {revealed(outputs["image_url"]) for outputs in installed(stack).values()} == {moved}
    assert writes(emulator) == {REINSTALL: 2}

    # A new image for one server: its line is a `+-` naming the checksum, and only it is reinstalled.
    servers = stack.config()["ovh-byoi:servers"]
    servers[WEB_2].update(
        image_url=emulator.image_url("debian.raw"),
        image_type="raw",
        image_checksum=sha512(test_images["debian.raw"]),
    )
    stack.set_config({"ovh-byoi:servers": servers})
    review = stack.preview("--diff")

    replaced = review.output.split("+-pulumi-python:dynamic/ovh_byoi:ByoiInstallation: (replace)")
    assert len(replaced) == 2, review
    assert f"ByoiInstallation::{WEB_2}]" in replaced[1].split("\n", 3)[2]
    assert re.search(r"^ +~ image_checksum +: ", replaced[1], re.M)
    assert "+-1 to replace" in review.output
    stack.up()
    assert [entry["imageURL"] for entry in installs(emulator, WEB_2)] == [
        emulator.image_url("debian.qcow2"),
        emulator.image_url("debian.raw"),
    ]
    assert len(installs(emulator, WEB_1)) == 1
    assert writes(emulator) == {REINSTALL: 3}


def test_a_failed_check_stops_pulumi_up_before_any_install(emulator: RunningEmulator, tmp_path: Path) -> None:
    # One good server and one that fails the resource's check: the whole `pulumi up` stops at its preview.
    servers = [WEB_1, "ns1000002_emulator"]
    stack = PulumiStack.create(
        EXAMPLES / "03-drift-check",
        tmp_path,
        "emulator",
        emulator=emulator,
        config={"drift-check:serviceNames": servers},
    )

    refused = stack.run("up", "--yes", expect=None)

    assert refused.returncode != 0
    assert "ns1000002_emulator" in refused.output and "service_name" in refused.output, refused
    assert writes(emulator) == {}
    assert installs(emulator, WEB_1) == []
    assert stack.resources() == {}
