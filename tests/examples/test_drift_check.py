"""examples/03-drift-check: the project applied with the Pulumi CLI, then its `drift-check` script's
verdicts, parsed from the real `pulumi refresh --preview-only --expect-no-changes --diff`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, writes
from testkit.pulumi_cli import PulumiStack

from .conftest import EXAMPLES, documented_stack

PROJECT = EXAMPLES / "03-drift-check"
DRIFTING = "ns1000002.emulator.ovh"


def drift_check(stack: PulumiStack) -> subprocess.CompletedProcess[str]:
    """`./drift-check emulator` in the project, with the CLI's environment a CI job would have (which
    includes PULUMI_SKIP_CONFIRMATIONS, a setting the CLI refuses with `--preview-only`)."""
    return subprocess.run(
        [str(stack.project / "drift-check"), stack.stack],
        cwd=stack.project,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_drift_check_passes_in_sync_fails_on_an_out_of_band_reinstall_and_tells_errors_apart(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    stack = documented_stack(PROJECT, emulator, tmp_path, "emulator")
    stack.up()

    in_sync = drift_check(stack)
    assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr
    assert "every server runs what the stack says" in in_sync.stdout

    task = emulator.reinstall_out_of_band(DRIFTING)
    emulator.wait_for_task(DRIFTING, task["taskId"])

    drifted = drift_check(stack)
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    verdict = drifted.stdout.split("drift-check: emulator: DRIFT", 1)[1]
    assert verdict.startswith(f"\n  {DRIFTING} was reinstalled outside this stack (OVH task {task['taskId']}")
    assert "ns1000001.emulator.ovh" not in verdict
    assert writes(emulator) == {REINSTALL: 2}, "the stack's two installs; the checks only read"

    # OVH out of reach is no drift: the job fails differently, so nobody reinstalls on a false alarm.
    emulator.stop()
    failed = drift_check(stack)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "the check could not run" in failed.stderr and "DRIFT" not in failed.stdout
