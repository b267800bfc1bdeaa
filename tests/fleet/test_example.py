"""examples/04-fleet, run by the real Pulumi CLI as its README says, against a fresh emulator."""

from __future__ import annotations

from pathlib import Path

from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, sha512, writes
from testkit.pulumi_cli import PulumiStack

from .conftest import Timeline, server_names

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "04-fleet"


def test_the_fleet_example_rolls_the_image_out_canary_first_then_two_at_a_time(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    s1, s2, s3, s4 = server_names(4)
    checksum = {"fleet:imageChecksum": sha512(test_images["debian.qcow2"])}
    # The credentials go in with `pulumi config set --secret`, as the example's stack file says.
    stack = PulumiStack.create(PROJECT, tmp_path, "emulator", emulator=emulator, config=checksum)

    stack.up()

    outputs = stack.outputs()
    assert outputs["batches"] == [[s1], [s2, s3], [s4]]
    timeline = Timeline(emulator)
    timeline.assert_in_order(outputs["batches"])
    assert emulator.server(s3)["configDrive"]["hostname"] == "web-3"
    assert outputs["task_ids"] == {i.service_name: i.task_id for i in timeline.installs}

    stack.preview("--expect-no-changes")
    stack.up("--expect-no-changes")
    assert writes(emulator) == {REINSTALL: 4}
    state = stack.raw_state()
    assert emulator.application_secret not in state and emulator.consumer_key not in state


def test_the_example_stack_file_holds_no_secret_in_plain_text() -> None:
    stack_file = (PROJECT / "Pulumi.emulator.yaml").read_text()

    assert "ovh:applicationSecret:" not in stack_file
    assert "ovh:consumerKey:" not in stack_file
    assert "pulumi config set --secret ovh:applicationSecret" in stack_file
