"""Figure 7: side by side with the peers, on the same emulator, servers and images.

OVH's Terraform provider (`ovh_dedicated_server_reinstall_task`, built by `scripts/get-ovh-clients`) under
OpenTofu, at its default parallelism (10) and at `-parallelism=64`, and our `ByoiInstallation` under the real
Pulumi CLI (`pulumi up --parallel N`, N at least the count), and pulumi-ovh
(`ovh.dedicated.ServerReinstallTask`, OVH's bridged Pulumi provider, built by the same script from a clone of
its repository: benchmarks/peers_pulumi_ovh.py) under the same CLI at the same parallelism. A peer that is not
built is named in the notes and not run.

Fairness of the clocks. The emulator compresses OVH's time (`--speed`) and our provider waits in step with it
(`OVH_BYOI_TIME_SCALE`), but Terraform's task wait (`StateChangeConf`: 10 s before the first read, then 3 s
doubling up to 10 s; pulumi-ovh runs the same code, from the Terraform provider it wraps) is in real seconds
whatever the emulator's speed. The installs therefore run at a speed where one install lasts about a minute of
real time (10: OVH's 615-second plan in 62 s), long enough for Terraform's schedule to reach its steady
10-second reads. Latencies (task done in OVH -> the tool's create returns: `apply_complete` of `tofu apply
-json`; the resource's `created` in Pulumi's state) are given in real seconds, and "at OVH's pace": ours
multiplied by the speed (its waits are compressed), the peers' as measured (their waits are not). Requests per
install are counted by the emulator; the peers' also "at OVH's pace": their steady 10-second reads over the
part of the install the compression took away. Wall times are real seconds at that speed. The behaviour
scenarios run faster (`scenario_speed`): only what each tool does and says counts.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovh_emulator.images import build_image
from ovh_emulator.testing import RunningEmulator, start_emulator

from . import peers_pulumi_ovh, peers_tofu
from .common import (
    EFI_DEBIAN,
    REINSTALL,
    Figure,
    api_calls,
    bench_stack,
    images,
    median,
    server_names,
    sha512,
    task_times,
)
from .detection import PLANNED_SECONDS
from .peers_pulumi_ovh import pulumi_ovh_missing
from .peers_tofu import Said, Tofu, epoch, terraform_missing

TERRAFORM_STEADY_WAIT = 10.0  # StateChangeConf's longest wait between two task reads, real seconds
TERRAFORM = "OpenTofu + terraform-provider-ovh"
PULUMI_OVH = f"pulumi-ovh {peers_pulumi_ovh.VERSION} under pulumi"
OURS = "ovh-byoi under pulumi"
# Their waits are Terraform's StateChangeConf, in real seconds whatever the emulator's speed.
REAL_SECOND_WAITS = (TERRAFORM, PULUMI_OVH)


@dataclass
class Sized:
    """One run of `count` installs at once: wall time, requests per install, latencies (real seconds)."""

    count: int
    wall: float
    requests: float
    polls: float
    latencies: list[float]
    lengths: list[float]  # each install's real length


def image_inputs(emulator: RunningEmulator, image: Path, name: str | None = None) -> dict[str, str]:
    return {
        "url": emulator.image_url(name or image.name),
        "type": "raw" if image.suffix == ".raw" else "qcow2",
        "checksum": sha512(image),
        "efi": EFI_DEBIAN,
    }


def pulumi_shared(inputs: dict[str, str]) -> dict[str, Any]:
    return {
        "image_url": inputs["url"],
        "image_type": inputs["type"],
        "image_checksum": inputs["checksum"],
        "efi_bootloader_path": inputs["efi"],
        "preflight": "off",
    }


def _pulumi_image_config(tool: str, inputs: dict[str, str]) -> dict[str, Any]:
    """The stack config that gives a Pulumi tool's program the image."""
    if tool == PULUMI_OVH:
        return {"bench:image": inputs}
    return {"bench:shared": pulumi_shared(inputs)}


def _pulumi_stack(
    tool: str,
    emulator: RunningEmulator,
    folder: Path,
    servers: list[str],
    inputs: dict[str, str],
    speed: float,
) -> Any:
    """A new stack of `servers` for a tool that runs under the Pulumi CLI: pulumi-ovh's or ours."""
    if tool == PULUMI_OVH:
        return peers_pulumi_ovh.stack(emulator, folder, servers, inputs)
    shared = pulumi_shared(inputs)
    return bench_stack(emulator, folder, servers, shape="installations", shared=shared, speed=speed)


