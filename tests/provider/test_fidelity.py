"""The provider against OVH as it really behaves (404 bursts, odd statuses, negative elapsedTime, 429s, disk
groups, BYOLinux), through the real provider process, on the emulator's records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.budget import RESERVE, RequestBudget, relaxed
from ovh_byoi.ovh_api import InstallStatus
from ovh_byoi.provider import ByoiProvider
from ovh_emulator.testing import RunningEmulator, start_emulator
from testkit.emulator_records import REINSTALL, sha512, writes
from testkit.provider_process import ProviderCallError, ProviderProcess
from testkit.pulumi_cli import emulator_credentials as stack_config

from .conftest import SERVER, installs
from .inputs import EFI_DEBIAN
from .test_lifecycle import Inputs, up
from .test_waiting import SimulatedInstall, SimulatedTime, terraform_polls, watch

TASK = "GET /1.0/dedicated/server/{serviceName}/task/{taskId}"
GET_SERVER = "GET /1.0/dedicated/server/{serviceName}"
MB = 10**6


def said(provider: ProviderProcess) -> str:
    return "\n".join(line.text for line in provider.lines)


# --- refresh never drops a server OVH answers 404 for ----------------------------------------------------


def test_a_refresh_whose_server_read_answers_404_keeps_the_resource_and_reinstalls_nothing(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    _, deployed = up(provider, image_inputs())
    emulator.set_faults({"rules": [{"route": GET_SERVER, "status": 404}]})

    with pytest.raises(ProviderCallError) as refused:
        provider.read(deployed.id, deployed.outputs)

    message = refused.value.reason
    assert "OVH answered 404" in message and "stays in the stack" in message
    for cause in ("another OVH account", "OVH's API inconsistency", "really gone", "pulumi state delete"):
        assert cause in message
    emulator.set_faults({})
    step, _ = up(provider, image_inputs(), deployed)
    assert step == "same"
    assert writes(emulator) == {REINSTALL: 1}
    assert [install["status"] for install in installs(emulator)] == ["done"]


# --- 404 on a fresh task, unknown statuses, 429 ------------------------------------------------------------


def test_a_404_burst_on_the_new_task_is_waited_out(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    emulator.set_faults({"rules": [{"route": TASK, "status": 404, "times": 3}]})

    up(provider, image_inputs())

    assert writes(emulator) == {REINSTALL: 1}
    assert [install["status"] for install in installs(emulator)] == ["done"]
    assert "OVH answered 404 while reading task" in said(provider)
    assert "does not know a task for a few minutes after a reinstall" in said(provider)


@pytest.fixture
def realistic(test_images: dict[str, Path]) -> Iterator[RunningEmulator]:
    """The realistic mode; a fresh task and its server answer 404 for 120 OVH seconds (0.2 s here)."""
    folder = next(iter(test_images.values())).parent
    with start_emulator(
        servers=1, speed=600, images=folder, realistic=True, extra_args=["--not-found-seconds", "120"]
    ) as running:
        yield running


def test_an_install_in_the_realistic_mode_ends_done_with_one_reinstall(
    realistic: RunningEmulator, provider_env: dict[str, str], tmp_path: Path, test_images: dict[str, Path]
) -> None:
    image = test_images["debian.qcow2"]
    inputs = {
        "service_name": SERVER,
        "image_url": realistic.image_url("debian.qcow2"),
        "image_type": "qcow2",
        "image_checksum": sha512(image),
        "efi_bootloader_path": EFI_DEBIAN,
    }
    with ProviderProcess(ByoiProvider(), env=provider_env, cwd=tmp_path) as provider:
        provider.configure(stack_config(realistic))
        _, deployed = up(provider, inputs)

    assert deployed.outputs["os"] == "byoi_64"
    assert writes(realistic) == {REINSTALL: 1}
    assert [install["status"] for install in installs(realistic)] == ["done"]


def test_an_unknown_task_status_is_never_success_and_the_next_run_follows_the_same_task(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    emulator.set_faults({"rules": [{"taskStatus": "archived"}]})

    with pytest.raises(ProviderCallError) as failure:
        up(provider, image_inputs())

    message = failure.value.reason
    assert "'archived'" in message and "not counted as a success" in message
    emulator.set_faults({})
    _, deployed = up(provider, image_inputs())
    assert deployed.outputs["task_id"] == installs(emulator)[0]["taskId"]
    assert writes(emulator) == {REINSTALL: 1}, "the task OVH reported oddly was followed, not redone"


def test_a_429_waits_what_retry_after_says(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    emulator.set_faults({"rules": [{"route": TASK, "status": 429, "times": 1}]})

    up(provider, image_inputs())

    assert "OVH answered 429 while reading task" in said(provider)
    assert "(as OVH's Retry-After asks); asking again in 1 s" in said(provider)
    assert writes(emulator) == {REINSTALL: 1}


# --- polling with OVH's elapsedTime as it really is --------------------------------------------------------


class RebootingInstall(SimulatedInstall):
    """elapsedTime as ovhcloud-cli saw it: -1935 during the first reboot, restarting after it, negative
    again after the final reboot."""

    def install_status(self) -> InstallStatus | None:
        status = super().install_status()
        if status is None:
            return None
        position = status.current[0] if status.current else len(status.progress)
        lying = {2: -1935, len(status.progress) - 5: -87}.get(position, 42 * position)
        return status.model_copy(update={"elapsed_time": lying})


@pytest.mark.parametrize("steps", [[30.0] * 21, [5.0] * 20 + [300.0], [120.0] * 10 + [5.0] * 5])
def test_polling_stays_prompt_and_sparse_when_elapsed_time_goes_negative(steps: list[float]) -> None:
    time = SimulatedTime()
    install = RebootingInstall(time, step_seconds=steps)

    task, _ = watch(install, time.clock())

    assert task.status == "done"
    assert time.now - install.end <= max(5.0, 0.2 * steps[-1])
    assert len(install.calls) < terraform_polls(install.end)


# --- the request budget shared by every process ----------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_processes_sharing_a_consumer_key_stay_under_60_requests_a_minute(tmp_path: Path) -> None:
    clock = FakeTime()
    processes = [
        RequestBudget(
            tmp_path / "budget.sqlite", "ck", requests_per_minute=50, sleep=clock.sleep, now=lambda: clock.now
        )
        for _ in range(5)
    ]
    sent = []
    for turn in range(300):
        processes[turn % 5].take()
        sent.append(clock.now)

    busiest = max(sum(1 for t in sent if start <= t < start + 60) for start in sent)
    assert busiest <= 60
    assert sent[-1] - sent[0] <= 300 / 50 * 60 + 1, "the budget is spent, not wasted"


def test_relaxed_requests_leave_the_reserve_to_urgent_ones(tmp_path: Path) -> None:
    clock = FakeTime()
    budget = RequestBudget(
        tmp_path / "budget.sqlite", "ck", requests_per_minute=60, sleep=clock.sleep, now=lambda: clock.now
    )
    for _ in range(10):
        assert budget.take() == 0.0, "the burst goes without waiting"
    # The bucket is empty: an urgent request waits about a second for a token, a relaxed one also waits for
    # the reserve to refill.
    started = clock.now
    budget.take()
    urgent_wait = clock.now - started
    with relaxed():
        started = clock.now
        budget.take()
    relaxed_wait = clock.now - started
    assert urgent_wait <= 1.5
    assert relaxed_wait >= RESERVE


def test_another_consumer_key_has_a_budget_of_its_own(tmp_path: Path) -> None:
    clock = FakeTime()

    def budget(key: str) -> RequestBudget:
        return RequestBudget(
            tmp_path / "budget.sqlite", key, requests_per_minute=60, sleep=clock.sleep, now=lambda: clock.now
        )

    first, second = budget("ck-1"), budget("ck-2")
    for _ in range(10):
        first.take()
    assert second.take() == 0.0


# --- disk groups -----------------------------------------------------------------------------------------


@pytest.fixture
def hybrid(emulator: RunningEmulator) -> str:
    """2 x 48 MB SSD (no single disk holds debian.qcow2's 64 MiB), then 2 x 200 MB SATA."""
    emulator.add_server(
        "hybrid.emulator.ovh",
        diskGroups=[
            {"numberOfDisks": 2, "diskSizeBytes": 48 * MB, "diskType": "SSD"},
            {"numberOfDisks": 2, "diskSizeBytes": 200 * MB, "diskType": "SATA"},
        ],
    )
    return "hybrid.emulator.ovh"


def test_preflight_compares_the_image_with_the_first_disk_and_names_the_group_that_fits(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs, hybrid: str
) -> None:
    with pytest.raises(ProviderCallError) as failure:
        up(provider, image_inputs(service_name=hybrid))

    message = failure.value.reason
    assert f"the server's disk of {48 * MB} bytes" in message
    assert "set disk_group_id (OVH's diskGroupId) to 2 (2 x 200 MB SATA)" in message
    assert writes(emulator) == {}, "nothing was sent to OVH"


def test_disk_group_id_installs_on_that_group(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs, hybrid: str
) -> None:
    up(provider, image_inputs(service_name=hybrid, disk_group_id=2))

    [install] = installs(emulator, hybrid)
    assert (install["status"], install["diskGroupId"]) == ("done", 2)


def test_a_disk_group_the_server_lacks_is_refused_before_anything_is_erased(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs, hybrid: str
) -> None:
    with pytest.raises(ProviderCallError) as failure:
        up(provider, image_inputs(service_name=hybrid, disk_group_id=5))

    assert (
        "disk_group_id: hybrid.emulator.ovh has no disk group 5 (its disk groups: 1, 2)"
        in failure.value.reason
    )
    assert writes(emulator) == {}


def test_ovhs_larger_than_device_failure_names_the_groups_that_would_fit(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs, hybrid: str
) -> None:
    with pytest.raises(ProviderCallError) as failure:
        up(provider, image_inputs(service_name=hybrid, preflight="off"))

    message = failure.value.reason
    assert "which is larger than device of 48000000 bytes" in message, "OVH's own words"
    assert "set disk_group_id (OVH's diskGroupId) to 2 (2 x 200 MB SATA)" in message
    assert [install["status"] for install in installs(emulator, hybrid)] == ["customerError"]


# --- BYOLinux --------------------------------------------------------------------------------------------


def test_byolinux_needs_only_the_image_url(provider: ProviderProcess, emulator: RunningEmulator) -> None:
    checked = provider.check(
        {},
        {
            "service_name": SERVER,
            "image_url": emulator.image_url("x.qcow2"),
            "operating_system": "byolinux_64",
        },
    )
    assert checked.ok, checked.failures


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"operating_system": "byolinux_64", "image_type": "raw"},
            "image_type",
            "byolinux_64 installs qcow2",
        ),
        ({"image_type": None}, "image_type", "image_type is required for byoi_64"),
        ({"efi_bootloader_path": None}, "efi_bootloader_path", "efi_bootloader_path is required for byoi_64"),
        ({"disk_group_id": -1}, "disk_group_id", "disk_group_id"),
    ],
)
def test_each_template_is_checked_by_its_own_rules(
    provider: ProviderProcess, image_inputs: Inputs, changes: dict[str, Any], field: str, words: str
) -> None:
    checked = provider.check({}, image_inputs(**changes))

    [(failed_field, reason)] = [(f.property, f.reason) for f in checked.failures]
    assert failed_field == field
    assert words in reason and "Fix: " in reason
