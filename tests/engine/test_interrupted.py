"""A `pulumi up` interrupted during an install, and the recovery the README documents:

    pulumi cancel                              # only if the CLI was killed and left the stack locked
    pulumi refresh --clear-pending-creates     # forget the create the interrupted run left pending
    pulumi up                                  # the provider follows the install already started

It must end with one install on OVH's record and a state saying the server runs the image."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, installs, sha512, writes
from testkit.pulumi_cli import PulumiStack, documented_stack, read_until

from .conftest import installed

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "01-single-server"
SERVER = "ns1000001.emulator.ovh"
STARTED = f"[{SERVER}] OVH started the reinstall: task "
TASK_READ = "GET /1.0/dedicated/server/{serviceName}/task/{taskId}"
# Polls that never answer in time: the provider is still waiting on OVH when the CLI stops it.
POLLS_HANG = {
    "rules": [
        {"route": f"GET /1.0/dedicated/server/{{serviceName}}/{route}", "latency": 120}
        for route in ("install/status", "task/{taskId}")
    ]
}


def single_server(emulator: RunningEmulator, test_images: dict[str, Path], work: Path) -> PulumiStack:
    checksum = {"single-server:imageChecksum": sha512(test_images["debian.qcow2"])}
    return documented_stack(PROJECT, work, "emulator", emulator=emulator, **checksum)


def ctrl_c_twice(process: subprocess.Popen[str]) -> str:
    """Ctrl-C in the terminal (SIGINT to the whole foreground group), then again once the CLI says it is
    cancelling; returns what the CLI printed from then on."""
    os.killpg(process.pid, signal.SIGINT)
    printed = read_until(process, "^C received; cancelling")
    os.killpg(process.pid, signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    return printed + rest


def up_until_the_install_starts(stack: PulumiStack) -> tuple[subprocess.Popen[str], int]:
    """A `pulumi up` started, and the OVH task of the install it started, once it says so."""
    process = stack.start("up", "--yes")
    return process, started_task(read_until(process, STARTED))


def assert_recovery_follows(stack: PulumiStack, emulator: RunningEmulator, task_id: int) -> None:
    """The documented recovery follows the install the interrupted run started, and starts no other."""
    stack.refresh("--clear-pending-creates")
    resumed = stack.run("up", "--yes").output
    assert f"an earlier run started this same install (OVH task {task_id}" in resumed, resumed
    assert [(entry["taskId"], entry["status"]) for entry in installs(emulator, SERVER)] == [(task_id, "done")]
    assert writes(emulator) == {REINSTALL: 1}
    outputs = installed(stack)["web-1"]
    assert (outputs["task_id"], outputs["os"], outputs["drift"]) == (task_id, "byoi_64", "")
    assert "pending_operations" not in stack.export()["deployment"]
    stack.preview("--expect-no-changes")


def started_task(printed: str) -> int:
    return int(printed.split(STARTED, 1)[1].split()[0])


def test_a_pulumi_up_killed_during_an_install_recovers_with_that_one_install(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    stack = single_server(emulator, test_images, tmp_path)
    process, task_id = up_until_the_install_starts(stack)
    stack.kill(process)

    locked = stack.run("up", "--yes", expect=None)
    assert locked.returncode != 0 and "the stack is currently locked" in locked.output, locked
    assert "pulumi cancel" in locked.output
    stack.run("cancel", "--yes")

    assert_recovery_follows(stack, emulator, task_id)


def test_ctrl_c_twice_during_an_install_recovers_with_that_one_install(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    stack = single_server(emulator, test_images, tmp_path)
    emulator.set_faults(POLLS_HANG)
    process, task_id = up_until_the_install_starts(stack)

    stopped = ctrl_c_twice(process)

    assert process.returncode != 0 and "installed: OVH task" not in stopped, stopped
    emulator.set_faults({"rules": []})
    assert_recovery_follows(stack, emulator, task_id)


def test_ctrl_c_twice_as_the_install_ends_recovers_with_that_one_install(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    stack = single_server(emulator, test_images, tmp_path)
    # The provider's reads of the task are parked: OVH finishes while the provider waits for the answer, which
    # the test lets through once the second Ctrl-C has stopped the provider's server, within the 5 s the CLI
    # gives it before SIGKILL.
    emulator.set_faults({"rules": [{"route": TASK_READ, "hold": True}]})
    process, task_id = up_until_the_install_starts(stack)
    emulator.wait_until_held(1, rule=0)
    emulator.wait_for_task(SERVER, task_id)
    provider = dynamic_provider_of(process.pid)

    os.killpg(process.pid, signal.SIGINT)
    read_until(process, "^C received; cancelling")
    os.killpg(process.pid, signal.SIGINT)
    wait_until_not_listening(provider)
    emulator.set_faults({"rules": []})
    process.communicate(timeout=120)
    assert_recovery_follows(stack, emulator, task_id)


def dynamic_provider_of(cli_pid: int) -> int:
    """The pid of the dynamic provider server (`python -m pulumi.dynamic`) the CLI `cli_pid` started."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
                ancestors = _ancestors(int(entry.name))
            except OSError:
                continue
            if b"pulumi.dynamic" in command and cli_pid in ancestors:
                return int(entry.name)
        time.sleep(0.05)
    raise AssertionError("no dynamic provider process under the CLI")


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def wait_until_not_listening(pid: int) -> None:
    """Until the process `pid` listens on no TCP port: its gRPC server has stopped serving."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            sockets = {
                os.readlink(fd).removeprefix("socket:[").removesuffix("]")
                for fd in Path(f"/proc/{pid}/fd").iterdir()
            }
        except OSError:
            return
        listening = set()
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":
                    listening.add(fields[9])
        if not sockets & listening:
            return
        time.sleep(0.01)
    raise AssertionError(f"the provider process {pid} still serves")
