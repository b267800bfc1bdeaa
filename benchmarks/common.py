"""What every figure needs: the machine, real images, the emulator, API call counts, a figure's table."""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovh_emulator.images import build_image
from ovh_emulator.testing import RunningEmulator

ROOT = Path(__file__).resolve().parents[1]
# The program every CLI figure runs (`bench:shape`, `bench:servers`, `bench:shared` in its stack config).
PROGRAM = ROOT / "benchmarks" / "program"
EFI_DEBIAN = r"\efi\debian\grubx64.efi"
REINSTALL = "POST /1.0/dedicated/server/{serviceName}/reinstall"
POLLS = (
    "GET /1.0/dedicated/server/{serviceName}/task/{taskId}",
    "GET /1.0/dedicated/server/{serviceName}/install/status",
)


@dataclass
class Figure:
    """One figure of the report: a table, the goal, and whether this run met it."""

    number: int
    title: str
    goal: str
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    verdict: str = ""
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"## {self.number}. {self.title}", "", f"Goal: {self.goal}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
        lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in self.rows]
        lines += ["", f"**{self.verdict}**", ""]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def text(self) -> str:
        cells = [[str(c) for c in self.columns]] + [[_cell(v) for v in row] for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = [f"{self.number}. {self.title}", f"   goal: {self.goal}"]
        for row in cells:
            padded = (value.rjust(width) for value, width in zip(row, widths, strict=True))
            lines.append("   " + "  ".join(padded))
        lines.append(f"   => {self.verdict}")
        lines += [f"   - {note}" for note in self.notes]
        return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def machine() -> dict[str, str]:
    """What the figures depend on: CPU, memory, load, software versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            fields = dict(line.split(":", 1) for line in info)
        memory = f"{int(fields['MemTotal'].split()[0]) / 1024**2:.1f} GiB"
    except (OSError, KeyError, ValueError):
        pass
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "load": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "pulumi CLI": _cli_version(),
        "pulumi SDK": _version("pulumi"),
        "ovh": _version("ovh"),
        "commit": _commit(),
    }


REPORTS = (":(exclude)benchmarks/RESULTS.md", ":(exclude)benchmarks/peers.json", ":(exclude)README.md")


def _commit() -> str:
    """The code measured: its commit, "+ changes" when the work tree differs from it."""
    try:
        head = run_quietly(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"])
        # The reports a run rewrites are not the code it measures.
        changed = run_quietly(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", ".", *REPORTS]
        )
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" + changes" if changed.stdout.strip() else "")


def _cli_version() -> str:
    cli = Path(sys.prefix) / "bin" / "pulumi"
    done = run_quietly([str(cli), "version"]) if cli.exists() else None
    return done.stdout.strip() if done is not None and done.returncode == 0 else "?"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def images(folder: Path) -> dict[str, Path]:
    """A small qcow2 image (GPT, EFI system partition), built with real tools, and its sha512."""
    folder.mkdir(parents=True, exist_ok=True)
    small = folder / "small.qcow2"
    if not small.exists():
        build_image(small, fmt="qcow2", size_mib=4)
    return {"small.qcow2": small}


def sha512(path: Path) -> str:
    return hashlib.sha512(path.read_bytes()).hexdigest()


def server_names(count: int) -> list[str]:
    return [f"ns{1_000_000 + number}.emulator.ovh" for number in range(1, count + 1)]


SECRET_CONFIG = frozenset({"ovh:applicationSecret", "ovh:consumerKey"})


def provider_env(speed: float, folder: Path) -> dict[str, str]:
    return {"OVH_BYOI_TIME_SCALE": f"{speed:g}", "OVH_BYOI_JOURNAL": str(folder / "reinstalls.sqlite")}


def bench_stack(
    emulator: RunningEmulator,
    folder: Path,
    servers: Sequence[str],
    *,
    shape: str,
    shared: Mapping[str, Any],
    speed: float,
    env: Mapping[str, str] | None = None,
) -> Any:
    """A new stack of `benchmarks/program` run by the real Pulumi CLI (the test kit's `PulumiStack`): the
    `servers` as one ByoiFleet (`shape="fleet"`) or as plain ByoiInstallations (`"installations"`), the
    credentials set with `pulumi config set --secret`, the provider's clock at the emulator's `speed`;
    `env`: more environment for every command of the stack."""
    config = {"bench:servers": list(servers), "bench:shape": shape, "bench:shared": dict(shared)}
    return pulumi_stack_class().create(
        PROGRAM, folder, "bench", emulator=emulator, config=config, time_scale=speed, env=env
    )


def pulumi_stack_class() -> Any:
    """The test kit's `PulumiStack`, which runs the real CLI as the tests do (tests/ is not a package)."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from testkit.pulumi_cli import PulumiStack  # type: ignore[import-not-found]  # by path, above

    return PulumiStack


def api_calls(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Calls of OVH's API (not image downloads) between two readings of the emulator's statistics."""
    return {
        route: after[route] - before.get(route, 0)
        for route in after
        if "/1.0/" in route and after[route] - before.get(route, 0)
    }


def task_times(emulator: RunningEmulator) -> dict[int, tuple[float, float | None]]:
    """Each task's start and end as the emulator recorded them (epoch seconds, full precision).

    The API and the admin view give dates to the second, too coarse for a latency of a few emulated seconds
    at a compressed clock; the emulator's SQLite state has them exactly.
    """
    import sqlite3

    with sqlite3.connect(f"file:{emulator.state}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT task_id, start_date, done_date FROM tasks").fetchall()
    return {int(task_id): (float(start), done) for task_id, start, done in rows}


def descendants() -> dict[int, list[bytes]]:
    """The command lines of every process under this one (the CLI it started, the language host, the
    program, the providers), by process id."""
    parents: dict[int, int] = {}
    commands: dict[int, list[bytes]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                commands[int(entry)] = cmdline.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
    me = os.getpid()

    def descends(pid: int) -> bool:
        seen = set()
        while pid in parents and pid not in seen:
            seen.add(pid)
            pid = parents[pid]
            if pid == me:
                return True
        return False

    return {pid: command for pid, command in commands.items() if descends(pid)}


def is_provider(command: Sequence[bytes]) -> bool:
    """A `python -m pulumi.dynamic` server: the process a dynamic provider runs in."""
    return any(b"pulumi.dynamic" in part for part in command)


def resident_memory(pid: int) -> int:
    """A process's resident set (RSS, bytes): its shared pages counted in full, as `ps` and `top` show it."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


@dataclass
class ProviderWatch:
    """Peaks seen while a block runs: the number of provider processes, their summed resident memory, and
    that of every process under this one (CLI, language host, program, providers)."""

    peak_processes: int = 0
    peak_bytes: int = 0
    peak_tree_bytes: int = 0

    def sample(self) -> None:
        tree = descendants()
        memory = {pid: resident_memory(pid) for pid in tree}
        providers = [pid for pid, command in tree.items() if is_provider(command)]
        self.peak_processes = max(self.peak_processes, len(providers))
        self.peak_bytes = max(self.peak_bytes, sum(memory[pid] for pid in providers))
        self.peak_tree_bytes = max(self.peak_tree_bytes, sum(memory.values()))


@contextmanager
def watch_providers(every: float = 0.25) -> Iterator[ProviderWatch]:
    found = ProviderWatch()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            found.sample()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        stop.set()
        sampler.join()


def memory_available() -> int:
    with open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run_quietly(command: Sequence[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False, **options)


def now() -> float:
    return time.time()


# How close to its limit a figure must sit for one run not to tell which side it is on: such a figure is
# measured again, and its verdict stated only when both runs agree.
NEAR_LIMIT = 0.15


def near_limit(value: float, limit: float) -> bool:
    return abs(value - limit) <= NEAR_LIMIT * limit


def within_limit(values: Sequence[float], limit: float) -> bool | None:
    """True when every repetition is within `limit`, False when none is, None (not decided) otherwise."""
    sides = {value <= limit for value in values}
    return sides.pop() if len(sides) == 1 else None


def spread(values: Sequence[float], unit: str = "") -> str:
    """Repetitions as a reader compares them: `7.02 s` or `7.02 and 8.10 s`."""
    return " and ".join(f"{value:.2f}" for value in values) + unit
