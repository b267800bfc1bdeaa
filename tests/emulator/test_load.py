"""200 servers installing at once while clients poll them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ovh_emulator.testing import RunningEmulator, start_emulator

from .api import byoi_body, current_step, ovh_client, reinstall
from .test_install import raw_sha256

SERVERS = 200
CLIENTS = 20
# Clients pause between rounds of polls, as real ones do (1 s is 10 minutes of emulated time at speed 600).
POLL_INTERVAL = 1.0


def install_and_poll(emulator: RunningEmulator, servers: list[str]) -> dict[str, str]:
    """One client (its own: OVH's client is not meant for threads) installing and polling its servers."""
    client = ovh_client(emulator)
    body = byoi_body(emulator.image_url("small.qcow2"), "qcow2")
    tasks = {server: reinstall(client, server, body)["taskId"] for server in servers}
    statuses: dict[str, str] = {}
    while len(statuses) < len(servers):
        time.sleep(POLL_INTERVAL)
        running = [server for server in servers if server not in statuses]
        current_step(client, running[0])  # the progress of one install per round, as a progress bar would
        for server in running:
            task = client.get(f"/dedicated/server/{server}/task/{tasks[server]}")
            if task["status"] not in ("init", "todo", "doing"):
                statuses[server] = task["status"]
    return statuses


def test_two_hundred_concurrent_installs_all_finish(
    images_dir: Path, test_images: dict[str, Path], tmp_path: Path
) -> None:
    with start_emulator(servers=SERVERS, speed=600, images=images_dir) as emulator:
        names = ovh_client(emulator).get("/dedicated/server")
        groups = [names[index::CLIENTS] for index in range(CLIENTS)]
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            results = list(pool.map(lambda group: install_and_poll(emulator, group), groups))

        statuses = {server: status for result in results for server, status in result.items()}
        assert len(statuses) == SERVERS
        assert set(statuses.values()) == {"done"}
        expected = raw_sha256(test_images["small.qcow2"], tmp_path)
        for server in names[:: SERVERS // 10]:
            assert emulator.server(server)["diskSha256"] == expected
            assert ovh_client(emulator).get(f"/dedicated/server/{server}")["os"] == "byoi_64"
        stats = emulator.stats()
        assert stats["POST /1.0/dedicated/server/{serviceName}/reinstall"] == SERVERS
        assert stats["GET /images/{name}"] == SERVERS
