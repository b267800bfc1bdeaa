"""Each row of the BYOI guide's "Common customer errors", reproduced with a real image or URL.

A failed install ends its task in `customerError` with the guide's exact text in the task's comment and in the
failing step's error, and leaves the disk erased when it failed after "Cleaning Partitioning".
"""

from __future__ import annotations

import itertools
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ovh
import pytest
from ovh_emulator.testing import RunningEmulator, start_emulator
from testkit.emulator_records import sha256

from .api import SERVER, byoi_body, install_status, ovh_client, reinstall, wait_for_task

GIB = 1024**3
_names = itertools.count(3_000_001)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Case:
    image: str
    image_type: str
    expected: Callable[[RunningEmulator, dict[str, Path], str], str]
    server: dict[str, int] = field(default_factory=dict)
    customizations: Callable[[dict[str, Path]], dict[str, Any]] = lambda images: {}
    url: Callable[[RunningEmulator, str], str] = lambda emulator, image: emulator.image_url(image)
    failing_step: str = "Downloading OS image"


CASES = {
    "checksum without its type": Case(
        "small.raw",
        "raw",
        lambda emulator, images, url: "Please provide checkSum AND checkSumType or none of them",
        customizations=lambda images: {"imageCheckSum": sha256(images["small.raw"])},
        failing_step="Checking installation parameters",
    ),
    "checksum type without the checksum": Case(
        "small.raw",
        "raw",
        lambda emulator, images, url: "Please provide checkSum AND checkSumType or none of them",
        customizations=lambda images: {"imageCheckSumType": "sha256"},
        failing_step="Checking installation parameters",
    ),
    "raw image declared qcow2": Case(
        "debian.raw",
        "qcow2",
        lambda emulator, images, url: (
            "image provided format is raw which does not match expected qcow2 format"
        ),
        failing_step="Checking OS image",
    ),
    "qcow2 image declared raw": Case(
        "debian.qcow2",
        "raw",
        lambda emulator, images, url: (
            "image provided format is qcow2 which does not match expected raw format"
        ),
        failing_step="Checking OS image",
    ),
    "raw image without partition table": Case(
        "no-table.raw",
        "raw",
        lambda emulator, images, url: (
            "image provided format is not of type raw because no partition table was found. "
            "It seems to contain: "
            + subprocess.run(
                ["file", "-b", str(images["no-table.raw"])], capture_output=True, text=True
            ).stdout.strip()
        ),
        failing_step="Checking OS image",
    ),
    "raw image larger than the disk": Case(
        "debian.raw",
        "raw",
        lambda emulator, images, url: (
            "image provided has a size of 67108864 bytes which is larger than device of 32000000 bytes"
        ),
        server={"diskSizeBytes": 32_000_000},
        failing_step="Checking OS image",
    ),
    "qcow2 image whose virtual size exceeds the disk": Case(
        "debian.qcow2",
        "qcow2",
        lambda emulator, images, url: (
            "image provided has a size of 67108864 bytes which is larger than device of 32000000 bytes"
        ),
        server={"diskSizeBytes": 32_000_000},
        failing_step="Checking OS image",
    ),
    "image larger than memory minus 3 GiB": Case(
        "debian.raw",
        "raw",
        lambda emulator, images, url: "Could not download, raw image is too big to download in memory.",
        server={"memoryBytes": 3 * GIB + 32 * 1024**2},
    ),
    "wrong checksum": Case(
        "small.qcow2",
        "qcow2",
        lambda emulator, images, url: (
            f"Bad checkSumType for downloaded file, got: {sha256(images['small.qcow2'])} "
            f"while expecting {sha256(images['small.raw'])}."
        ),
        customizations=lambda images: {
            "imageCheckSum": sha256(images["small.raw"]),
            "imageCheckSumType": "sha256",
        },
    ),
    "image not found": Case(
        "missing.raw",
        "raw",
        lambda emulator, images, url: f"Could not download image located: {url}",
    ),
    "unreachable URL": Case(
        "debian.raw",
        "raw",
        lambda emulator, images, url: f"Could not download image located: {url}",
        url=lambda emulator, image: f"http://127.0.0.1:{closed_port()}/{image}",
    ),
    "corrupt qcow2 that cannot be written": Case(
        "corrupt.qcow2",
        "qcow2",
        lambda emulator, images, url: "Can't write qcow2 on disk",
        failing_step="Writing OS image on disk",
    ),
}


def assert_failed_with(client: ovh.Client, server: str, task_id: int, text: str, step: str) -> None:
    task = wait_for_task(client, server, task_id)
    assert (task["status"], task["comment"]) == ("customerError", text)
    progress = install_status(client, server)["progress"]
    failed = [s for s in progress if s["status"] == "error"]
    assert failed == [{"comment": step, "status": "error", "error": text}]
    after = progress[progress.index(failed[0]) + 1 :]
    assert {s["status"] for s in after} == {"todo"}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_install_fails_with_the_guides_text(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, test_images: dict[str, Path], case: Case
) -> None:
    server = f"ns{next(_names)}.emulator.ovh"
    shared_emulator.add_server(server, **case.server)
    url = case.url(shared_emulator, case.image)
    body = byoi_body(url, case.image_type, **case.customizations(test_images))

    task = reinstall(shared_client, server, body)

    text = case.expected(shared_emulator, test_images, url)
    assert_failed_with(shared_client, server, task["taskId"], text, case.failing_step)
    view = shared_emulator.server(server)
    assert view["os"] == "debian12_64"
    assert view["diskSha256"] is None
    assert view["installs"][-1]["status"] == "customerError"


def test_download_refused_with_401_fails_and_http_headers_fix_it(
    test_images: dict[str, Path], images_dir: Path
) -> None:
    with start_emulator(
        servers=1, speed=2000, images=images_dir, images_auth=("builder", "s3cret")
    ) as emulator:
        client = ovh_client(emulator)
        url = emulator.image_url("small.raw")

        refused = reinstall(client, SERVER, byoi_body(url))
        assert_failed_with(
            client,
            SERVER,
            refused["taskId"],
            f"Could not download image located: {url}",
            "Downloading OS image",
        )

        headers = {"Authorization": "Basic YnVpbGRlcjpzM2NyZXQ="}  # builder:s3cret
        accepted = reinstall(client, SERVER, byoi_body(url, httpHeaders=headers))
        assert wait_for_task(client, SERVER, accepted["taskId"])["status"] == "done"
        assert emulator.server(SERVER)["diskSha256"] == sha256(test_images["small.raw"])


def test_failed_progress_stays_readable_until_the_next_install(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    failed = reinstall(shared_client, new_server, byoi_body(shared_emulator.image_url("missing.raw")))
    wait_for_task(shared_client, new_server, failed["taskId"])
    assert any(step["status"] == "error" for step in install_status(shared_client, new_server)["progress"])

    shared_emulator.set_faults({"rules": [{"route": "GET /images/{name}", "hold": True, "times": 1}]})
    fixed = reinstall(shared_client, new_server, byoi_body(shared_emulator.image_url("small.raw")))
    shared_emulator.wait_until_held(1)

    # A live payload shows "" where a step has no error.
    assert all(step["error"] == "" for step in install_status(shared_client, new_server)["progress"])
    shared_emulator.set_faults({})
    assert wait_for_task(shared_client, new_server, fixed["taskId"])["status"] == "done"
    with pytest.raises(ovh.exceptions.ResourceNotFoundError):
        install_status(shared_client, new_server)