def run_sized(tool: str, count: int, *, parallelism: int, speed: float, work: Path) -> Sized:
    """`count` servers installed at once by one apply / up, on a fresh emulator."""
    image = images(work / "images")["small.qcow2"]
    servers = server_names(count)
    folder = Path(tempfile.mkdtemp(dir=work))
    with start_emulator(servers=count, speed=speed, images=image.parent) as emulator:
        inputs = image_inputs(emulator, image)
        if tool == TERRAFORM:
            tofu = Tofu.project(folder / "tofu", emulator, servers, inputs)
            tofu.run("init")
            before, started = emulator.stats(), time.time()
            said = tofu.apply("-json", f"-parallelism={parallelism}")
            ended = time.time()
            assert said.exit == 0, said.last_lines(emulator, 10)
            returned = {}
            for line in said.output.splitlines():
                event = json.loads(line) if line.startswith("{") else {}
                if event.get("type") == "apply_complete":
                    returned[event["hook"]["resource"]["resource_key"]] = epoch(event["@timestamp"])
        else:
            stack = _pulumi_stack(tool, emulator, folder, servers, inputs, speed)
            before, started = emulator.stats(), time.time()
            stack.up("--parallel", str(parallelism))
            ended = time.time()
            created = stack.checkpoint()
            returned = {name: epoch(created[f"web-{name}"]["created"]) for name in servers}
        calls = api_calls(before, emulator.stats())
        times = task_times(emulator)
        tasks = {name: int(emulator.server(name)["installs"][-1]["taskId"]) for name in servers}
    latencies = [returned[name] - times[tasks[name]][1] for name in servers]  # type: ignore[operator]
    lengths = [times[tasks[name]][1] - times[tasks[name]][0] for name in servers]  # type: ignore[operator]
    polls = calls.get("GET /1.0/dedicated/server/{serviceName}/task/{taskId}", 0)
    polls += calls.get("GET /1.0/dedicated/server/{serviceName}/install/status", 0)
    return Sized(count, ended - started, sum(calls.values()) / count, polls / count, latencies, lengths)


SCENARIOS = {
    "customerError": "the task ends in customerError (an image with no partition table, declared raw)",
    "bursts": "a 429 on the reinstall POST, then a 500 and a 503 on the task reads",
    "dropped answer": "the reinstall is performed but its HTTP answer is dropped",
    "image moved": "the image URL moves, same checksum: the next apply / up",
    "out-of-band": "the server is reinstalled from OVH's control panel: plan / preview --refresh",
}
FAULTS = {
    "bursts": [
        {"route": REINSTALL, "status": 429, "times": 1},
        {"route": "GET /1.0/dedicated/server/{serviceName}/task/{taskId}", "status": 500, "times": 1},
        {"route": "GET /1.0/dedicated/server/{serviceName}/task/{taskId}", "status": 503, "times": 1},
    ],
    "dropped answer": [{"route": REINSTALL, "dropAnswer": True, "times": 1}],
}


class Driver:
    """One tool on one server of one emulator, as the scenarios drive it."""

    def __init__(
        self, tool: str, emulator: RunningEmulator, server: str, image: Path, folder: Path, speed: float
    ):
        self.tool, self.emulator, self.server = tool, emulator, server
        self.inputs = image_inputs(emulator, image)
        if tool == TERRAFORM:
            self.tofu = Tofu.project(folder / "tofu", emulator, [server], self.inputs)
            self.tofu.run("init")
        else:
            self.stack = _pulumi_stack(tool, emulator, folder, [server], self.inputs, speed)

    def install(self, inputs: dict[str, str] | None = None) -> Said:
        if inputs is not None:
            self.inputs = inputs
        if self.tool == TERRAFORM:
            self.tofu.configure([self.server], self.inputs)
            return self.tofu.apply()
        self.stack.set_config(_pulumi_image_config(self.tool, self.inputs))
        run = self.stack.up("--parallel", "4", expect=None)
        return Said(run.returncode, run.output)

    def check_drift(self) -> Said:
        if self.tool == TERRAFORM:
            return self.tofu.run("plan", "-detailed-exitcode")
        run = self.stack.preview("--refresh", "--diff", expect=None)
        return Said(run.returncode, run.output)

    def installs(self) -> int:
        return len(self.emulator.server(self.server)["installs"])


