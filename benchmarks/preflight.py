"""Figure 5: the full preflight's hashing rate next to `openssl dgst -sha512` on the same file, and its peak
memory.

Runs `benchmarks/preflight_bench.py` as it is (it builds a raw image and its qcow2 with real tools, and
times `openssl dgst -sha512`, `sha512sum` and `ovh-byoi verify-image --full`, best of --runs) and reads its
table. The goal is about the hashing rate: each command's rate on the bytes beyond a quarter-size image,
which leaves out every command's fixed cost (Python's start-up, the input checks, the EFI lookup); the
end-to-end ratio, start-up included, is shown beside it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from .common import ROOT, Figure, run_quietly

_ROW = re.compile(
    r"^(?P<label>\S.*?)\s+(?P<seconds>\d+\.\d+)\s+(?:(?P<rate>\d+)\s+(?P<ratio>\d+\.\d+)x\s+)?(?P<peak>\d+\.\d+)"
    r"(?:\s+(?P<hash_rate>\d+)\s+(?P<hash_ratio>\d+\.\d+)x\s+(?P<fixed>-?\d+\.\d+))?$"
)


def figure(*, size_mib: int = 1024, runs: int = 3) -> Figure:
    fig = Figure(
        5,
        f"Full preflight on a {size_mib} MiB image",
        "verify-image --full hashes a local raw image at >= 0.95x `openssl dgst -sha512`'s rate, memory flat",
        ["run", "seconds", "MiB/s", "vs openssl", "peak MiB", "hash MiB/s", "hash vs openssl", "fixed s"],
    )
    command = [sys.executable, str(ROOT / "benchmarks" / "preflight_bench.py")]
    # preflight_bench.py times the `ovh-byoi` command found on PATH: the one installed next to this Python.
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}
    completed = run_quietly([*command, "--size-mib", str(size_mib), "--runs", str(runs)], cwd=ROOT, env=env)
    if completed.returncode != 0:
        fig.verdict = f"not measured: preflight_bench.py exited {completed.returncode}"
        fig.notes.append(completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "")
        return fig
    for line in completed.stdout.splitlines():
        match = _ROW.match(line.strip())
        if match is None or match["label"] == "run":
            continue
        ratio = f"{float(match['ratio']):.2f}x" if match["ratio"] else ""
        hash_ratio = f"{float(match['hash_ratio']):.2f}x" if match["hash_ratio"] else ""
        fig.rows.append(
            [
                match["label"],
                float(match["seconds"]),
                match["rate"] or "",
                ratio,
                match["peak"],
                match["hash_rate"] or "",
                hash_ratio,
                match["fixed"] or "",
            ]
        )
    local = next((row for row in fig.rows if row[0] == "verify-image --full, local raw"), None)
    if local is None:
        fig.verdict = "not measured: no row for the local raw image"
    else:
        met = float(str(local[6]).rstrip("x")) >= 0.95
        fig.verdict = (
            f"goal {'met' if met else 'missed'}: verify-image --full hashes a local raw image at {local[6]} "
            f"openssl's rate ({local[3]} end to end, with its fixed {local[7]} s of start-up and checks), "
            f"peaking at {local[4]} MiB"
        )
    fig.notes.append(f"From `{' '.join(['benchmarks/preflight_bench.py', '--size-mib', str(size_mib)])}`.")
    return fig
