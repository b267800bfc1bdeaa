"""State lives in SQLite: servers, tasks and installs survive a restart, and a running install resumes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ovh
import pytest
from ovh_emulator.testing import RunningEmulator, start_emulator
from testkit.emulator_records import sha256

from .api import (
    SERVER,
    byoi_body,
    current_step,
    install_status,
    ovh_client,
    reinstall,
    wait_for_task,
)


@pytest.fixture
def emulator(images_dir: Path) -> Iterator[RunningEmulator]:
    """A fresh emulator of the test's own: restarting it must not disturb other tests."""
    with start_emulator(servers=1, speed=2000, images=images_dir) as running:
        yield running


def test_servers_tasks_and_installs_survive_a_restart(emulator: RunningEmulator, client: ovh.Client) -> None:
    emulator.add_server("ns2999999.emulator.ovh", diskSizeBytes=100 * 10**9)
    task = reinstall(client, SERVER, byoi_body(emulator.image_url("small.raw")))
    wait_for_task(client, SERVER, task["taskId"])
    before = emulator.server(SERVER)
    port = emulator.port

    emulator.restart()

    client = ovh_client(emulator)
    assert emulator.port == port
    assert emulator.server(SERVER) == before
    assert client.get(f"/dedicated/server/{SERVER}")["os"] == "byoi_64"
    assert client.get(f"/dedicated/server/{SERVER}/task/{task['taskId']}")["status"] == "done"
    assert "ns2999999.emulator.ovh" in client.get("/dedicated/server")
    hardware = client.get("/dedicated/server/ns2999999.emulator.ovh/specifications/hardware")
    assert hardware["diskGroups"][0]["diskSize"] == {"unit": "GB", "value": 100}
    assert reinstall(client, SERVER, {"operatingSystem": "debian12_64"})["taskId"] > task["taskId"]


@pytest.mark.parametrize("crash", [False, True], ids=["graceful stop", "crash"])
def test_install_running_when_the_emulator_stops_resumes_from_its_step(
    emulator: RunningEmulator, client: ovh.Client, test_images: dict[str, Path], crash: bool
) -> None:
    # The image server holds the download, so the install is downloading when the emulator stops.
    emulator.set_faults({"rules": [{"route": "GET /images/{name}", "hold": True}]})
    task = reinstall(client, SERVER, byoi_body(emulator.image_url("small.raw")))
    emulator.wait_until_held(1)
    assert current_step(client, SERVER) == "Downloading OS image"
    done_before = [s["comment"] for s in install_status(client, SERVER)["progress"] if s["status"] == "done"]

    emulator.restart(crash=crash)

    client = ovh_client(emulator)
    assert wait_for_task(client, SERVER, task["taskId"])["status"] == "done"
    view = emulator.server(SERVER)
    assert view["os"] == "byoi_64"
    assert view["diskSha256"] == sha256(test_images["small.raw"])
    assert len(view["installs"]) == 1
    assert done_before[:2] == ["Checking BIOS version", "Rebooting server on the installation environment"]
    # The image was downloaded again after the restart (faults do not survive it).
    assert emulator.stats()["GET /images/{name}"] == 1
