"""Drift checks with the real CLI: `pulumi refresh --preview-only --expect-no-changes`, then the repair."""

from __future__ import annotations

from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, installs, writes
from testkit.pulumi_cli import PulumiStack

from .conftest import WEB_1, WEB_2, installed

DRIFT_CHECK = ("--preview-only", "--expect-no-changes", "--diff")
# `--expect-no-changes` exits 7 on changes (CLI 3.227 and later), any other failure otherwise.
CHANGES_PROPOSED = 7


def test_an_out_of_band_reinstall_fails_the_drift_check_with_its_reason_and_up_repairs_only_that_server(
    emulator: RunningEmulator, deployed_demo: PulumiStack
) -> None:
    stack = deployed_demo
    task = emulator.reinstall_out_of_band(WEB_2)
    emulator.wait_for_task(WEB_2, task["taskId"])

    check = stack.refresh(*DRIFT_CHECK, expect=CHANGES_PROPOSED)

    assert "no changes were expected for refresh but changes were proposed" in check.output
    assert (
        f'+ drift                 : "{WEB_2} was reinstalled outside this stack (OVH task {task["taskId"]}'
        in (check.output)
    ), check
    assert f'drift                 : "{WEB_1}' not in check.output
    assert installed(stack)[WEB_2]["drift"] == "", "--preview-only records nothing"

    stack.refresh()
    review = stack.preview()

    assert f"+- pulumi-python:dynamic/ovh_byoi:ByoiInstallation {WEB_2} replace" in review.output, review
    assert f"ByoiInstallation {WEB_1} replace" not in review.output
    stack.up()
    assert [entry["outOfBand"] for entry in installs(emulator, WEB_2)] == [False, True, False]
    assert len(installs(emulator, WEB_1)) == 1
    assert writes(emulator) == {REINSTALL: 3}
    stack.refresh(*DRIFT_CHECK)


def test_the_drift_check_reads_with_the_config_of_the_last_up_and_a_config_edit_alone_never_fails_it(
    emulator: RunningEmulator, deployed_demo: PulumiStack
) -> None:
    stack = deployed_demo

    # An edit that changes no server: a key nobody reads, and a default every server overrides.
    defaults = stack.config()["ovh-byoi:defaults"]
    stack.set_config({"ovh-byoi:owner": "team-a", "ovh-byoi:defaults": {**defaults, "hostname": "unused"}})
    stack.preview("--expect-no-changes")
    stack.refresh(*DRIFT_CHECK)

    # Credentials rotated in the config: the drift check goes on reading with those of the last `up`...
    stack.set_secrets({"ovh:consumerKey": "rotated-but-not-yet-valid"})
    stack.refresh(*DRIFT_CHECK)
    # ... until an `up`, which changes no server but stores them; then it reads with them.
    stack.up("--expect-no-changes")
    rotated = stack.refresh(*DRIFT_CHECK, expect=None)

    assert rotated.returncode not in (0, CHANGES_PROPOSED), rotated
    assert "OVH refused to read the server" in rotated.output and "INVALID_CREDENTIAL" in rotated.output
    assert writes(emulator) == {REINSTALL: 2}
