"""Every route answers what OVH's OpenAPI file documents, and refuses what OVH refuses, as OVH does."""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Any

import ovh
import pytest
from ovh_emulator.installs import INIT_SECONDS, TODO_SECONDS
from ovh_emulator.plan import PLAN
from ovh_emulator.testing import RunningEmulator

from .api import (
    SERVER,
    assert_answer,
    byoi_body,
    install_status,
    ovh_client,
    reinstall,
    signed_request,
    wait_for_task,
)

SN = "/dedicated/server/{serviceName}"
DEBIAN = {"operatingSystem": "debian12_64"}


def test_every_route_answers_in_the_shape_of_ovhs_schema(
    faulty: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    shared_emulator, client, base = faulty, shared_client, f"/dedicated/server/{new_server}"
    faulty.set_faults({"rules": [{"holdAtStep": "Downloading OS image", "serviceName": new_server}]})
    assert_answer("GET", "/dedicated/server", client.get("/dedicated/server"))
    server = client.get(base)
    assert_answer("GET", SN, server)
    assert (server["name"], server["os"], server["state"]) == (new_server, "debian12_64", "ok")
    hardware = client.get(base + "/specifications/hardware")
    assert_answer("GET", SN + "/specifications/hardware", hardware)
    assert hardware["diskGroups"][0]["diskSize"] == {"unit": "GB", "value": 480}
    assert hardware["memorySize"] == {"unit": "MB", "value": 65536}

    task = reinstall(client, new_server, byoi_body(shared_emulator.image_url("small.raw")))
    assert_answer("POST", SN + "/reinstall", task)
    assert task["comment"] == "Start bare metal OS installation"
    datetime.fromisoformat(task["startDate"])
    faulty.wait_until_held(1)
    assert_answer("GET", SN + "/install/status", install_status(client, new_server))
    assert_answer("GET", SN + "/task", client.get(base + "/task"))
    faulty.release()
    done = wait_for_task(client, new_server, task["taskId"])
    assert_answer("GET", SN + "/task/{taskId}", done)
    assert datetime.fromisoformat(done["doneDate"]) >= datetime.fromisoformat(done["startDate"])
    assert_answer("GET", SN, client.get(base))


def test_install_goes_through_ovhs_statuses_and_steps_in_order(
    faulty: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    client, task_path = shared_client, f"/dedicated/server/{new_server}/task"
    steps = ["Checking BIOS version", "Downloading OS image", "Sending end of installation mail"]
    stops = ["todo", *steps]
    faulty.set_faults(
        {"rules": [{"holdAtStep": stop, "serviceName": new_server, "times": 1} for stop in stops]}
    )
    task = reinstall(client, new_server, byoi_body(faulty.image_url("small.raw")))
    statuses, progresses = [task["status"]], []
    # The install waits at each stop until the test has read it there: no status or step can slip by unseen.
    for rule, stop in enumerate(stops):
        faulty.wait_until_held(1, rule=rule)
        statuses.append(client.get(f"{task_path}/{task['taskId']}")["status"])
        if stop in steps:
            progresses.append(install_status(client, new_server))
        faulty.release(rule)
    statuses.append(wait_for_task(client, new_server, task["taskId"])["status"])

    assert statuses == ["init", "todo", "doing", "doing", "doing", "done"]
    doing = [[s["comment"] for s in p["progress"] if s["status"] == "doing"] for p in progresses]
    assert doing == [[step] for step in steps], "one step at a time, the one the install is at"
    elapsed = [progress["elapsedTime"] for progress in progresses]
    assert elapsed == sorted(elapsed)
    # A step is never undone.
    rank = {"todo": 0, "doing": 1, "done": 2}
    for before, after in itertools.pairwise(progresses):
        for old, new in zip(before["progress"], after["progress"], strict=True):
            assert rank[old["status"]] <= rank[new["status"]]
    assert [s["status"] for s in progresses[-1]["progress"]] == ["done"] * 20 + ["doing"]
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        install_status(client, new_server)


def test_install_steps_are_named_like_ovhs_and_last_about_ten_minutes(
    faulty: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    last = "Sending end of installation mail"
    faulty.set_faults({"rules": [{"holdAtStep": last, "serviceName": new_server}]})
    reinstall(shared_client, new_server, DEBIAN)
    faulty.wait_until_held(1)
    status = install_status(shared_client, new_server)
    faulty.release()
    comments = [step["comment"] for step in status["progress"]]
    seen_by_ovh_users = [
        "Checking BIOS version",
        "Preparing disks for new Partitioning",
        "Cleaning Partitioning",
        "Applying Partitioning",
        "Downloading OS image",
        "Checking Partitioning",
        "Waiting for services to be up",
        "Sending end of installation mail",
    ]

    assert len(comments) == 21
    assert set(seen_by_ovh_users) <= set(comments)
    assert comments[-1] == last
    # Emulated time is real time times the speed, so how far it runs past the plan measures the machine;
    # what the emulator decides is the plan, and that no step ends before its planned time.
    planned = INIT_SECONDS + TODO_SECONDS + sum(step.seconds for step in PLAN)
    assert 540 <= planned <= 720
    assert status["elapsedTime"] >= planned - PLAN[-1].seconds


def test_install_status_when_no_install_runs_is_ovhs_404(shared_emulator: RunningEmulator) -> None:
    answer = signed_request(shared_emulator, "GET", f"/dedicated/server/{SERVER}/install/status")

    assert answer.status_code == 404
    assert answer.json()["message"] == "Server is not being installed or reinstalled at the moment"


@pytest.mark.parametrize(
    "path",
    [
        "/dedicated/server/ns9.unknown.example",
        "/dedicated/server/ns9.unknown.example/specifications/hardware",
        "/dedicated/server/ns9.unknown.example/task",
        "/dedicated/server/ns9.unknown.example/install/status",
        f"/dedicated/server/{SERVER}/task/1",
    ],
)
def test_unknown_servers_and_tasks_are_not_found(shared_emulator: RunningEmulator, path: str) -> None:
    answer = signed_request(shared_emulator, "GET", path)

    assert answer.status_code == 404
    assert answer.json()["class"] == "Client::NotFound"
    assert "does not exist" in answer.json()["message"]


def test_task_list_filters_by_function_and_status(shared_client: ovh.Client, new_server: str) -> None:
    client, tasks = shared_client, f"/dedicated/server/{new_server}/task"
    first = reinstall(client, new_server, DEBIAN)
    wait_for_task(client, new_server, first["taskId"])
    second = reinstall(client, new_server, byoi_body("http://127.0.0.1:9/unreachable.raw"))
    wait_for_task(client, new_server, second["taskId"])

    assert client.get(tasks) == [first["taskId"], second["taskId"]]
    assert client.get(tasks, function="reinstallServer") == [first["taskId"], second["taskId"]]
    assert client.get(tasks, function="hardReboot") == []
    assert client.get(tasks, status="done") == [first["taskId"]]
    assert client.get(tasks, function="reinstallServer", status="customerError") == [second["taskId"]]
    assert client.get(tasks, status="cancelled") == []
    with pytest.raises(ovh.exceptions.BadParametersError, match=r"\[status\] Given data \(finished\)"):
        client.get(tasks, status="finished")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"customizations": {}}, "[operatingSystem] Property is mandatory"),
        (
            {"operatingSystem": "byoi_64", "customizations": {"imageURL": "http://h/a", "imageType": "vhd"}},
            "[customizations.imageType] Given data (vhd) does not belong to the enumeration: qcow2, raw",
        ),
        (
            {"operatingSystem": "debian12_64", "customizations": {"imageUrl": "http://h/a"}},
            "[customizations] Received not described parameters: (imageUrl)",
        ),
        (
            {"operatingSystem": "debian12_64", "customizations": {"configDriveMetadata": {"tier": 1}}},
            "[customizations.configDriveMetadata.tier] Given data (1) is not of type string",
        ),
        (
            {"operatingSystem": "byoi_64", "customizations": {"imageURL": "http://h/a", "imageType": "raw"}},
            "[customizations.efiBootloaderPath] Property is mandatory for byoi_64",
        ),
        (
            {"operatingSystem": "debian12_64", "customizations": {"hostname": "-web"}},
            "Invalid hostname -web: each label must contain no more than 63 characters",
        ),
    ],
)
def test_invalid_reinstall_bodies_are_refused_naming_the_field(
    shared_client: ovh.Client, new_server: str, body: dict[str, object], message: str
) -> None:
    with pytest.raises(ovh.exceptions.BadParametersError) as caught:
        shared_client.post(f"/dedicated/server/{new_server}/reinstall", **body)

    assert message in str(caught.value)
    assert shared_client.get(f"/dedicated/server/{new_server}/task") == []


