"""OVH as it really behaves (as its own clients' sources show it), seen through OVH's
own Python client: 404 bursts, negative elapsedTime, disk groups, BYOLinux, the rate limit, purged tasks,
statuses outside the enum, dates, full domain names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import ovh
import pytest
from ovh_emulator.images import build_image
from ovh_emulator.plan import PLAN
from ovh_emulator.testing import RunningEmulator, start_emulator

from .api import (
    assert_answer,
    assert_schema,
    byoi_body,
    install_status,
    ovh_client,
    reinstall,
    wait_for_task,
    wait_until,
)

DEBIAN = {"operatingSystem": "debian12_64"}
TASK = "GET /1.0/dedicated/server/{serviceName}/task/{taskId}"
MB = 10**6


def task_path(server: str, task_id: int) -> str:
    return f"/dedicated/server/{server}/task/{task_id}"


@pytest.fixture(scope="module")
def one_partition_image(test_images: dict[str, Path]) -> str:
    """A BYOLinux image: qcow2, one partition (the EFI system partition)."""
    folder = next(iter(test_images.values())).parent
    build_image(folder / "one-partition.qcow2", fmt="qcow2", size_mib=4, root_partition=False)
    return "one-partition.qcow2"


# --- 404 on fresh reads ----------------------------------------------------------------------------------


def test_a_404_fault_answers_ovhs_not_found_for_the_routes_object(
    faulty: RunningEmulator, new_server: str
) -> None:
    client = ovh_client(faulty)
    task = reinstall(client, new_server, DEBIAN)
    faulty.set_faults({"rules": [{"route": TASK, "status": 404, "times": 2}]})

    for _ in range(2):
        with pytest.raises(ovh.exceptions.ResourceNotFoundError) as caught:
            client.get(task_path(new_server, task["taskId"]))
        assert caught.value.response.json() == {
            "class": "Client::NotFound",
            "message": f"The requested object (taskId = {task['taskId']}) does not exist",
        }

    assert client.get(task_path(new_server, task["taskId"]))["taskId"] == task["taskId"]


@pytest.fixture(scope="module")
def realistic(test_images: dict[str, Path]) -> Iterator[RunningEmulator]:
    """The realistic mode at 60 times real speed: a fresh task's first 120 OVH seconds are 2 real seconds,
    an install 10 real seconds; no rate limit, so that a test can watch every step."""
    folder = next(iter(test_images.values())).parent
    with start_emulator(
        servers=2,
        speed=60,
        images=folder,
        realistic=True,
        extra_args=["--not-found-seconds", "120", "--rate-limit", "0"],
    ) as running:
        yield running


def test_realistic_mode_answers_404_on_a_fresh_task_and_its_server_then_the_truth(
    realistic: RunningEmulator,
) -> None:
    client, server = ovh_client(realistic), "ns1000001.emulator.ovh"
    task = reinstall(client, server, DEBIAN)

    with pytest.raises(ovh.exceptions.ResourceNotFoundError, match=f"taskId = {task['taskId']}"):
        client.get(task_path(server, task["taskId"]))
    with pytest.raises(ovh.exceptions.ResourceNotFoundError, match=f"serviceName = {server}"):
        client.get(f"/dedicated/server/{server}")
    # The task exists all the same: the list shows it.
    assert client.get(f"/dedicated/server/{server}/task", function="reinstallServer") == [task["taskId"]]

    assert realistic.wait_for_task(server, task["taskId"])["status"] == "done"
    assert client.get(task_path(server, task["taskId"]))["status"] == "done"
    assert client.get(f"/dedicated/server/{server}")["os"] == "debian12_64"


def test_realistic_elapsed_time_goes_negative_across_reboots(realistic: RunningEmulator) -> None:
    client, server = ovh_client(realistic), "ns1000002.emulator.ovh"
    task = reinstall(client, server, DEBIAN)
    seen: list[tuple[str, int]] = []
    while client.get(f"/dedicated/server/{server}/task", status="done") != [task["taskId"]]:
        try:
            status = install_status(client, server)
        except ovh.exceptions.ResourceNotFoundError:
            continue
        assert_answer("GET", "/dedicated/server/{serviceName}/install/status", status)
        step = next((s["comment"] for s in status["progress"] if s["status"] == "doing"), None)
        if step is not None:
            seen.append((step, status["elapsedTime"]))

    # Each step seen (a loaded machine may miss a short one): negative during the reboots, positive between.
    plan = [step.comment for step in PLAN]
    negative = {plan[1], plan[14], plan[15]}
    between = {*plan[2:14], *plan[17:]}
    assert all(elapsed < 0 for step, elapsed in seen if step in negative), seen
    assert all(elapsed >= 0 for step, elapsed in seen if step in between), seen
    assert any(step in negative for step, _ in seen), "at least one reboot was seen"
    assert plan[1] == "Rebooting server on the installation environment"
    assert plan[14] == "Rebooting server on the installed OS"


def test_install_status_is_404_before_the_install_starts_and_errors_are_empty_strings(
    test_images: dict[str, Path],
) -> None:
    folder = next(iter(test_images.values())).parent
    # So slow that the task stays `init` for the whole test (10 OVH seconds are 1000 real ones).
    with start_emulator(servers=1, speed=0.01, images=folder) as slow:
        client, server = ovh_client(slow), "ns1000001.emulator.ovh"
        task = reinstall(client, server, DEBIAN)

        assert client.get(task_path(server, task["taskId"]))["status"] == "init"
        with pytest.raises(ovh.exceptions.ResourceNotFoundError, match="not being installed"):
            install_status(client, server)


# --- "already running" -----------------------------------------------------------------------------------


def test_already_running_is_a_400_task_already_exists_by_default(
    faulty: RunningEmulator, new_server: str
) -> None:
    client = ovh_client(faulty)
    faulty.set_faults({"rules": [{"route": "GET /images/{name}", "hold": True, "times": 1}]})
    running = reinstall(client, new_server, byoi_body(faulty.image_url("small.raw")))
    faulty.wait_until_held(1)

    with pytest.raises(ovh.exceptions.BadParametersError) as caught:
        reinstall(client, new_server, DEBIAN)

    assert caught.value.response.status_code == 400
    assert caught.value.response.json() == {
        "class": "Client::BadRequest::TaskAlreadyExists",
        "message": f"Task {running['taskId']} of type reinstallServer with status doing is already running "
        f"on server {new_server}",
    }
    faulty.release()
    assert wait_for_task(client, new_server, running["taskId"])["status"] == "done"


# --- disk groups -----------------------------------------------------------------------------------------


@pytest.fixture
def hybrid_server(shared_emulator: RunningEmulator, new_server: str) -> str:
    """Two disk groups: 2 x 48 MB (96 MB in all, but no single disk holds debian.raw's 64 MiB), 2 x 200 MB."""
    name = f"hybrid.{new_server}"
    shared_emulator.add_server(
        name,
        diskGroups=[
            {"numberOfDisks": 2, "diskSizeBytes": 48 * MB, "diskType": "SSD"},
            {"numberOfDisks": 2, "diskSizeBytes": 200 * MB, "diskType": "SATA"},
        ],
    )
    return name


def test_hardware_shows_each_disk_group_as_ovhs_schema_shapes_it(
    shared_client: ovh.Client, hybrid_server: str
) -> None:
    hardware = shared_client.get(f"/dedicated/server/{hybrid_server}/specifications/hardware")

    assert_answer("GET", "/dedicated/server/{serviceName}/specifications/hardware", hardware)
    assert [
        (group["diskGroupId"], group["numberOfDisks"], group["diskSize"], group["diskType"])
        for group in hardware["diskGroups"]
    ] == [
        (1, 2, {"unit": "MB", "value": 48}, "SSD"),
        (2, 2, {"unit": "MB", "value": 200}, "SATA"),
    ]


@pytest.mark.parametrize("storage", [None, [{"diskGroupId": 0}], [{"diskGroupId": 1}]])
def test_an_image_must_fit_the_first_disk_of_the_target_group_not_the_group(
    shared_emulator: RunningEmulator,
    shared_client: ovh.Client,
    hybrid_server: str,
    storage: list[dict[str, int]] | None,
) -> None:
    body = byoi_body(shared_emulator.image_url("debian.raw"))
    if storage is not None:
        body["storage"] = storage

    task = wait_for_task(
        shared_client, hybrid_server, reinstall(shared_client, hybrid_server, body)["taskId"]
    )

    assert task["status"] == "customerError"
    assert task["comment"] == (
        f"image provided has a size of {64 * 1024**2} bytes which is larger than device of {48 * MB} bytes"
    )


def test_disk_group_id_in_the_body_installs_on_that_group(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, hybrid_server: str
) -> None:
    body = {**byoi_body(shared_emulator.image_url("debian.raw")), "storage": [{"diskGroupId": 2}]}

    task = wait_for_task(
        shared_client, hybrid_server, reinstall(shared_client, hybrid_server, body)["taskId"]
    )

    assert task["status"] == "done"
    (install,) = shared_emulator.server(hybrid_server)["installs"]
    assert install["diskGroupId"] == 2


def test_an_unknown_disk_group_is_refused_naming_the_field(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, hybrid_server: str
) -> None:
    body = {**byoi_body(shared_emulator.image_url("debian.raw")), "storage": [{"diskGroupId": 3}]}

    with pytest.raises(ovh.exceptions.BadParametersError, match=r"\[storage.diskGroupId\] Disk group 3"):
        reinstall(shared_client, hybrid_server, body)
    assert shared_client.get(f"/dedicated/server/{hybrid_server}/task") == []


# --- BYOLinux --------------------------------------------------------------------------------------------


def test_byolinux_needs_only_the_image_url(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, new_server: str, one_partition_image: str
) -> None:
    body = {
        "operatingSystem": "byolinux_64",
        "customizations": {"imageURL": shared_emulator.image_url(one_partition_image)},
    }

    task = wait_for_task(shared_client, new_server, reinstall(shared_client, new_server, body)["taskId"])

    assert task["status"] == "done", task["comment"]
    assert shared_client.get(f"/dedicated/server/{new_server}")["os"] == "byolinux_64"


@pytest.mark.parametrize(
    ("customizations", "message"),
    [
        ({}, r"\[customizations.imageURL\] Property is mandatory for byolinux_64"),
        (
            {"imageType": "raw"},
            r"\[customizations.imageType\] Given data \(raw\) is not supported by byolinux_64",
        ),
        (
            {"postInstallationScript": "#!/bin/sh\ntrue\n"},
            r"\[customizations.postInstallationScript\] Property is not supported by byolinux_64",
        ),
    ],
)
def test_byolinux_refuses_what_its_rules_exclude(
    shared_emulator: RunningEmulator,
    shared_client: ovh.Client,
    new_server: str,
    customizations: dict[str, str],
    message: str,
) -> None:
    url = {"imageURL": shared_emulator.image_url("small.qcow2")} if customizations else {}
    body = {"operatingSystem": "byolinux_64", "customizations": {**url, **customizations}}

    with pytest.raises(ovh.exceptions.BadParametersError, match=message):
        reinstall(shared_client, new_server, body)
    assert shared_client.get(f"/dedicated/server/{new_server}/task") == []


def test_byolinux_image_with_two_partitions_fails(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    body = {
        "operatingSystem": "byolinux_64",
        "customizations": {"imageURL": shared_emulator.image_url("small.qcow2")},
    }

    task = wait_for_task(shared_client, new_server, reinstall(shared_client, new_server, body)["taskId"])

    assert task["status"] == "customerError"
    assert task["comment"] == "image provided has 2 partitions while BYOLinux expects a single partition"


def test_byolinux_raw_image_fails_as_not_qcow2(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    body = {
        "operatingSystem": "byolinux_64",
        "customizations": {"imageURL": shared_emulator.image_url("small.raw")},
    }

    task = wait_for_task(shared_client, new_server, reinstall(shared_client, new_server, body)["taskId"])

    assert task["comment"] == "image provided format is raw which does not match expected qcow2 format"


# --- the rate limit --------------------------------------------------------------------------------------


def test_realistic_rate_limit_answers_429_past_60_requests_a_minute(test_images: dict[str, Path]) -> None:
    # At real speed, a minute is longer than these requests take.
    with start_emulator(servers=1, speed=1, realistic=True) as limited:
        client = ovh_client(limited)
        for _ in range(60):
            client.get("/dedicated/server")

        with pytest.raises(ovh.exceptions.APIError) as caught:
            client.get("/dedicated/server")

        answer = caught.value.response
        assert answer.status_code == 429
        assert answer.json()["class"] == "Client::TooManyRequests"
        assert 1 <= int(answer.headers["Retry-After"]) <= 60


def test_no_rate_limit_by_default(shared_client: ovh.Client) -> None:
    for _ in range(80):
        shared_client.get("/dedicated/server")


# --- purged tasks, odd statuses, dates, hostnames --------------------------------------------------------


def test_old_tasks_are_purged(test_images: dict[str, Path]) -> None:
    with start_emulator(servers=1, speed=2000, extra_args=["--purge-tasks-after", "60"]) as purging:
        client, server = ovh_client(purging), "ns1000001.emulator.ovh"
        task = reinstall(client, server, DEBIAN)
        assert purging.wait_for_task(server, task["taskId"])["status"] == "done"

        wait_until(lambda: client.get(f"/dedicated/server/{server}/task") == [], what="the task to be purged")

        with pytest.raises(ovh.exceptions.ResourceNotFoundError, match=f"taskId = {task['taskId']}"):
            client.get(task_path(server, task["taskId"]))
        assert [entry["taskId"] for entry in purging.server(server)["installs"]] == [task["taskId"]]


def test_a_task_status_outside_the_enum_as_a_fault(faulty: RunningEmulator, new_server: str) -> None:
    client = ovh_client(faulty)
    task = reinstall(client, new_server, DEBIAN)
    faulty.set_faults({"rules": [{"taskStatus": "unknownStatus", "times": 1}]})

    assert client.get(task_path(new_server, task["taskId"]))["status"] == "unknownStatus"
    assert client.get(task_path(new_server, task["taskId"]))["status"] != "unknownStatus"


def test_dates_come_with_offsets_and_milliseconds(shared_client: ovh.Client, new_server: str) -> None:
    task = wait_for_task(shared_client, new_server, reinstall(shared_client, new_server, DEBIAN)["taskId"])

    assert_schema("dedicated.server.Task", task)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", task["startDate"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", task["doneDate"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", task["lastUpdate"])
    started, done = (datetime.fromisoformat(task[key]) for key in ("startDate", "doneDate"))
    assert started <= done <= datetime.fromisoformat(task["lastUpdate"])


def test_hostname_may_be_a_full_domain_name(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    body: dict[str, Any] = byoi_body(shared_emulator.image_url("small.raw"), hostname="web-1.example.com")

    wait_for_task(shared_client, new_server, reinstall(shared_client, new_server, body)["taskId"])

    assert shared_emulator.server(new_server)["configDrive"]["hostname"] == "web-1.example.com"


def test_hostname_names_the_label_that_breaks_ovhs_rule(shared_client: ovh.Client, new_server: str) -> None:
    with pytest.raises(
        ovh.exceptions.BadParametersError, match="Invalid hostname -bad: each label"
    ) as caught:
        reinstall(shared_client, new_server, {**DEBIAN, "customizations": {"hostname": "web.-bad.example"}})

    assert caught.value.response.json()["class"] == "Client::BadRequest::HostnameInvalidFormat"
