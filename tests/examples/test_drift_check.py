"""examples/03-drift-check: the project applied by the local engine, then its drift-check's verdicts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ovh_emulator.testing import RunningEmulator

from .conftest import EXAMPLES, REINSTALL, project_engine, provider_env, writes

PROJECT = EXAMPLES / "03-drift-check"
DRIFTING = "ns1000002.emulator.ovh"


def drift_check(emulator: RunningEmulator, state: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`./drift-check emulator`, with the stand-in for the Pulumi CLI first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    pulumi = bin_dir / "pulumi"
    pulumi.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).with_name("pulumi_stand_in.py")}" "$@"\n'
    )
    pulumi.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STAND_IN_BASE_URL": emulator.base_url,
        "STAND_IN_STATE": str(state),
        **provider_env(state.parent),
    }
    return subprocess.run(
        [str(PROJECT / "drift-check"), "emulator", str(PROJECT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_drift_check_passes_in_sync_fails_on_an_out_of_band_reinstall_and_tells_errors_apart(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    project_engine(PROJECT, emulator, state, stack="emulator").up().raise_for_errors()

    in_sync = drift_check(emulator, state, tmp_path)
    assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr
    assert "every server runs what the stack says" in in_sync.stdout

    task = emulator.reinstall_out_of_band(DRIFTING)
    emulator.wait_for_task(DRIFTING, task["taskId"])

    drifted = drift_check(emulator, state, tmp_path)
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    verdict = drifted.stdout.split("drift-check: emulator: DRIFT", 1)[1]
    assert f"{DRIFTING} was reinstalled outside this stack (OVH task {task['taskId']}" in verdict
    assert "ns1000001.emulator.ovh" not in verdict
    assert writes(emulator) == {REINSTALL: 2}, "the stack's two installs; the checks only read"

    # OVH out of reach is no drift: the job fails differently, so nobody reinstalls on a false alarm.
    emulator.stop()
    failed = drift_check(emulator, state, tmp_path)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "the check could not run" in failed.stderr and "DRIFT" not in failed.stdout
