"""ByoiProvider in a real `python -m pulumi.dynamic` process, over gRPC, against the emulator.

Every claim is checked on the emulator's own records: its request counts (`/_emulator/stats`) and each
server's install history.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dill
import pytest
from ovh_byoi.provider import ByoiProvider
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, terraform_polls, writes
from testkit.provider_process import ProviderCallError, ProviderProcess

from .conftest import SERVER, installs, stack_config

REBOOT_STEP = "Rebooting server on the installed OS"

Inputs = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Deployed:
    """What the engine keeps of a resource between runs."""

    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


def up(
    provider: ProviderProcess, inputs: dict[str, Any], deployed: Deployed | None = None
) -> tuple[str, Deployed]:
    """The engine's steps for one resource in `pulumi up`: check, then diff and create, update or replace."""
    checked = provider.check(deployed.inputs if deployed else {}, inputs)
    assert checked.ok, checked.failures
    if deployed is None:
        created = provider.create(checked.inputs)
        return "create", Deployed(created.id, checked.inputs, created.outputs)
    diff = provider.diff(deployed.id, deployed.outputs, checked.inputs)
    if not diff.changes:
        return "same", deployed
    if diff.replaces:
        created = provider.create(checked.inputs)
        provider.delete(deployed.id, deployed.outputs)
        return "replace", Deployed(created.id, checked.inputs, created.outputs)
    updated = provider.update(deployed.id, deployed.outputs, checked.inputs)
    return "update", Deployed(deployed.id, checked.inputs, updated.outputs)


def refresh(provider: ProviderProcess, deployed: Deployed) -> Deployed:
    read = provider.read(deployed.id, deployed.outputs)
    assert read.id is not None
    return Deployed(read.id, deployed.inputs, read.outputs)


