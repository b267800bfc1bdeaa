"""`scripts/demo`, run as a new user runs it: the three moments appear, and it leaves nothing behind."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

from .conftest import ROOT


def test_the_demo_installs_changes_nothing_the_second_time_reports_drift_and_cleans_up() -> None:
    # 600 times faster than OVH rather than the default 60: the same steps, in a few seconds.
    demo = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--speed", "600"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = demo.stdout

    assert demo.returncode == 0, output + demo.stderr
    assert "Traceback" not in output + demo.stderr, "a new user sees no traceback"
    assert "emulated at 600x" in output
    # verify-image catches both broken images before anything is erased.
    assert "no-table.raw: 1 problem" in output and "has no partition table" in output
    assert r"\efi\ubuntu\shimx64.efi is not in the image's EFI system partition" in output
    # 1. installed, with OVH's steps as they happen.
    assert re.search(r"\[ns1000001\.emulator\.ovh\] \d+/\d+ \w", output)
    assert re.search(r"\[ns1000001\.emulator\.ovh\] installed: OVH task \d+ done", output)
    # 2. the second run changes nothing.
    assert "No change: the second run asked OVH for no reinstall (2 reinstall requests in all)" in output
    # 3. the out-of-band reinstall is reported as drift, on that server only.
    drift = output.split("Drift reported", 1)[1]
    assert "ns1000002.emulator.ovh" in drift and "reinstalled outside this stack" in drift
    assert "ns1000001.emulator.ovh" not in drift.split("\n\n", 1)[0]
    # ... and once recorded, the preview shows that server, and only it, as a replacement.
    assert re.search(r"^ *\+- replace ns1000002\.emulator\.ovh", output, re.MULTILINE)
    assert "The preview shows ns1000002.emulator.ovh as a `+-` replacement" in output
    assert not re.search(r"^ *\+- replace ns1000001", output, re.MULTILINE)
    assert "ns1000003.emulator.ovh is not in the stack: it still runs debian12_64, 0 install(s)" in output

    # Cleaned up: the temporary folder is gone and the emulator no longer listens.
    work = re.search(r"removing (/\S+)\.$", output, re.MULTILINE)
    assert work is not None and not Path(work.group(1)).exists()
    port = re.search(r"OVH API emulator at http://127\.0\.0\.1:(\d+)/1\.0", output)
    assert port is not None
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(port.group(1)))) != 0