def scenario(tool: str, name: str, *, speed: float, work: Path) -> list[Any]:
    """One row of the behaviour table: scenario, tool, exit status, installs performed, what it said."""
    image = images(work / "images")["small.qcow2"]
    broken = work / "images" / "no-table.raw"
    if not broken.exists():
        build_image(broken, partition_table=False, size_mib=4)
    folder = Path(tempfile.mkdtemp(dir=work))
    with start_emulator(servers=1, speed=speed, images=image.parent) as emulator:
        server = server_names(1)[0]
        driver = Driver(tool, emulator, server, broken if name == "customerError" else image, folder, speed)
        emulator.set_faults({"rules": FAULTS.get(name, [])})
        said = driver.install()
        if name == "image moved":
            shutil.copy(image, image.parent / "moved.qcow2")
            said = driver.install(image_inputs(emulator, image, "moved.qcow2"))
        elif name == "out-of-band":
            task = emulator.reinstall_out_of_band(server)
            emulator.wait_for_task(server, int(task["taskId"]), timeout=600)
            said = driver.check_drift()
        for entry in emulator.server(server)["installs"]:  # a reinstall the tool gave up on still runs
            emulator.wait_for_task(server, int(entry["taskId"]), timeout=600)
        installs = driver.installs()
        statuses = ", ".join(i["status"] for i in emulator.server(server)["installs"])
        return [name, tool, said.exit, f"{installs} ({statuses})", said.last_lines(emulator)]


class PeersFigure(Figure):
    """The performance table, then the behaviour table (one row per scenario and tool)."""

    behaviour: list[list[Any]]
    BEHAVIOUR_COLUMNS = ("scenario", "tool", "exit", "installs (statuses)", "last lines it wrote")

    def markdown(self) -> str:
        lines = [super().markdown(), "| " + " | ".join(self.BEHAVIOUR_COLUMNS) + " |"]
        lines.append("|" + "|".join(" --- " for _ in self.BEHAVIOUR_COLUMNS) + "|")
        lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in self.behaviour]
        lines += [""] + [f"- {name}: {what}" for name, what in SCENARIOS.items()]
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        lines = [super().text(), "   behaviour:"]
        lines += ["   " + "  ".join(str(v) for v in row) for row in self.behaviour]
        return "\n".join(lines)


def _performance(
    tool: str, label: str, parallelism: int | None, sizes: tuple[int, ...], speed: float, work: Path
) -> dict[str, Any]:
    runs = [
        run_sized(tool, size, parallelism=parallelism or max(64, 2 * size), speed=speed, work=work)
        for size in sizes
    ]
    largest = runs[-1]
    latency = median(largest.latencies)
    ovh_length = median(largest.lengths) * speed
    requests = largest.requests
    # Terraform's reads keep their real 10-second pace whatever the compression; ours follow OVH's clock.
    pace = 1.0 if tool in REAL_SECOND_WAITS else speed
    if tool in REAL_SECOND_WAITS:
        at_ovh_pace = requests + (ovh_length - median(largest.lengths)) / TERRAFORM_STEADY_WAIT
    else:
        at_ovh_pace = requests
    latency_ovh = latency * pace
    return {
        "tool": label,
        "requests_per_install": round(requests, 1),
        "requests_per_install_at_ovh_pace": round(at_ovh_pace, 1),
        "task_reads_per_install": round(largest.polls, 1),
        "task_reads_per_install_at_ovh_pace": round(largest.polls + at_ovh_pace - requests, 1),
        "latency_median_real_s": round(latency, 2),
        "latency_median_at_ovh_pace_s": round(latency_ovh, 1),
        "latency_median_at_ovh_pace_s_by_size": {
            str(run.count): round(median(run.latencies) * pace, 1) for run in runs
        },
        "wall_s": {str(run.count): round(run.wall, 1) for run in runs},
    }


def figure(
    *,
    speed: float = 10.0,
    scenario_speed: float = 60.0,
    sizes: tuple[int, ...] = (1, 8, 64),
    json_path: Path | None = None,
) -> Figure:
    fig = PeersFigure(
        7,
        "Side by side with the peers",
        "fewer requests per install and a shorter completion latency than OVH's Terraform provider and "
        "pulumi-ovh, on the same installs",
        ["tool", "requests / install", "at OVH's pace"]
        + [f"latency {size} at OVH's pace (s)" for size in sizes]
        + [f"wall {size} (s)" for size in sizes],
    )
    fig.behaviour = []
    # Each peer, and why it cannot run here (None: it runs).
    unavailable = {TERRAFORM: terraform_missing(), PULUMI_OVH: pulumi_ovh_missing()}
    tools = [tool for tool, reason in unavailable.items() if reason is None] + [OURS]
    configurations: list[tuple[str, str, int | None]] = [
        (tool, f"{tool} (--parallel >= count)", None) for tool in tools if tool != TERRAFORM
    ]
    if TERRAFORM in tools:
        configurations = [
            (TERRAFORM, f"{TERRAFORM} (default parallelism, 10)", 10),
            (TERRAFORM, f"{TERRAFORM} (-parallelism=64)", 64),
            *configurations,
        ]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as scratch:
        work = Path(scratch)
        for tool, label, parallelism in configurations:
            results.append(_performance(tool, label, parallelism, sizes, speed, work))
            print(f"   {results[-1]}", flush=True)
        for name in SCENARIOS:
            for tool in tools:
                fig.behaviour.append(scenario(tool, name, speed=scenario_speed, work=work))
                print(f"   {fig.behaviour[-1]}", flush=True)
    _fill(fig, results, unavailable, speed=speed, scenario_speed=scenario_speed, sizes=sizes)
    if json_path is not None:
        document = {
            "figure": 7,
            "speed": speed,
            "install_seconds": PLANNED_SECONDS,  # OVH's plan every install follows, in OVH seconds
            "scenario_speed": scenario_speed,
            "sizes": list(sizes),
            "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load": [round(v, 2) for v in os.getloadavg()],
            "tools": results,
            "behaviour": [
                dict(zip(PeersFigure.BEHAVIOUR_COLUMNS, row, strict=True)) for row in fig.behaviour
            ],
            "not_run": [reason for reason in unavailable.values() if reason],
            "verdict": fig.verdict,
        }
        json_path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return fig


