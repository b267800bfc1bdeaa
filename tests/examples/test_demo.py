"""`scripts/demo`, run as a new user runs it: the real `pulumi up` and the three moments, and it leaves
nothing behind."""

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
    # The real CLI runs the stack, the credentials set as secrets, never as plain config.
    assert re.search(r"^Pulumi CLI v3\.\d+\.\d+, a local backend in ", output, re.MULTILINE)
    assert "$ pulumi config set --secret ovh:applicationSecret " in output
    assert "$ pulumi config set --secret ovh:consumerKey " in output
    assert "$ pulumi up --yes\n" in output
    # 1. installed, with OVH's steps as they happen, shown by `pulumi up`.
    assert re.search(r"\[ns1000001\.emulator\.ovh\] \d+/\d+ \w", output)
    assert re.search(r"\[ns1000001\.emulator\.ovh\] installed: OVH task \d+ done", output)
    assert re.search(r"^\s+\+ 3 created$", output, re.MULTILINE)
    # 2. the second run changes nothing.
    assert "No change: the second run asked OVH for no reinstall (2 reinstall requests in all)" in output
    # 3. the out-of-band reinstall is reported as drift by the drift check, on that server only.
    assert "$ pulumi refresh --preview-only --expect-no-changes --diff" in output
    assert "error: no changes were expected for refresh but changes were proposed" in output
    drift = output.split("Drift reported", 1)[1].split("\n\n", 1)[0]
    # Done or still running when the check reads it, depending on the machine's pace.
    assert re.search(r"ns1000002\.emulator\.ovh (was|is being) reinstalled outside this stack \(OVH", drift)
    assert "ns1000001.emulator.ovh" not in drift
    # ... and once recorded, the preview shows that server, and only it, as a replacement.
    replaced = re.findall(r"^\s*\+-\s+\S+ (\S+) replace\s*$", output, re.MULTILINE)
    assert replaced == ["ns1000002.emulator.ovh"]
    assert "The preview shows ns1000002.emulator.ovh as a `+-` replacement" in output
    assert "ns1000003.emulator.ovh is not in the stack: it still runs debian12_64, 0 install(s)" in output
    assert re.search(r"^Demo done in \d+ s\.$", output, re.MULTILINE)

    # Cleaned up: the temporary folder is gone and the emulator no longer listens.
    work = re.search(r"removing (/\S+)\.$", output, re.MULTILINE)
    assert work is not None and not Path(work.group(1)).exists()
    port = re.search(r"OVH API emulator at http://127\.0\.0\.1:(\d+)/1\.0", output)
    assert port is not None
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(port.group(1)))) != 0
