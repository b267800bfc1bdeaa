"""Injected faults: OVH-shaped errors, latency, dropped connections, lost answers, tasks that fail or hang."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ovh
import pytest
from ovh_emulator.testing import EmulatorError, RunningEmulator
from testkit.emulator_records import REINSTALL
from testkit.polling import wait_until

from .api import byoi_body, current_step, install_status, ovh_client, reinstall, wait_for_task

GET_SERVER = "GET /1.0/dedicated/server/{serviceName}"
DEBIAN = {"operatingSystem": "debian12_64"}


def outcome(call: Any) -> int:
    try:
        call()
    except ovh.exceptions.APIError as error:
        return int(error.response.status_code) if error.response is not None else -1
    return 200


def test_error_faults_answer_ovh_errors_for_the_next_calls(faulty: RunningEmulator, new_server: str) -> None:
    client = ovh_client(faulty)
    faulty.set_faults(
        {
            "rules": [
                {"route": GET_SERVER, "serviceName": new_server, "status": 500, "times": 1},
                {"route": GET_SERVER, "serviceName": new_server, "status": 503, "times": 1},
                {"route": GET_SERVER, "serviceName": new_server, "status": 429, "times": 1},
            ]
        }
    )
    errors = []
    for _ in range(3):
        with pytest.raises(ovh.exceptions.APIError) as caught:
            client.get(f"/dedicated/server/{new_server}")
        errors.append(caught.value)

    assert [error.response.status_code for error in errors] == [500, 503, 429]
    assert [error.response.json()["message"] for error in errors] == [
        "Internal server error",
        "Service is temporarily unavailable",
        "Too many requests, please retry later",
    ]
    assert all(error.query_id for error in errors)
    assert errors[2].response.headers["Retry-After"] == "1"
    assert client.get(f"/dedicated/server/{new_server}")["name"] == new_server
    assert [rule["fired"] for rule in faulty.admin("GET", "faults")["rules"]] == [1, 1, 1]


def test_rate_faults_are_reproducible_with_the_same_seed(faulty: RunningEmulator, new_server: str) -> None:
    client = ovh_client(faulty)
    spec = {
        "seed": 7,
        "rules": [{"route": GET_SERVER, "serviceName": new_server, "status": 503, "rate": 0.5}],
    }

    runs = []
    for _ in range(2):
        faulty.set_faults(spec)
        runs.append([outcome(lambda: client.get(f"/dedicated/server/{new_server}")) for _ in range(30)])

    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}


def test_latency_delays_answers_of_the_matching_route_only(faulty: RunningEmulator, new_server: str) -> None:
    def client_waiting(seconds: float) -> ovh.Client:
        return ovh.Client(
            endpoint=f"emulator-{faulty.port}",
            application_key=faulty.application_key,
            application_secret=faulty.application_secret,
            consumer_key=faulty.consumer_key,
            timeout=(30, seconds),
        )

    ovh_client(faulty)  # registers the endpoint
    faulty.set_faults({"rules": [{"route": GET_SERVER, "serviceName": new_server, "latency": 60}]})

    # No answer can come before the latency is over, however fast the machine.
    with pytest.raises(ovh.exceptions.HTTPError, match="Low HTTP request failed"):
        client_waiting(2).get(f"/dedicated/server/{new_server}")
    # Half the latency: only a delayed answer misses it, however slow the machine.
    assert new_server in client_waiting(30).get("/dedicated/server")


def test_hold_parks_matching_calls_until_the_test_releases_them(
    faulty: RunningEmulator, new_server: str
) -> None:
    faulty.set_faults(
        {
            "rules": [
                {"route": GET_SERVER, "serviceName": new_server, "hold": True, "times": 2},
                {"route": REINSTALL, "serviceName": new_server, "hold": True, "status": 503, "times": 1},
            ]
        }
    )
    with ThreadPoolExecutor(max_workers=3) as pool:
        reads = [pool.submit(ovh_client(faulty).get, f"/dedicated/server/{new_server}") for _ in range(2)]
        refused = pool.submit(
            outcome, lambda: reinstall(ovh_client(faulty), new_server, {"operatingSystem": "debian12_64"})
        )
        faulty.wait_until_held(2, rule=0)
        faulty.wait_until_held(1, rule=1)

        # Held calls wait for the test, not for a clock: other routes answer meanwhile.
        assert new_server in ovh_client(faulty).get("/dedicated/server")
        assert not any(call.done() for call in (*reads, refused))
        assert faulty.release(rule=0) == 2
        assert [call.result(timeout=30)["name"] for call in reads] == [new_server, new_server]
        assert not refused.done()
        assert faulty.release() == 1
        assert refused.result(timeout=30) == 503

    assert ovh_client(faulty).get(f"/dedicated/server/{new_server}")["name"] == new_server, "times exhausted"
    assert [(rule["fired"], rule["held"]) for rule in faulty.admin("GET", "faults")["rules"]] == [
        (2, 0),
        (1, 0),
    ]
    assert ovh_client(faulty).get(f"/dedicated/server/{new_server}/task") == [], (
        "the held 503 processed nothing"
    )


def test_replacing_the_faults_releases_the_calls_they_held(faulty: RunningEmulator, new_server: str) -> None:
    faulty.set_faults({"rules": [{"route": GET_SERVER, "serviceName": new_server, "hold": True}]})
    with ThreadPoolExecutor(max_workers=1) as pool:
        read = pool.submit(ovh_client(faulty).get, f"/dedicated/server/{new_server}")
        faulty.wait_until_held(1)

        faulty.set_faults({})

        assert read.result(timeout=30)["name"] == new_server


def test_hold_at_step_parks_an_install_that_makes_no_request_until_released(
    faulty: RunningEmulator, new_server: str
) -> None:
    client = ovh_client(faulty)
    faulty.set_faults({"rules": [{"holdAtStep": "Checking hardware", "serviceName": new_server, "times": 1}]})
    theirs = faulty.reinstall_out_of_band(new_server, "ubuntu2404-server_64")
    faulty.wait_until_held(1)

    assert current_step(client, new_server) == "Checking hardware"
    assert client.get(f"/dedicated/server/{new_server}/task/{theirs['taskId']}")["status"] == "doing"
    # The hold is the server's: another server installs from start to end meanwhile.
    other = "ns2999002.emulator.ovh"
    faulty.add_server(other)
    assert wait_for_task(client, other, reinstall(client, other, DEBIAN)["taskId"])["status"] == "done"
    assert current_step(client, new_server) == "Checking hardware"
    assert client.get(f"/dedicated/server/{new_server}")["os"] == "debian12_64"

    assert faulty.release() == 1
    assert wait_for_task(client, new_server, theirs["taskId"])["status"] == "done"
    assert client.get(f"/dedicated/server/{new_server}")["os"] == "ubuntu2404-server_64"
    [rule] = faulty.admin("GET", "faults")["rules"]
    assert (rule["holdAtStep"], rule["fired"], rule["held"], rule["times"]) == ("Checking hardware", 1, 0, 0)


def test_hold_at_todo_keeps_the_task_cancellable(faulty: RunningEmulator, new_server: str) -> None:
    client = ovh_client(faulty)
    faulty.set_faults({"rules": [{"holdAtStep": "todo", "serviceName": new_server}]})
    waiting = reinstall(client, new_server, DEBIAN)
    faulty.wait_until_held(1)

    assert client.get(f"/dedicated/server/{new_server}/task/{waiting['taskId']}")["status"] == "todo"
    client.post(f"/dedicated/server/{new_server}/task/{waiting['taskId']}/cancel")

    assert client.get(f"/dedicated/server/{new_server}/task/{waiting['taskId']}")["status"] == "cancelled"
    assert faulty.held(0) == 0, "a cancelled install is held no more"


def test_dropped_connection_gets_no_answer_and_the_call_is_not_processed(
    faulty: RunningEmulator, new_server: str
) -> None:
    client = ovh_client(faulty)
    faulty.set_faults({"rules": [{"route": REINSTALL, "drop": True, "times": 1}]})

    with pytest.raises(ovh.exceptions.HTTPError) as caught:
        reinstall(client, new_server, {"operatingSystem": "debian12_64"})

    assert "Connection aborted" in str(caught.value.args[1])
    assert client.get(f"/dedicated/server/{new_server}/task") == []
    assert reinstall(client, new_server, {"operatingSystem": "debian12_64"})["status"] == "init"


def test_lost_answer_of_an_accepted_reinstall(faulty: RunningEmulator, new_server: str) -> None:
    client = ovh_client(faulty)
    faulty.set_faults(
        {"rules": [{"route": REINSTALL, "serviceName": new_server, "dropAnswer": True, "times": 1}]}
    )

    with pytest.raises(ovh.exceptions.HTTPError):
        reinstall(client, new_server, byoi_body(faulty.image_url("small.raw")))

    (task_id,) = client.get(f"/dedicated/server/{new_server}/task", function="reinstallServer")
    with pytest.raises(ovh.exceptions.BadParametersError, match="already running"):
        reinstall(client, new_server, byoi_body(faulty.image_url("small.raw")))
    assert wait_for_task(client, new_server, task_id)["status"] == "done"
    assert client.get(f"/dedicated/server/{new_server}")["os"] == "byoi_64"


def test_task_fault_ends_the_install_in_ovh_error(faulty: RunningEmulator, new_server: str) -> None:
    client = ovh_client(faulty)
    faulty.set_faults({"rules": [{"task": "ovhError", "serviceName": new_server, "times": 1}]})

    failed = reinstall(client, new_server, byoi_body(faulty.image_url("small.raw")))
    task = wait_for_task(client, new_server, failed["taskId"])

    assert task["status"] == "ovhError"
    (step,) = [s for s in install_status(client, new_server)["progress"] if s["status"] == "error"]
    assert step["error"] == task["comment"]
    assert "OVHcloud" in task["comment"]
    retried = reinstall(client, new_server, byoi_body(faulty.image_url("small.raw")))
    assert wait_for_task(client, new_server, retried["taskId"])["status"] == "done"


def test_task_fault_makes_an_install_that_never_finishes(faulty: RunningEmulator, new_server: str) -> None:
    client = ovh_client(faulty)
    faulty.set_faults({"rules": [{"task": "neverFinish", "serviceName": new_server}]})
    stuck = reinstall(client, new_server, {"operatingSystem": "debian12_64"})
    wait_until(lambda: current_step(client, new_server) == "Waiting for services to be up", what="the hang")

    # A whole install on another server starts after the hang began, and ends while the hang goes on.
    other = "ns2999001.emulator.ovh"
    faulty.add_server(other)
    reference = reinstall(client, other, {"operatingSystem": "debian12_64"})
    assert wait_for_task(client, other, reference["taskId"])["status"] == "done"

    assert client.get(f"/dedicated/server/{new_server}/task/{stuck['taskId']}")["status"] == "doing"
    assert current_step(client, new_server) == "Waiting for services to be up"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"rules": [{"route": GET_SERVER, "status": 418}]},
            "rules.0.status: 418 is not one of [404, 429, 500, 503]",
        ),
        (
            {"rules": [{"route": GET_SERVER}]},
            "rules.0: a rule needs one of status, drop, dropAnswer, task, taskStatus, latency, hold, "
            "holdAtStep",
        ),
        ({"rules": [{"status": 500, "drop": True}]}, "rules.0: a rule does only one of"),
        ({"rules": [{"route": "reinstall", "status": 500}]}, "rules.0.route: 'reinstall' does not match"),
        ({"rules": [{"status": 500, "rate": 2}]}, "rules.0.rate: 2 is greater than the maximum of 1"),
        ({"seeds": 1}, "spec: Additional properties are not allowed ('seeds' was unexpected)"),
        (
            {"rules": [{"holdAtStep": "Checking hardware", "route": GET_SERVER, "status": 503}]},
            "rules.0: a holdAtStep rule parks installs, not calls: it takes only holdAtStep, serviceName",
        ),
        (
            {"rules": [{"holdAtStep": "Booting"}]},
            "rules.0.holdAtStep: 'Booting' is not one of ['init', 'todo', 'Checking BIOS version'",
        ),
    ],
)
def test_invalid_fault_spec_is_refused_naming_the_field(
    faulty: RunningEmulator, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(EmulatorError, match="answered 400") as caught:
        faulty.set_faults(spec)

    assert message in str(caught.value)
    assert faulty.admin("GET", "faults")["rules"] == []
