"""Never two reinstalls at once, and never one asked twice: a running reinstall is waited for, concurrent
creates take turns, lost answers and killed runs are followed rather than repeated, and a deadline leaves
OVH's install alone. A real provider process against the emulator, checked on the emulator's records.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.provider import ByoiProvider
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, writes
from testkit.provider_process import ProviderCallError, ProviderProcess
from testkit.pulumi_cli import emulator_credentials as stack_config

from .conftest import SERVER, installs
from .steps import Inputs, up


def test_a_running_reinstall_is_waited_for_before_ours_starts(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    # The other install runs until the provider has said it waits for it, however slow either side is.
    emulator.set_faults({"rules": [{"holdAtStep": "Checking hardware", "serviceName": SERVER, "times": 1}]})
    checked = provider.check({}, image_inputs("debian.qcow2", preflight="off"))
    other = emulator.reinstall_out_of_band(SERVER, "debian12_64")
    created: list[Any] = []
    creating = threading.Thread(target=lambda: created.append(provider.create(checked.inputs)))
    creating.start()
    try:
        provider.wait_for_line(f"reinstall task {other['taskId']}", timeout=60)
        # A release lets go only what is held by then: the provider may have seen the task before its step.
        emulator.wait_until_held(1)
        assert writes(emulator) == {}, "nothing asked while the other install runs"
    finally:
        emulator.release()
        creating.join()

    [created] = created
    history = installs(emulator)
    assert [(entry["taskId"], entry["status"]) for entry in history] == [
        (other["taskId"], "done"),
        (created.outputs["task_id"], "done"),
    ]
    assert writes(emulator) == {REINSTALL: 1}, "ours was asked once, after the other one ended"
    provider.wait_for_line(f"reinstall task {other['taskId']}")


@pytest.mark.parametrize("busy_answer", ["conflict", "taskAlreadyExists"])
def test_two_installs_of_one_server_never_overlap(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs, busy_answer: str
) -> None:
    # Both creates find no reinstall running and ask at once; OVH takes the first request and refuses the
    # second, in the form `busy_answer` picks (both requests are held until both are in).
    emulator.set_faults(
        {"busyAnswer": busy_answer, "rules": [{"route": REINSTALL, "times": 2, "hold": True}]}
    )
    checked = [
        provider.check({}, image_inputs("debian.qcow2", hostname=name, preflight="off"))
        for name in ("web-1", "web-2")
    ]
    results: list[Any] = []

    def create(inputs: dict[str, Any]) -> None:
        try:
            results.append(provider.create(inputs))
        except ProviderCallError as exc:
            results.append(exc)

    threads = [threading.Thread(target=create, args=(each.inputs,)) for each in checked]
    for thread in threads:
        thread.start()
    try:
        emulator.wait_until_held(2)
    finally:
        emulator.release()
        for thread in threads:
            thread.join()

    assert not [result for result in results if isinstance(result, Exception)]
    history = installs(emulator)
    assert [entry["status"] for entry in history] == ["done", "done"]
    assert sorted(result.outputs["task_id"] for result in results) == [entry["taskId"] for entry in history]
    assert emulator.stats()[REINSTALL] == 3, "one request refused because an install ran, then asked again"
    provider.wait_for_line("another operation holds the server")


def test_four_servers_install_at_once_through_one_provider(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    servers = [f"ns100000{i}.emulator.ovh" for i in range(1, 5)]
    results: dict[str, Any] = {}

    def create(service_name: str) -> None:
        checked = provider.check({}, image_inputs("small.qcow2", service_name=service_name))
        results[service_name] = provider.create(checked.inputs)

    threads = [threading.Thread(target=create, args=(name,)) for name in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for service_name in servers:
        [install] = installs(emulator, service_name)
        assert install["status"] == "done"
        assert results[service_name].outputs["task_id"] == install["taskId"]
    assert writes(emulator) == {REINSTALL: 4}


def test_a_lost_answer_to_the_reinstall_request_is_recovered_without_asking_again(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    emulator.set_faults({"rules": [{"route": REINSTALL, "times": 1, "dropAnswer": True}]})

    _, deployed = up(provider, image_inputs("debian.qcow2"))

    [install] = installs(emulator)
    assert install["status"] == "done"
    assert deployed.outputs["task_id"] == install["taskId"]
    assert emulator.stats()[REINSTALL] == 1, "the task OVH started is followed, not asked for again"
    provider.wait_for_line("answer was lost")


def test_transient_refusals_are_asked_again(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    emulator.set_faults(
        {
            "rules": [
                {"route": REINSTALL, "times": 2, "status": 503},
                {"route": "GET /dedicated/server/{serviceName}/install/status", "times": 3, "status": 500},
                {"route": "GET /dedicated/server/{serviceName}/task/{taskId}", "times": 1, "status": 429},
            ]
        }
    )

    _, deployed = up(provider, image_inputs("debian.qcow2"))

    [install] = installs(emulator)
    assert install["status"] == "done"
    assert emulator.stats()[REINSTALL] == 3
    assert deployed.outputs["task_id"] == install["taskId"]


def test_a_run_killed_mid_install_is_resumed_by_the_next_without_a_second_reinstall(
    emulator: RunningEmulator, image_inputs: Inputs, provider_env: dict[str, str], tmp_path: Path
) -> None:
    inputs = image_inputs("debian.qcow2", preflight="off")
    # OVH's download of the image waits for the test: the install is still running when the run is killed.
    emulator.set_faults({"rules": [{"route": "GET /images/{name}", "hold": True, "times": 1}]})
    failures: list[Exception] = []
    with ProviderProcess(ByoiProvider(), env=provider_env, cwd=tmp_path) as first_run:
        first_run.configure(stack_config(emulator))
        checked = first_run.check({}, inputs)

        def create() -> None:
            try:
                first_run.create(checked.inputs)
            except ProviderCallError as exc:
                failures.append(exc)

        creating = threading.Thread(target=create)
        creating.start()
        first_run.wait_for_line("OVH started the reinstall", timeout=30)
        emulator.wait_until_held(1)
        # As a second Ctrl-C or a dead CI runner would: the create never answers, Pulumi records nothing.
        first_run.kill()
        creating.join()
    assert failures, "the killed run's create failed"
    assert [install["status"] for install in installs(emulator)] == ["doing"], "killed mid-install"

    with ProviderProcess(ByoiProvider(), env=provider_env, cwd=tmp_path) as next_run:
        next_run.configure(stack_config(emulator))
        emulator.release()
        _, deployed = up(next_run, inputs)

        [install] = installs(emulator)
        assert install["status"] == "done"
        assert deployed.outputs["task_id"] == install["taskId"]
        assert writes(emulator) == {REINSTALL: 1}
        assert "an earlier run started this same install" in next_run.output


def test_a_deadline_leaves_the_install_running_and_the_next_run_follows_the_same_task(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    emulator.set_faults({"rules": [{"task": "neverFinish", "times": 1}]})
    # One minute of OVH time is a tenth of a second at speed 600.
    inputs = image_inputs("debian.qcow2", preflight="off", timeout_minutes=1)

    for _ in range(2):
        with pytest.raises(ProviderCallError) as timeout:
            up(provider, inputs)
        [install] = installs(emulator)
        assert f"OVH task {install['taskId']}" in timeout.value.reason
        assert "did not end within 1 minutes" in timeout.value.reason
        assert "Fix: " in timeout.value.reason

    # Still running (at 600x the deadline may pass before OVH starts working on it): left alone.
    assert install["status"] in ("init", "todo", "doing"), "the server was left alone"
    assert writes(emulator) == {REINSTALL: 1}, "the second run followed the task the first one started"


def test_asking_again_for_an_install_that_was_seen_through_reinstalls(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    # `pulumi up --replace` of the same image: the first install ended, so nothing is resumed.
    inputs = provider.check({}, image_inputs("small.qcow2", preflight="off")).inputs

    first = provider.create(inputs)
    second = provider.create(inputs)

    assert second.outputs["task_id"] != first.outputs["task_id"]
    assert [entry["status"] for entry in installs(emulator)] == ["done", "done"]
    assert writes(emulator) == {REINSTALL: 2}


def test_without_a_writable_journal_installing_goes_on_and_says_so(
    emulator: RunningEmulator, image_inputs: Inputs, provider_env: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {**provider_env, "OVH_BYOI_JOURNAL": str(blocker / "reinstalls.sqlite")}
    with ProviderProcess(ByoiProvider(), env=env, cwd=tmp_path) as provider:
        provider.configure(stack_config(emulator))
        _, deployed = up(provider, image_inputs("small.qcow2", preflight="off"))
        output = provider.output

    assert [entry["status"] for entry in installs(emulator)] == ["done"]
    assert deployed.outputs["task_id"] == installs(emulator)[0]["taskId"]
    assert "reinstall journal" in output and "OVH_BYOI_JOURNAL" in output
