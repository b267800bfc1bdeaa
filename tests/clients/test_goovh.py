"""OVH's Go client (github.com/ovh/go-ovh, through our program `goovh/`) against the emulator: a signer and
an error parser nobody in this project wrote. Right credentials: signed GETs with query strings and a signed
POST with a BYOI body install an image; a signed PUT and a body-less POST work too. Wrong ones: OVH's status,
error code and query id, as go-ovh reports them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from ovh_emulator.testing import RunningEmulator

from .tools import tool

SERVER = "ns1000001.emulator.ovh"


class GoOvh:
    """One go-ovh client (one process): `call()` sends a request through it and returns what it made of it."""

    def __init__(self, emulator: RunningEmulator, **credentials: str) -> None:
        given = {
            "application-key": emulator.application_key,
            "application-secret": emulator.application_secret,
            "consumer-key": emulator.consumer_key,
            **{name.replace("_", "-"): value for name, value in credentials.items()},
        }
        args = [str(tool("goovh-check")), "-endpoint", emulator.url]
        for name, value in given.items():
            args += [f"-{name}", value]
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        request: dict[str, Any] = {"method": method, "path": path}
        if body is not None:
            request["body"] = body
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"goovh-check ended: {self.process.stderr.read() if self.process.stderr else ''}"
        answer: dict[str, Any] = json.loads(line)
        assert "failed" not in answer, answer
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture
def goovh(emulator: RunningEmulator) -> Iterator[GoOvh]:
    client = GoOvh(emulator)
    yield client
    client.close()


def byoi(emulator: RunningEmulator, image: str) -> dict[str, Any]:
    return {
        "operatingSystem": "byoi_64",
        "customizations": {
            "hostname": "goovh",
            "imageURL": emulator.image_url(image),
            "imageType": "raw",
            "efiBootloaderPath": "\\efi\\debian\\grubx64.efi",
        },
    }


def test_signed_gets_with_query_strings_and_a_signed_byoi_post_install_an_image(
    emulator: RunningEmulator, goovh: GoOvh
) -> None:
    servers = goovh.call("GET", "/dedicated/server")
    assert servers == {"ok": True, "result": [f"ns{1_000_000 + n}.emulator.ovh" for n in range(1, 5)]}
    tasks = f"/dedicated/server/{SERVER}/task?function=reinstallServer"
    assert goovh.call("GET", tasks) == {"ok": True, "result": []}

    posted = goovh.call("POST", f"/dedicated/server/{SERVER}/reinstall", byoi(emulator, "small.raw"))
    assert posted["ok"], posted
    task = posted["result"]
    assert (task["function"], task["status"]) == ("reinstallServer", "init")
    assert goovh.call("GET", tasks)["result"] == [task["taskId"]]
    # A query string with two parameters, signed as part of the URL.
    listed = goovh.call("GET", f"/dedicated/server/{SERVER}/task?function=reinstallServer&status=init")
    assert listed["ok"], listed

    emulator.wait_for_task(SERVER, task["taskId"])
    done = goovh.call("GET", f"/dedicated/server/{SERVER}/task/{task['taskId']}")["result"]
    assert done["status"] == "done"
    assert goovh.call("GET", f"/dedicated/server/{SERVER}")["result"]["os"] == "byoi_64"
    install = emulator.server(SERVER)["installs"][-1]
    assert (install["taskId"], install["status"], install["imageURL"]) == (
        task["taskId"],
        "done",
        emulator.image_url("small.raw"),
    )
    # A signed PUT with a body, and a signed POST without one.
    assert goovh.call("PUT", f"/dedicated/server/{SERVER}", {"monitoring": False}) == {"ok": True}
    assert goovh.call("GET", f"/dedicated/server/{SERVER}")["result"]["monitoring"] is False
    reboot = goovh.call("POST", f"/dedicated/server/{SERVER}/reboot")
    assert reboot["ok"] and reboot["result"]["function"] == "hardReboot", reboot

    # go-ovh fetched the server's time once (unsigned), then signed everything else.
    stats = emulator.stats()
    assert stats["GET /1.0/auth/time"] == 1
    assert not any("(no route)" in route for route in stats)


def assert_query_id(emulator: RunningEmulator, error: dict[str, Any]) -> None:
    """go-ovh kept the X-OVH-QUERYID the emulator sent and shows it in its error text (OVH support asks)."""
    query_id = error["queryId"]
    assert query_id.startswith("EU.emulator.")
    assert f"(X-OVH-Query-Id: {query_id})" in error["text"]
    assert any(line.endswith(" " + query_id) for line in emulator.output)


@pytest.mark.parametrize(
    ("credentials", "status", "error_code", "message"),
    [
        ({"application_secret": "wrong"}, 400, "INVALID_SIGNATURE", "Invalid signature"),
        ({"application_key": "unknown"}, 403, "INVALID_KEY", "This application key is invalid"),
        ({"consumer_key": "revoked"}, 403, "INVALID_CREDENTIAL", "This credential is not valid"),
    ],
)
def test_wrong_credentials_get_ovhs_auth_errors_and_a_query_id(
    emulator: RunningEmulator, credentials: dict[str, str], status: int, error_code: str, message: str
) -> None:
    client = GoOvh(emulator, **credentials)
    try:
        for method, path, body in [
            ("GET", f"/dedicated/server/{SERVER}/task?function=reinstallServer", None),
            ("POST", f"/dedicated/server/{SERVER}/reinstall", byoi(emulator, "small.raw")),
        ]:
            answer = client.call(method, path, body)
            assert not answer["ok"]
            error = answer["error"]
            # go-ovh reads `class` and `message` only; the auth layer's code is in the raw body.
            assert (error["code"], error["class"], error["message"]) == (status, "", message)
            assert answer["raw"]["errorCode"] == error_code
            assert_query_id(emulator, error)
    finally:
        client.close()
    assert emulator.server(SERVER)["installs"] == []


def test_business_errors_carry_ovhs_class_message_and_query_id(
    emulator: RunningEmulator, goovh: GoOvh
) -> None:
    unknown = goovh.call("GET", "/dedicated/server/ns404.example.ovh")
    assert unknown["error"]["code"] == 404
    assert unknown["error"]["class"] == "Client::NotFound"
    assert unknown["error"]["message"] == (
        "The requested object (serviceName = ns404.example.ovh) does not exist"
    )
    assert_query_id(emulator, unknown["error"])
    assert (
        goovh.call("GET", "/dedicated/server/ns404.example.ovh/task?function=reinstallServer")["error"][
            "code"
        ]
        == 404
    )

    body = byoi(emulator, "small.raw")
    body["customizations"]["imageType"] = "vhd"
    refused = goovh.call("POST", f"/dedicated/server/{SERVER}/reinstall", body)["error"]
    assert (refused["code"], refused["class"]) == (400, "Client::BadRequest")
    assert refused["message"].startswith(
        "[customizations.imageType] Given data (vhd) does not belong to the enumeration"
    )

    first = goovh.call("POST", f"/dedicated/server/{SERVER}/reinstall", byoi(emulator, "small.raw"))
    assert first["ok"], first
    busy = goovh.call("POST", f"/dedicated/server/{SERVER}/reinstall", byoi(emulator, "small.raw"))["error"]
    assert (busy["code"], busy["class"]) == (400, "Client::BadRequest::TaskAlreadyExists")
    assert_query_id(emulator, busy)
