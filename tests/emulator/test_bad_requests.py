"""Requests no client should send get the answer OVH gives to a bad request, never a 500.

OVH's client decodes every error body as JSON and shows its `message`: an emulator that answers 500 to a
mistake (or crashes on it) hides the mistake behind "Internal server error". Each case here once did.
"""

from __future__ import annotations

import pytest
import requests
from ovh_emulator.testing import RunningEmulator

from .api import byoi_body, ovh_client, reinstall, signed_request, wait_for_task

# Deeper than Python's JSON parser can recurse (a RecursionError, not a syntax error).
DEEP_JSON = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "name",
    ["x%00.txt", "a" * 300, "/".join(["a" * 200] * 30), "..%2F..%2Fetc%2Fpasswd"],
    ids=["NUL byte", "name too long", "path too long", "outside the folder"],
)
def test_image_names_no_file_can_have_are_not_found(shared_emulator: RunningEmulator, name: str) -> None:
    answer = requests.get(f"{shared_emulator.base_url}/images/{name}", timeout=10)

    assert answer.status_code == 404
    assert answer.json()["message"].startswith("no image ")


@pytest.mark.parametrize(
    "timestamp",
    ["9" * 4400, "¹²³", "\uff11\uff12\uff13"],
    ids=["4400 digits", "superscript digits", "wide digits"],
)
def test_timestamps_that_are_not_plain_numbers_are_out_of_time(
    shared_emulator: RunningEmulator, timestamp: str
) -> None:
    # As UTF-8 bytes: that is how the header reaches the emulator's parser from any client.
    answer = signed_request(
        shared_emulator,
        "GET",
        "/dedicated/server",
        timestamp=0,
        headers={"X-Ovh-Timestamp": timestamp.encode()},  # type: ignore[dict-item]
    )

    assert answer.status_code == 400
    assert answer.json() == {
        "errorCode": "QUERY_TIME_OUT",
        "httpCode": "400 Bad Request",
        "message": "Query out of time",
    }


def test_a_request_that_is_not_valid_http_is_refused_in_one_log_line(
    shared_emulator: RunningEmulator,
) -> None:
    lines_before = len(shared_emulator.output)

    answer = signed_request(shared_emulator, "GET", "/dedicated/server", headers={"X-Ovh-Timestamp": "\x08"})

    assert answer.status_code == 400
    printed = shared_emulator.output[lines_before:]
    assert any("malformed HTTP request refused with 400" in line for line in printed), printed
    assert not any("Traceback" in line for line in printed), printed


@pytest.mark.parametrize(
    "task_id",
    ["1" * 30, "9223372036854775808", "%C2%B2", "%EF%BC%91"],
    ids=["30 digits", "2^63", "superscript two", "wide one"],
)
def test_task_ids_that_no_task_can_have_are_bad_requests(
    shared_emulator: RunningEmulator, new_server: str, task_id: str
) -> None:
    answer = signed_request(shared_emulator, "GET", f"/dedicated/server/{new_server}/task/{task_id}")

    assert answer.status_code == 400
    assert answer.json()["class"] == "Client::BadRequest"
    assert answer.json()["message"].endswith("is not of type integer")


def test_the_largest_task_id_is_merely_not_found(shared_emulator: RunningEmulator, new_server: str) -> None:
    answer = signed_request(shared_emulator, "GET", f"/dedicated/server/{new_server}/task/{2**63 - 1}")

    assert answer.status_code == 404
    assert answer.json()["class"] == "Client::NotFound"


def test_deeply_nested_reinstall_body_is_invalid_json(
    shared_emulator: RunningEmulator, new_server: str
) -> None:
    answer = signed_request(shared_emulator, "POST", f"/dedicated/server/{new_server}/reinstall", DEEP_JSON)

    assert answer.status_code == 400
    assert answer.json() == {
        "class": "Client::BadRequest",
        "message": "Invalid JSON received: nested more than 32 levels deep",
    }
    assert ovh_client(shared_emulator).get(f"/dedicated/server/{new_server}/task") == []


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "faults"), ("POST", "servers")], ids=["faults", "servers"]
)
def test_deeply_nested_admin_bodies_are_refused_with_a_message(
    shared_emulator: RunningEmulator, method: str, path: str
) -> None:
    answer = requests.request(
        method, f"{shared_emulator.base_url}/_emulator/{path}", data=DEEP_JSON, timeout=10
    )

    assert answer.status_code == 400
    assert answer.json() == {"message": "the body is not JSON: nested more than 32 levels deep"}


@pytest.mark.parametrize("size", [10**40, 2**63, 17 * 10**12], ids=["40 digits", "2^63", "17 TB"])
def test_disk_sizes_beyond_what_a_disk_file_holds_are_refused(
    shared_emulator: RunningEmulator, size: int
) -> None:
    answer = requests.post(
        f"{shared_emulator.base_url}/_emulator/servers",
        json={"serviceName": "huge.emulator.ovh", "diskSizeBytes": size},
        timeout=10,
    )

    assert answer.status_code == 400
    assert answer.json()["message"].startswith(f"diskSizeBytes: {size} is greater than the maximum")
    assert "huge.emulator.ovh" not in shared_emulator.admin("GET", "servers")


@pytest.mark.parametrize(
    "url", ["{base}/_emulator/stats", "http://localhost:{port}/_emulator/faults"], ids=["by IP", "by name"]
)
def test_the_installer_downloads_nothing_from_the_admin_interface(
    shared_emulator: RunningEmulator, new_server: str, url: str
) -> None:
    client = ovh_client(shared_emulator)
    image_url = url.format(base=shared_emulator.base_url, port=shared_emulator.port)

    task = reinstall(client, new_server, byoi_body(image_url))

    ended = wait_for_task(client, new_server, task["taskId"])
    assert (ended["status"], ended["comment"]) == (
        "customerError",
        f"Could not download image located: {image_url}",
    )
    path = image_url.split(str(shared_emulator.port), 1)[1]
    assert any(f"GET {path} 403" in line for line in shared_emulator.output)
