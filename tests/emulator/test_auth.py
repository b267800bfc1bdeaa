"""Requests are authenticated the way OVH authenticates what its `ovh` client signs."""

from __future__ import annotations

import json
import time

import ovh
import pytest
from ovh_emulator import auth
from ovh_emulator.testing import RunningEmulator, start_emulator

from .api import SERVER, ovh_client, signed_request


def test_signature_matches_the_ovh_client_test_vector() -> None:
    assert (
        auth.signature(
            "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk",
            "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY",
            "GET",
            "https://eu.api.ovh.com/1.0/auth",
            "",
            "1457018875",
        )
        == "$1$e9556054b6309771395efa467c22e627407461ad"
    )


def test_calls_signed_by_the_ovh_client_are_accepted_with_queries_and_bodies(
    shared_client: ovh.Client, new_server: str
) -> None:
    listed = shared_client.get("/dedicated/server")
    assert listed[:4] == [f"ns{1_000_000 + i}.emulator.ovh" for i in range(1, 5)]
    assert new_server in listed
    tasks = f"/dedicated/server/{new_server}/task"
    assert shared_client.get(tasks, function="reinstallServer", status="done") == []
    task = shared_client.post(f"/dedicated/server/{new_server}/reinstall", operatingSystem="debian12_64")
    assert task["status"] == "init"


def test_auth_time_is_unauthenticated_and_gives_the_emulator_clock(shared_emulator: RunningEmulator) -> None:
    before = int(time.time())
    server_time = ovh_client(shared_emulator).get("/auth/time", _need_auth=False)
    assert before - 1 <= server_time <= int(time.time()) + 1


def test_wrong_application_secret_is_an_invalid_signature(shared_emulator: RunningEmulator) -> None:
    client = ovh_client(shared_emulator, application_secret="not-the-secret")

    with pytest.raises(ovh.exceptions.BadParametersError, match="Invalid signature") as caught:
        client.get(f"/dedicated/server/{SERVER}")

    assert caught.value.response.json()["errorCode"] == "INVALID_SIGNATURE"
    assert caught.value.query_id


def test_unknown_application_key_is_refused_as_invalid_key(shared_emulator: RunningEmulator) -> None:
    with pytest.raises(ovh.exceptions.InvalidKey, match="This application key is invalid"):
        ovh_client(shared_emulator, application_key="someone-elses-key").get("/dedicated/server")


def test_unknown_consumer_key_is_refused_as_invalid_credential(shared_emulator: RunningEmulator) -> None:
    with pytest.raises(ovh.exceptions.InvalidCredential, match="This credential is not valid") as caught:
        ovh_client(shared_emulator, consumer_key="revoked-consumer-key").get("/dedicated/server")

    assert caught.value.response.json() == {
        "errorCode": "INVALID_CREDENTIAL",
        "httpCode": "403 Forbidden",
        "message": "This credential is not valid",
    }


def test_timestamp_far_from_the_emulator_clock_is_refused(shared_emulator: RunningEmulator) -> None:
    client = ovh_client(shared_emulator)
    client._time_delta = -(auth.MAX_CLOCK_SKEW_SECONDS + 60)  # a client clock that drifted

    with pytest.raises(ovh.exceptions.BadParametersError, match="Query out of time"):
        client.get("/dedicated/server")

    client._time_delta = -(auth.MAX_CLOCK_SKEW_SECONDS - 60)
    assert SERVER in client.get("/dedicated/server")


def test_unsigned_call_must_log_in_first(shared_emulator: RunningEmulator) -> None:
    with pytest.raises(ovh.exceptions.APIError, match="You must login first") as caught:
        ovh_client(shared_emulator).get("/dedicated/server", _need_auth=False)

    assert caught.value.response.status_code == 401


def test_body_different_from_the_signed_one_is_refused(
    shared_emulator: RunningEmulator, new_server: str
) -> None:
    signed = json.dumps({"operatingSystem": "debian12_64"}, separators=(",", ":"))
    sent = json.dumps({"operatingSystem": "win2022-std_64"}, separators=(",", ":"))
    path = f"/dedicated/server/{new_server}/reinstall"

    tampered = signed_request(shared_emulator, "POST", path, sent, signed_body=signed)
    genuine = signed_request(shared_emulator, "POST", path, signed)

    assert (tampered.status_code, tampered.json()["errorCode"]) == (400, "INVALID_SIGNATURE")
    assert genuine.status_code == 200
    assert shared_emulator.server(new_server)["installs"][0]["operatingSystem"] == "debian12_64"


def test_query_string_is_part_of_the_signature(shared_emulator: RunningEmulator) -> None:
    path = f"/dedicated/server/{SERVER}/task"
    url = shared_emulator.url + path
    now = str(int(time.time()))
    signature_without_query = auth.signature(
        shared_emulator.application_secret, shared_emulator.consumer_key, "GET", url, "", now
    )

    answer = signed_request(
        shared_emulator, "GET", path + "?status=done", headers={"X-Ovh-Signature": signature_without_query}
    )

    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "INVALID_SIGNATURE"


def test_credentials_are_configurable_and_the_defaults_then_refused(test_images: object) -> None:
    custom = ["--application-key", "ak-1", "--application-secret", "as-1", "--consumer-key", "ck-1"]
    with start_emulator(servers=1, extra_args=custom) as emulator:
        assert (emulator.application_key, emulator.application_secret, emulator.consumer_key) == (
            "ak-1",
            "as-1",
            "ck-1",
        )
        assert ovh_client(emulator).get("/dedicated/server") == [SERVER]
        with pytest.raises(ovh.exceptions.InvalidKey):
            ovh_client(emulator, application_key=auth.DEFAULT_APPLICATION_KEY).get("/dedicated/server")


def test_every_answer_carries_a_query_id(shared_emulator: RunningEmulator) -> None:
    answers = [
        signed_request(shared_emulator, "GET", "/dedicated/server"),
        signed_request(shared_emulator, "GET", "/dedicated/server/unknown.example"),
        signed_request(shared_emulator, "GET", "/dedicated/server", timestamp=0),
        signed_request(shared_emulator, "GET", "/no/such/route"),
    ]

    assert [answer.status_code for answer in answers] == [200, 404, 400, 404]
    query_ids = [answer.headers.get("X-OVH-QUERYID") for answer in answers]
    assert all(query_ids) and len(set(query_ids)) == len(query_ids)
    assert all(isinstance(answer.json(), (dict, list)) for answer in answers)
