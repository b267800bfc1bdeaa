"""How fast `ovh-byoi verify-image --full` hashes an image, next to `openssl dgst -sha512`, and its memory.

    .venv/bin/python benchmarks/preflight_bench.py [--size-mib 1024] [--runs 3] [--keep DIR]

Builds a raw image (GPT, EFI system partition, random data) and its qcow2 conversion with real tools, then
times, best of --runs with a warm page cache:
- `openssl dgst -sha512` on the raw file: the baseline, the fastest SHA-512 a user has at hand (the same
  library Python's hashlib uses); `sha512sum` (coreutils) beside it;
- `ovh-byoi verify-image --full --checksum ... --efi-path ...` on the local raw file, and over HTTP from the
  emulator's image folder (raw, and qcow2, which the check also spools to disk for qemu-img);
and prints each speed as a ratio to openssl's, and each run's peak memory (the child's max RSS).

Each command's wall time is a fixed cost (start-up: a Python interpreter and its imports, the input
checks, the EFI lookup; a few milliseconds for openssl) plus the time it takes per byte. Dividing the size by
the wall time mixes the two, and the fixed cost weighs more the smaller the image: at 256 MiB a third of a
second of Python start-up alone halves the ratio, however fast the hashing. So the local commands also run
on a second image, a quarter of the size, and "hash MiB/s" is the rate on the bytes between the two sizes,
(big - small) / (t_big - t_small), which cancels every side's fixed cost alike; "fixed s" is that cost.
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


def build_raw(path: Path, size_mib: int) -> Path:
    raw = build_image(path, size_mib=size_mib)
    # Random bytes over the root partition's half, so that nothing is a hole a reader could skip.
    with raw.open("r+b") as disk:
        disk.seek(size_mib * MIB // 2 + MIB)
        remaining = size_mib * MIB // 2 - 2 * MIB
        while remaining > 0:
            chunk = random_bytes(min(remaining, 16 * MIB))
            disk.write(chunk)
            remaining -= len(chunk)
    return raw


def build(folder: Path, size_mib: int) -> tuple[Path, Path, Path]:
    """The raw image, its qcow2 and a raw image a quarter of its size (the same layout)."""
    raw = build_raw(folder / "bench.raw", size_mib)
    build_raw(folder / "bench-small.raw", small_size(size_mib))
    qcow2 = folder / "bench.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)], check=True)
    return raw, qcow2, folder / "bench-small.raw"


def small_size(size_mib: int) -> int:
    return max(size_mib // 4, 16)


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


Row = tuple[str, float, int, int, str]  # label, seconds, peak bytes, bytes read, per-byte columns


def marginal(big: list[str], small: list[str], extra_bytes: int, runs: int) -> tuple[float, int, float]:
    """Seconds and peak of ``big``, and the rate (bytes/s) of the ``extra_bytes`` it reads over ``small``."""
    seconds, peak = best(big, runs)
    small_seconds, _ = best(small, runs)
    return seconds, peak, extra_bytes / max(seconds - small_seconds, 1e-9)


def local_rows(raw: Path, small: Path, sums: dict[Path, str], runs: int) -> list[Row]:
    size, extra = raw.stat().st_size, raw.stat().st_size - small.stat().st_size
    verify = [*COMMAND, "verify-image", "--full", "--efi-path", EFI, "--checksum"]
    commands = {
        "openssl dgst -sha512, local raw": (["openssl", "dgst", "-sha512"],) * 2,
        "sha512sum, local raw": (["sha512sum"],) * 2,
        # Each image with its own checksum: the check must pass on both.
        "verify-image --full, local raw": ([*verify, sums[raw]], [*verify, sums[small]]),
    }
    measured = {
        label: marginal([*big, str(raw)], [*small_command, str(small)], extra, runs)
        for label, (big, small_command) in commands.items()
    }
    baseline_rate = measured["openssl dgst -sha512, local raw"][2]
    rows: list[Row] = []
    for label, (seconds, peak, rate) in measured.items():
        fixed = seconds - size / rate
        hashing = f"{rate / MIB:>10.0f} {rate / baseline_rate:>15.2f}x {fixed:>8.2f}"
        rows.append((label, seconds, peak, size, hashing))
    return rows


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
        raw, qcow2, small = (folder / "bench.raw", folder / "bench.qcow2", folder / "bench-small.raw")
        if not (
            all(path.exists() for path in (raw, qcow2, small))
            and raw.stat().st_size == options.size_mib * MIB
            and small.stat().st_size == small_size(options.size_mib) * MIB
        ):
            print(f"building a {options.size_mib} MiB raw image and its qcow2 in {folder} ...", flush=True)
            raw, qcow2, small = build(folder, options.size_mib)
        # Reading every image here also leaves them all in the page cache for every command alike.
        sums = {
            path: hashlib.file_digest(path.open("rb"), "sha512").hexdigest() for path in (raw, qcow2, small)
        }
        rows = local_rows(raw, small, sums, options.runs)
        # The interpreter and imports, which every command pays before reading a byte.
        startup, startup_peak = best([*COMMAND, "--help"], options.runs)
        rows.insert(2, ("ovh-byoi --help (start-up only)", startup, startup_peak, 0, ""))
        verify = [*COMMAND, "verify-image", "--full", "--efi-path", EFI, "--checksum"]
        with start_emulator(images=folder) as emulator:
            for path, label in ((raw, "raw"), (qcow2, "qcow2")):
                command = [*verify, sums[path], "--type", label, emulator.image_url(path.name)]
                elapsed, peak = best(command, options.runs)
                rows.append((f"verify-image --full, HTTP {label}", elapsed, peak, path.stat().st_size, ""))
    print_table(rows, rows[0][1])


def print_table(rows: list[Row], baseline_seconds: float) -> None:
    size = rows[0][3]
    print(
        f"\n{'run':<36} {'seconds':>8} {'MiB/s':>8} {'vs openssl':>13} {'peak MiB':>9}"
        f" {'hash MiB/s':>10} {'hash vs openssl':>16} {'fixed s':>8}"
    )
    for label, seconds, peak, bytes_read, hashing in rows:
        if not bytes_read:
            print(f"{label:<36} {seconds:>8.2f} {'':>8} {'':>13} {peak / MIB:>9.1f}")
            continue
        rate = bytes_read / MIB / seconds
        ratio = (bytes_read / seconds) / (size / baseline_seconds)
        print(
            f"{label:<36} {seconds:>8.2f} {rate:>8.0f} {ratio:>12.2f}x {peak / MIB:>9.1f} {hashing}".rstrip()
        )


if __name__ == "__main__":
    main()
