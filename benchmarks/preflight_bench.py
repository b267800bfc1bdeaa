"""How fast `ovh-byoi verify-image --full` hashes an image, next to `openssl dgst -sha512`, and its memory.

    .venv/bin/python benchmarks/preflight_bench.py [--size-mib 1024] [--runs 3] [--keep DIR]

Builds a raw image (GPT, EFI system partition, random data) and its qcow2 conversion with real tools, then
times, best of --runs with a warm page cache:
- `openssl dgst -sha512` on the raw file: the baseline, the fastest SHA-512 a user has at hand (the same
  library Python's hashlib uses); `sha512sum` (coreutils) beside it;
- `ovh-byoi verify-image --full --checksum ... --efi-path ...` on the local raw file, and over HTTP from the
  emulator's image folder (raw, and qcow2, which the check also spools to disk for qemu-img);
and prints each speed as a ratio to openssl's, and each run's peak memory (the child's max RSS).
Not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from secrets import token_bytes as random_bytes

from ovh_emulator.images import build_image
from ovh_emulator.testing import start_emulator

MIB = 1024**2
EFI = r"\efi\debian\grubx64.efi"
COMMAND = [sys.executable, "-m", "ovh_byoi.cli"] if shutil.which("ovh-byoi") is None else ["ovh-byoi"]


def build(folder: Path, size_mib: int) -> tuple[Path, Path]:
    raw = build_image(folder / "bench.raw", size_mib=size_mib)
    # Random bytes over the root partition's half, so that nothing is a hole a reader could skip.
    with raw.open("r+b") as disk:
        disk.seek(size_mib * MIB // 2 + MIB)
        remaining = size_mib * MIB // 2 - 2 * MIB
        while remaining > 0:
            chunk = random_bytes(min(remaining, 16 * MIB))
            disk.write(chunk)
            remaining -= len(chunk)
    qcow2 = folder / "bench.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)], check=True)
    return raw, qcow2


def _peak_rss(pid: int) -> int | None:
    """The process's high-water resident memory so far (VmHWM), or None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def timed(command: list[str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in bytes and exit status of one run of `command`.

    The peak is polled from /proc rather than taken from wait4's rusage, which would also count the memory
    of this benchmark's own process, copied into the child before it executes the command.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        # The high-water mark only grows: the last reading before exit is the peak but for the final 10 ms.
        peak = max(peak, _peak_rss(process.pid) or 0)
        time.sleep(0.01)
    return time.perf_counter() - started, peak, process.returncode


def best(command: list[str], runs: int) -> tuple[float, int]:
    results = []
    for _ in range(runs):
        elapsed, peak, code = timed(command)
        if code != 0:
            raise SystemExit(f"{' '.join(command)} exited {code}")
        results.append((elapsed, peak))
    return min(result[0] for result in results), max(result[1] for result in results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the images in (and keep them in) this folder")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="preflight-bench-") as scratch:
        folder = options.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        raw, qcow2 = (folder / "bench.raw", folder / "bench.qcow2")
        if not (raw.exists() and qcow2.exists() and raw.stat().st_size == options.size_mib * MIB):
            print(f"building a {options.size_mib} MiB raw image and its qcow2 in {folder} ...", flush=True)
            raw, qcow2 = build(folder, options.size_mib)
        sums = {path: hashlib.file_digest(path.open("rb"), "sha512").hexdigest() for path in (raw, qcow2)}

        baseline, baseline_peak = best(["openssl", "dgst", "-sha512", str(raw)], options.runs)
        size = raw.stat().st_size
        rows = [("openssl dgst -sha512, local raw", baseline, baseline_peak, size)]
        coreutils, coreutils_peak = best(["sha512sum", str(raw)], options.runs)
        rows.append(("sha512sum, local raw", coreutils, coreutils_peak, size))
        # The interpreter and imports, which every command pays before reading a byte.
        startup, startup_peak = best([*COMMAND, "--help"], options.runs)
        rows.append(("ovh-byoi --help (start-up only)", startup, startup_peak, 0))
        verify = [*COMMAND, "verify-image", "--full", "--efi-path", EFI, "--checksum"]
        elapsed, peak = best([*verify, sums[raw], str(raw)], options.runs)
        rows.append(("verify-image --full, local raw", elapsed, peak, size))
        with start_emulator(images=folder) as emulator:
            for path, label in ((raw, "raw"), (qcow2, "qcow2")):
                command = [*verify, sums[path], "--type", label, emulator.image_url(path.name)]
                elapsed, peak = best(command, options.runs)
                rows.append((f"verify-image --full, HTTP {label}", elapsed, peak, path.stat().st_size))

    print(f"\n{'run':<36} {'seconds':>8} {'MiB/s':>8} {'vs openssl':>13} {'peak MiB':>9}")
    for label, seconds, peak, bytes_read in rows:
        if not bytes_read:
            print(f"{label:<36} {seconds:>8.2f} {'':>8} {'':>13} {peak / MIB:>9.1f}")
            continue
        rate = bytes_read / MIB / seconds
        ratio = (bytes_read / seconds) / (size / baseline)
        print(f"{label:<36} {seconds:>8.2f} {rate:>8.0f} {ratio:>12.2f}x {peak / MIB:>9.1f}")


if __name__ == "__main__":
    main()