def _fill(
    fig: PeersFigure,
    results: list[dict[str, Any]],
    unavailable: dict[str, str | None],
    *,
    speed: float,
    scenario_speed: float,
    sizes: tuple[int, ...],
) -> None:
    """The performance rows, the verdict and the notes."""
    for result in results:
        walls = [result["wall_s"].get(str(size), "") for size in sizes]
        latencies = [result["latency_median_at_ovh_pace_s_by_size"].get(str(size), "") for size in sizes]
        fig.rows.append(
            [
                result["tool"],
                result["requests_per_install"],
                result["requests_per_install_at_ovh_pace"],
                *latencies,
                *walls,
            ]
        )
    fig.verdict = _verdict(results, sizes)
    fig.notes.append(
        f"Installs at {speed:g} times OVH's pace (one install: {PLANNED_SECONDS / speed:.0f} s real), "
        f"behaviour scenarios at {scenario_speed:g}; load average at the end "
        + " ".join(f"{value:.2f}" for value in os.getloadavg())
    )
    built = {
        TERRAFORM: f"Terraform: tofu and terraform-provider-ovh {peers_tofu.TERRAFORM_PROVIDER_OVH_VERSION} "
        "built by scripts/get-ovh-clients.",
        PULUMI_OVH: f"pulumi-ovh {peers_pulumi_ovh.VERSION}: its plugin (which wraps terraform-provider-ovh "
        f"{peers_pulumi_ovh.WRAPS}) and its Python SDK built by scripts/get-ovh-clients, run by the same "
        "Pulumi CLI as ours.",
    }
    fig.notes += [reason or built[tool] for tool, reason in unavailable.items()]
    fig.notes.append(
        "The peers' latency on installs of one length is one point of their 10-second read cycle: between 0 "
        "and 10 s, 5 s on average over installs of every length; figure 1 samples ours over many lengths."
    )
    asked = " / ".join(
        f"{r['requests_per_install_at_ovh_pace'] * sizes[-1] / (PLANNED_SECONDS / 60):.0f}"
        for r in results
        if not r["tool"].startswith(OURS)
    )
    fig.notes.append(
        f"Latency is compared at {' and '.join(str(n) for n in _within_limit(sizes))} servers: at "
        f"{sizes[-1]}, ours waits its turn in the request budget (45 requests a minute per consumer key, "
        "shared by every install), while the peers keep reading every 10 s whatever OVH's limit of about "
        f"60 a minute: at OVH's pace their {sizes[-1]} installs would ask about {asked} a minute, which OVH "
        "answers with 429, and a 429 ends their apply (the bursts scenario below)."
    )


def _within_limit(sizes: tuple[int, ...]) -> tuple[int, ...]:
    """The sizes whose installs both tools can poll at their own pace under OVH's limit: all but the
    largest."""
    return sizes[:-1] or sizes


def _verdict(results: list[dict[str, Any]], sizes: tuple[int, ...]) -> str:
    ours = next(r for r in results if r["tool"].startswith(OURS))
    theirs = [r for r in results if not r["tool"].startswith(OURS)]
    if not theirs:
        return "no peer measured (see the notes)"
    fewer = all(
        ours["requests_per_install_at_ovh_pace"] < r["requests_per_install_at_ovh_pace"] for r in theirs
    )
    by_size = "latency_median_at_ovh_pace_s_by_size"
    sooner = all(
        ours[by_size][str(size)] < r[by_size][str(size)] for r in theirs for size in _within_limit(sizes)
    )
    return "goal met" if fewer and sooner else "goal missed (see the rows)"
