"""What the emulator prints and counts: a URL line for scripts, a line per request without secrets, stats."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import ovh
import pytest
from ovh_emulator.testing import RunningEmulator, start_emulator

from .api import SERVER, byoi_body, ovh_client, reinstall, signed_request, wait_for_task


def test_console_shows_the_url_then_requests_without_any_secret(images_dir: Path) -> None:
    with start_emulator(
        servers=1, speed=2000, images=images_dir, images_auth=("builder", "s3cret")
    ) as emulator:
        client = ovh_client(emulator)
        port = emulator.port
        in_url = f"http://builder:s3cret@127.0.0.1:{port}/images/small.raw"
        first = reinstall(client, SERVER, byoi_body(in_url))
        wait_for_task(client, SERVER, first["taskId"])
        basic = "Basic " + base64.b64encode(b"builder:s3cret").decode()
        signed_url = emulator.image_url("small.raw") + "?token=t0ps3cret"
        header = byoi_body(signed_url, httpHeaders={"Authorization": basic})
        second = reinstall(client, SERVER, header)
        assert wait_for_task(client, SERVER, second["taskId"])["status"] == "done"
        emulator.stop()
        lines = list(emulator.output)

    assert lines[0] == f"OVH emulator listening on http://127.0.0.1:{port}/1.0"
    assert any(
        re.search(rf"POST /1.0/dedicated/server/{SERVER}/reinstall 200 .*EU\.emulator\.", line)
        for line in lines
    )
    assert any(f"downloaded http://builder:***@127.0.0.1:{port}/images/small.raw" in line for line in lines)
    assert sum(" GET /images/small.raw 200 " in line for line in lines) == 1
    assert sum(" GET /images/small.raw?*** 200 " in line for line in lines) == 1
    output = "\n".join(lines)
    for secret in (
        "s3cret",
        "t0ps3cret",
        basic.split()[1],
        emulator.application_secret,
        emulator.consumer_key,
        "$1$",
    ):
        assert secret not in output


def test_stats_count_requests_per_method_and_route_template(
    emulator: RunningEmulator, client: ovh.Client
) -> None:
    other = "ns1000002.emulator.ovh"
    for server in (SERVER, other, SERVER):
        client.get(f"/dedicated/server/{server}")
    task = reinstall(client, SERVER, byoi_body(emulator.image_url("small.raw")))
    emulator.wait_for_task(SERVER, task["taskId"])
    client.get(f"/dedicated/server/{SERVER}/task/{task['taskId']}")
    client.get(f"/dedicated/server/{SERVER}/task", function="reinstallServer")
    signed_request(emulator, "GET", "/dedicated/server/unknown.example/task")
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        client.get("/no/such/route")
    emulator.server(SERVER)  # the admin interface is not counted

    assert emulator.stats() == {
        "GET /1.0/auth/time": 1,
        "GET /1.0/dedicated/server/{serviceName}": 3,
        "POST /1.0/dedicated/server/{serviceName}/reinstall": 1,
        "GET /1.0/dedicated/server/{serviceName}/task/{taskId}": 1,
        "GET /1.0/dedicated/server/{serviceName}/task": 2,
        "GET /images/{name}": 1,
        "GET (no route)": 1,
    }
