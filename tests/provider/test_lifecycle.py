"""ByoiProvider in a real `python -m pulumi.dynamic` process, over gRPC, against the emulator: create, the
same inputs again, updates, replacements, drift, adoption, deletion.

Every claim is checked on the emulator's own records: its request counts (`/_emulator/stats`) and each
server's install history.
"""

from __future__ import annotations

import base64
import re
import threading

import dill
from ovh_byoi.provider import ByoiProvider
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, terraform_polls, writes
from testkit.provider_process import ProviderProcess

from .conftest import SERVER, installs
from .steps import Deployed, Inputs, refresh, up

REBOOT_STEP = "Rebooting server on the installed OS"


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
    # Delete says it leaves the server alone. Its line may reach the pipe's reader after the call's answer:
    # waited for (TimeoutError if it never comes), not raced.
    provider.wait_for_line("keeps running what was installed")


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