def test_create_installs_once_and_the_same_inputs_again_install_nothing(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    inputs = image_inputs("debian.qcow2")

    step, deployed = up(provider, inputs)

    assert step == "create"
    [install] = installs(emulator)
    assert install["status"] == "done"
    assert install["imageURL"] == inputs["image_url"]
    assert install["operatingSystem"] == "byoi_64"
    assert deployed.outputs["task_id"] == install["taskId"]
    assert deployed.id == f"{SERVER}/{install['taskId']}"
    assert deployed.outputs["os"] == emulator.server(SERVER)["os"] == "byoi_64"
    assert deployed.outputs["drift"] == ""
    assert {name: deployed.outputs[name] for name in inputs} == inputs, "every input is echoed"
    assert writes(emulator) == {REINSTALL: 1}

    step, deployed = up(provider, inputs, refresh(provider, deployed))

    assert step == "same"
    assert writes(emulator) == {REINSTALL: 1}
    assert len(installs(emulator)) == 1


def test_progress_shows_each_change_of_ovh_step_prefixed_with_the_server(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    # The install waits at each of these steps until the provider has printed it: what is asserted does not
    # depend on how often a loaded machine lets the provider poll.
    stops = ["Checking BIOS version", "Downloading OS image", "Writing OS image on disk", REBOOT_STEP]
    emulator.set_faults(
        {"rules": [{"holdAtStep": stop, "serviceName": SERVER, "times": 1} for stop in stops]}
    )
    creating = threading.Thread(target=up, args=(provider, image_inputs("debian.qcow2")))
    creating.start()
    for rule, stop in enumerate(stops):
        emulator.wait_until_held(1, rule=rule)
        provider.wait_for_line(lambda text, stop=stop: text.endswith(f"/21 {stop}"), timeout=60)
        emulator.release(rule)
    creating.join(timeout=120)

    steps = [
        line.text for line in provider.lines if re.fullmatch(rf"\[{re.escape(SERVER)}\] \d+/21 .+", line.text)
    ]
    assert [line for line in steps if line.endswith(tuple(stops))] == [
        f"[{SERVER}] {position}/21 {stop}" for position, stop in zip((1, 8, 10, 15), stops, strict=True)
    ]
    positions = [int(line.split()[1].split("/")[0]) for line in steps]
    assert positions == sorted(set(positions)), "one line per change of step, in order"
    assert all(line.stream == "stderr" for line in provider.lines if line.text in steps)
    assert installs(emulator)[0]["status"] == "done"


def test_polling_asks_far_less_than_terraform(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    before = emulator.stats()
    up(provider, image_inputs("debian.qcow2", preflight="off"))
    after = emulator.stats()

    polls = sum(
        after.get(route, 0) - before.get(route, 0)
        for route in after
        if route.startswith("GET /1.0/dedicated/server/{serviceName}/task/")
        or route.endswith("/install/status")
    )
    # The emulated install lasts about 625 s: init and todo, then 21 steps.
    assert polls < terraform_polls(625) / 2, f"{polls} polls against Terraform's {terraform_polls(625)}"


def test_a_moved_url_with_the_same_checksum_reinstalls_nothing(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    _, deployed = up(provider, image_inputs("debian.qcow2"))
    # Same bytes, another URL (a mirror).
    moved = image_inputs("debian.qcow2", image_url=emulator.image_url("debian.qcow2") + "?mirror=eu-west")

    step, updated = up(provider, moved, deployed)

    assert step == "update"
    assert updated.outputs["image_url"].endswith("?mirror=eu-west")
    assert updated.outputs["task_id"] == deployed.outputs["task_id"], "update returns the full outputs"
    assert writes(emulator) == {REINSTALL: 1}
    assert len(installs(emulator)) == 1


def test_a_new_checksum_is_a_replacement_that_reinstalls_once(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    _, deployed = up(provider, image_inputs("debian.qcow2"))
    new_image = image_inputs("small.qcow2")

    diff = provider.diff(deployed.id, deployed.outputs, provider.check(deployed.inputs, new_image).inputs)
    assert diff.replaces == ["image_checksum", "image_url"] or diff.replaces == ["image_checksum"]
    step, replaced = up(provider, new_image, deployed)

    assert step == "replace"
    history = installs(emulator)
    assert [entry["imageURL"] for entry in history] == [deployed.inputs["image_url"], new_image["image_url"]]
    assert writes(emulator) == {REINSTALL: 2}
    assert replaced.outputs["task_id"] == history[1]["taskId"]
    assert "keeps running what was installed" in provider.output, "delete says it leaves the server alone"


def test_a_provider_pickled_by_another_version_is_no_change(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    _, deployed = up(provider, image_inputs("debian.qcow2"))
    # Another version of the package, or of dill, pickles the same class to other bytes.
    other_version = base64.b64encode(dill.dumps(ByoiProvider(), protocol=2)).decode()
    assert other_version != deployed.inputs["__provider"]
    news = provider.check(
        deployed.inputs, {**image_inputs("debian.qcow2"), "__provider": other_version}
    ).inputs

    diff = provider.diff(deployed.id, deployed.outputs, news)

    assert diff.changes is False
    assert diff.replaces == []
    assert writes(emulator) == {REINSTALL: 1}


def test_an_out_of_band_reinstall_is_drift_and_the_next_up_reinstalls(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    inputs = image_inputs("debian.qcow2")
    _, deployed = up(provider, inputs)
    other = emulator.reinstall_out_of_band(SERVER, "debian12_64")
    emulator.wait_for_task(SERVER, other["taskId"])

    refreshed = refresh(provider, deployed)

    assert str(other["taskId"]) in refreshed.outputs["drift"]
    assert "debian12_64" in refreshed.outputs["drift"]
    assert writes(emulator) == {REINSTALL: 1}, "refresh never writes"
    diff = provider.diff(refreshed.id, refreshed.outputs, provider.check(refreshed.inputs, inputs).inputs)
    assert diff.changes is True
    assert diff.replaces == ["drift"]

    step, repaired = up(provider, inputs, refreshed)

    assert step == "replace"
    assert writes(emulator) == {REINSTALL: 2}
    assert [entry["outOfBand"] for entry in installs(emulator)] == [False, True, False]
    assert refresh(provider, repaired).outputs["drift"] == ""


def test_adopt_installs_nothing(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    step, deployed = up(provider, image_inputs("debian.qcow2", adopt=True))

    assert step == "create"
    assert writes(emulator) == {}
    assert installs(emulator) == []
    assert deployed.outputs["os"] == "debian12_64", "what OVH reports is recorded as is"
    assert deployed.outputs.get("task_id") is None
    assert deployed.id == SERVER


def test_adopting_a_server_records_its_latest_reinstall(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    first = provider.create(provider.check({}, image_inputs("debian.qcow2")).inputs)
    adopted = provider.create(provider.check({}, image_inputs("debian.qcow2", adopt=True)).inputs)

    assert adopted.outputs["task_id"] == first.outputs["task_id"]
    assert adopted.outputs["os"] == "byoi_64"
    assert writes(emulator) == {REINSTALL: 1}
    assert refresh(provider, Deployed(adopted.id, {}, adopted.outputs)).outputs["drift"] == ""


def test_a_failed_install_carries_ovhs_reason_task_and_fix(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    # A bare file system is no raw disk image; without preflight only OVH finds out, after erasing the server.
    inputs = image_inputs("no-table.raw", preflight="off")

    with pytest.raises(ProviderCallError) as failure:
        up(provider, inputs)

    [install] = installs(emulator)
    message = failure.value.reason
    assert install["status"] == "customerError"
    assert SERVER in message
    assert str(install["taskId"]) in message
    assert "customerError" in message
    assert "no partition table was found" in message, "OVH's own words"
    assert re.search(r"OVH query id: \S+", message)
    assert "Fix: " in message and "partition table" in message.split("Fix: ", 1)[1]


def test_an_ovh_side_failure_says_so(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    emulator.set_faults({"rules": [{"task": "ovhError", "times": 1}]})

    with pytest.raises(ProviderCallError) as failure:
        up(provider, image_inputs("debian.qcow2", preflight="off"))

    [install] = installs(emulator)
    assert install["status"] == "ovhError"
    assert str(install["taskId"]) in failure.value.reason
    assert "OVHcloud technicians have been notified" in failure.value.reason
    assert "Fix: " in failure.value.reason


def test_preflight_catches_a_bad_image_before_anything_is_erased(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    with pytest.raises(ProviderCallError) as failure:
        up(provider, image_inputs("no-table.raw"))

    assert writes(emulator) == {}, "the server is untouched"
    assert installs(emulator) == []
    assert "image_type" in failure.value.reason or "image_url" in failure.value.reason
    assert "nothing was sent to OVH" in failure.value.reason


def test_a_refusal_carries_ovhs_words_query_id_and_fix(
    emulator: RunningEmulator, image_inputs: Inputs, provider_env: dict[str, str], tmp_path: Path
) -> None:
    config = {**stack_config(emulator), "ovh:consumerKey": "a-consumer-key-ovh-does-not-know"}
    with ProviderProcess(ByoiProvider(), env=provider_env, cwd=tmp_path) as provider:
        provider.configure(config)
        with pytest.raises(ProviderCallError) as failure:
            up(provider, image_inputs("debian.qcow2"))

    message = failure.value.reason
    assert SERVER in message
    assert "OVH says:" in message
    assert re.search(r"OVH query id: \S+", message)
    assert "Fix: " in message and "consumer key" in message
    assert emulator.application_secret not in failure.value.details
    assert writes(emulator) == {}


def test_a_server_ovh_does_not_know_fails_the_refresh_and_is_not_dropped(
    provider: ProviderProcess, image_inputs: Inputs
) -> None:
    outputs = {
        **image_inputs("debian.qcow2", service_name="ns1999999.emulator.ovh"),
        "task_id": 7,
        "os": "byoi_64",
    }

    # A 404 is not proof the server is gone (another account's keys, OVH's inconsistency): dropping the
    # resource would have the next up reinstall it. The way out of a really gone server is named instead.
    with pytest.raises(ProviderCallError, match="pulumi state delete"):
        provider.read("ns1999999.emulator.ovh/7", outputs)


def test_update_and_delete_send_nothing_to_ovh(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    _, deployed = up(provider, image_inputs("debian.qcow2"))
    before = emulator.stats()

    step, updated = up(
        provider, image_inputs("debian.qcow2", timeout_minutes=300, preflight="full"), deployed
    )
    provider.delete(updated.id, updated.outputs)

    assert step == "update"
    assert updated.outputs["timeout_minutes"] == 300
    assert updated.outputs["task_id"] == deployed.outputs["task_id"]
    assert emulator.stats() == before, "neither update nor delete calls OVH"
    assert emulator.server(SERVER)["os"] == "byoi_64"


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
    assert f"reinstall task {other['taskId']}" in provider.output


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
    assert "another operation holds the server" in provider.output


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
    assert "answer was lost" in provider.output


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


def test_no_secret_in_the_pickled_provider_or_in_what_the_provider_prints(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    header_value = "Basic c2VjcmV0LWhlYWRlci12YWx1ZQ=="
    user_data = "#cloud-config\nchpasswd: {list: 'root:user-data-secret-42'}\n"
    inputs = image_inputs(
        "debian.qcow2",
        http_headers={"Authorization": header_value},
        config_drive_user_data=user_data,
        config_drive_metadata={"token": "metadata-secret-17"},
    )
    _, deployed = up(provider, inputs)
    refresh(provider, deployed)

    pickled = base64.b64decode(deployed.inputs["__provider"])
    assert isinstance(dill.loads(pickled), ByoiProvider)
    assert dill.loads(pickled).__dict__ == {}
    secrets = [
        emulator.application_secret,
        emulator.consumer_key,
        header_value,
        "user-data-secret-42",
        "metadata-secret-17",
    ]
    for secret in secrets:
        assert secret.encode() not in pickled
        assert secret not in provider.output


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


def test_a_drifted_server_is_accepted_as_it_is_with_adopt(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    _, deployed = up(provider, image_inputs("debian.qcow2", preflight="off"))
    other = emulator.reinstall_out_of_band(SERVER, "debian12_64")
    emulator.wait_for_task(SERVER, other["taskId"])
    drifted = refresh(provider, deployed)
    assert drifted.outputs["drift"]

    step, accepted = up(provider, image_inputs("debian.qcow2", preflight="off", adopt=True), drifted)

    assert step == "replace"
    assert writes(emulator) == {REINSTALL: 1}, "adopting installs nothing"
    assert accepted.outputs["task_id"] == other["taskId"]
    assert accepted.outputs["os"] == "debian12_64"
    assert refresh(provider, accepted).outputs["drift"] == ""
