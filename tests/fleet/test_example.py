"""examples/04-fleet, run as a user runs it (its Pulumi.yaml and emulator stack) against a fresh emulator."""

from __future__ import annotations

from pathlib import Path

from ovh_byoi_harness.demo import retarget, stack_config
from ovh_byoi_harness.engine import LocalEngine
from ovh_emulator.testing import RunningEmulator

from .conftest import REINSTALL, Timeline, provider_env, server_names, sha512, writes

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "04-fleet"
STACK = "emulator"


def example(emulator: RunningEmulator, folder: Path, **overrides: str) -> LocalEngine:
    config = retarget(stack_config(PROJECT, STACK), emulator.base_url)
    config.update(overrides)
    return LocalEngine.for_project(
        PROJECT, folder / "state.json", stack=STACK, config=config, env=provider_env(folder), passphrase="x"
    )


def test_the_fleet_example_rolls_the_image_out_canary_first_then_two_at_a_time(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    s1, s2, s3, s4 = server_names(4)
    checksum = {"fleet:imageChecksum": sha512(test_images["debian.qcow2"])}

    first = example(emulator, tmp_path, **checksum).up().raise_for_errors()

    assert first.stack_outputs["batches"] == [[s1], [s2, s3], [s4]]
    timeline = Timeline(emulator)
    timeline.assert_in_order(first.stack_outputs["batches"])
    assert emulator.server(s3)["configDrive"]["hostname"] == "web-3"
    assert first.stack_outputs["task_ids"] == {i.service_name: i.task_id for i in timeline.installs}

    example(emulator, tmp_path, **checksum).up(expect_no_changes=True).raise_for_errors()
    assert writes(emulator) == {REINSTALL: 4}