def test_unknown_operating_system_is_not_found(shared_client: ovh.Client, new_server: str) -> None:
    with pytest.raises(
        ovh.exceptions.ResourceNotFoundError, match="Operating system plan9_64 does not exist"
    ):
        shared_client.post(f"/dedicated/server/{new_server}/reinstall", operatingSystem="plan9_64")


def test_body_that_is_not_json_is_a_bad_request(shared_emulator: RunningEmulator, new_server: str) -> None:
    answer = signed_request(shared_emulator, "POST", f"/dedicated/server/{new_server}/reinstall", "{os")

    assert answer.status_code == 400
    assert answer.json()["message"].startswith("Invalid JSON received")


def test_config_drive_metadata_is_accepted_and_kept(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    body = byoi_body(
        shared_emulator.image_url("small.raw"), configDriveMetadata={"tier": "gold", "zone": "a"}
    )

    wait_for_task(shared_client, new_server, reinstall(shared_client, new_server, body)["taskId"])

    assert shared_emulator.server(new_server)["configDrive"]["metadata"] == {"tier": "gold", "zone": "a"}


def start_held_install(
    emulator: RunningEmulator, client: ovh.Client, server: str, busy_answer: str = "conflict"
) -> dict[str, Any]:
    """A BYOI install kept running (its download held) until `emulator.release()`."""
    emulator.set_faults(
        {"busyAnswer": busy_answer, "rules": [{"route": "GET /images/{name}", "hold": True, "times": 1}]}
    )
    running = reinstall(client, server, byoi_body(emulator.image_url("small.raw")))
    emulator.wait_until_held(1)
    return running


def test_second_reinstall_while_one_runs_is_refused_as_a_conflict(
    faulty: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    client, shared_emulator = shared_client, faulty
    running = start_held_install(faulty, client, new_server)

    with pytest.raises(ovh.exceptions.ResourceConflictError) as caught:
        reinstall(client, new_server, byoi_body(shared_emulator.image_url("small.raw")))

    assert caught.value.response.json() == {
        "class": "Client::Conflict::DisturbAlreadyExists",
        "message": f"Server resource {new_server} is already locked by another process, "
        "blocking any new OS reinstallation",
    }
    assert client.get(f"/dedicated/server/{new_server}/task") == [running["taskId"]]
    faulty.release()
    wait_for_task(client, new_server, running["taskId"])
    assert reinstall(client, new_server, DEBIAN)["status"] == "init"


def test_busy_server_can_answer_task_already_exists_instead(faulty: RunningEmulator, new_server: str) -> None:
    client = ovh_client(faulty)
    running = start_held_install(faulty, client, new_server, "taskAlreadyExists")

    with pytest.raises(ovh.exceptions.BadParametersError) as caught:
        reinstall(client, new_server, DEBIAN)

    assert caught.value.response.json()["class"] == "Client::BadRequest::TaskAlreadyExists"
    assert re.match(
        rf"Task {running['taskId']} of type reinstallServer with status doing "
        rf"is already running on server {re.escape(new_server)}",
        str(caught.value),
    )


def test_task_is_cancelled_before_it_starts_but_not_once_it_works(
    faulty: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    client, task_path = shared_client, f"/dedicated/server/{new_server}/task"
    faulty.set_faults(
        {
            "rules": [
                {"holdAtStep": "todo", "serviceName": new_server, "times": 1},
                {"holdAtStep": "Checking BIOS version", "serviceName": new_server, "times": 1},
            ]
        }
    )
    early = reinstall(client, new_server, {"operatingSystem": "ubuntu2404-server_64"})
    faulty.wait_until_held(1, rule=0)
    cancelled = client.post(f"{task_path}/{early['taskId']}/cancel")
    assert_answer("POST", SN + "/task/{taskId}/cancel", cancelled)

    assert client.get(f"{task_path}/{early['taskId']}")["status"] == "cancelled"
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        install_status(client, new_server)

    working = reinstall(client, new_server, {"operatingSystem": "ubuntu2404-server_64"})
    faulty.wait_until_held(1, rule=1)
    with pytest.raises(ovh.exceptions.BadParametersError, match="can not be cancelled"):
        client.post(f"{task_path}/{working['taskId']}/cancel")
    assert client.get(f"{task_path}/{working['taskId']}")["status"] == "doing"
    assert client.get(f"/dedicated/server/{new_server}")["os"] == "debian12_64"
    faulty.release()
    assert wait_for_task(client, new_server, working["taskId"])["status"] == "done"


def test_routes_other_clients_call_answer_in_the_shape_of_ovhs_schema(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    """`GET /auth/details` (every Terraform provider configure), `PUT /dedicated/server/{sn}` (Terraform's
    `ovh_dedicated_server`), `POST .../reboot` and `POST .../authenticationSecret` (OVH's CLI)."""
    client, base = shared_client, f"/dedicated/server/{new_server}"
    details = client.get("/auth/details")
    # Not in the dedicated-server file: the fields OVH's Terraform provider reads (`OvhAuthDetails`).
    assert set(details) == {
        *("account", "allowedRoutes", "description", "identities", "method", "roles", "user")
    }

    changes = {
        "bootId": 2,
        "monitoring": False,
        "rescueMail": "ops@example.com",
        "efiBootloaderPath": "\\efi\\x.efi",
    }
    assert client.put(base, **changes) is None
    server = client.get(base)
    assert_answer("GET", SN, server)
    assert {name: server[name] for name in changes} == changes
    client.put(base, rescueMail="", efiBootloaderPath="", os="ignored")  # "" clears; read-only: ignored
    server = client.get(base)
    assert (server["rescueMail"], server["efiBootloaderPath"], server["os"]) == (None, None, "debian12_64")
    with pytest.raises(ovh.exceptions.BadParametersError, match=r"\[monitoring\] Given data"):
        client.put(base, monitoring="yes")
    with pytest.raises(ovh.exceptions.BadParametersError, match=r"not described parameters: \(colour\)"):
        client.put(base, colour="red")

    task = client.post(base + "/reboot")
    assert_answer("POST", SN + "/reboot", task)
    assert (task["function"], task["status"]) == ("hardReboot", "init")
    done = wait_for_task(client, new_server, task["taskId"])
    assert_answer("GET", SN + "/task/{taskId}", done)
    assert client.get(base + "/task", function="hardReboot") == [task["taskId"]]

    secrets = client.post(base + "/authenticationSecret")
    assert_answer("POST", SN + "/authenticationSecret", secrets)
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        client.post("/dedicated/server/ns9.example/authenticationSecret")
