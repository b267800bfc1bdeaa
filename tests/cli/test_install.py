"""`ovh-byoi install` end to end against the emulator: each common customer error of OVH's BYOI install (the
catalog in provider/ovh_byoi/errors.py), caught by the preflight before anything is erased, and, with
`--preflight off`, reported from OVH's failed task with the catalog's fix."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from ovh_byoi.errors import fix_for
from ovh_emulator.testing import RunningEmulator
from preflight.conftest import BASIC_AUTH, ImageServer
from testkit.emulator_records import installs
from testkit.polling import wait_until

from .conftest import Outcome, reinstalls_requested

SERVER = "ns1000001.emulator.ovh"
EFI = r"\efi\debian\grubx64.efi"
INSTALL_STATUS = "GET /1.0/dedicated/server/{serviceName}/install/status"
MIB = 1024**2
GIB = 1024**3

Run = Callable[..., Outcome]


def install(run: Run, image_url: str, image_type: str, *extra: str, server: str = SERVER) -> Outcome:
    return run(
        "install",
        server,
        "--image-url",
        image_url,
        "--image-type",
        image_type,
        "--efi-path",
        EFI,
        "--yes",
        *extra,
    )


def test_a_good_image_installs_once(
    ovh_byoi: Run, emulator: RunningEmulator, test_images: dict[str, Path]
) -> None:
    checksum = hashlib.sha512(test_images["debian.qcow2"].read_bytes()).hexdigest()
    # The install waits at its download until the command has asked OVH for its steps there: the step is
    # shown however sparsely the command polls on a busy machine.
    emulator.set_faults(
        {"rules": [{"holdAtStep": "Downloading OS image", "serviceName": SERVER, "times": 1}]}
    )
    outcomes: list[Outcome] = []
    command = threading.Thread(
        target=lambda: outcomes.append(
            install(
                ovh_byoi,
                emulator.image_url("debian.qcow2"),
                "qcow2",
                "--checksum",
                checksum,
                "--preflight",
                "full",
            )
        )
    )
    command.start()
    emulator.wait_until_held(1)
    polls = emulator.stats().get(INSTALL_STATUS, 0)
    wait_until(
        lambda: emulator.stats().get(INSTALL_STATUS, 0) > polls,
        what="a look at the install's steps",
        timeout=60,
    )
    emulator.release()
    command.join(timeout=120)

    [outcome] = outcomes
    assert outcome.exit_code == 0, outcome.output
    assert f"{SERVER} installed" in outcome.stdout
    assert "Downloading OS image" in outcome.stderr  # OVH's steps, as they happen
    assert reinstalls_requested(emulator) == 1
    [entry] = installs(emulator, SERVER)
    assert entry["status"] == "done" and entry["imageURL"] == emulator.image_url("debian.qcow2")
    assert emulator.server(SERVER)["os"] == "byoi_64"


# --- caught before anything is erased -----------------------------------------------------------------------


def _small_server(emulator: RunningEmulator, **fields: int) -> str:
    name = "ns2000001.emulator.ovh"
    emulator.add_server(
        name, **{"diskSizeBytes": 480 * 10**9, "memoryBytes": 64 * GIB, "bootMode": "uefi", **fields}
    )
    return name


def test_preflight_wrong_format(ovh_byoi: Run, emulator: RunningEmulator) -> None:
    outcome = install(ovh_byoi, emulator.image_url("debian.raw"), "qcow2")
    assert_caught(outcome, emulator, "--image-type", "set image_type to raw")


def test_preflight_no_partition_table(ovh_byoi: Run, emulator: RunningEmulator) -> None:
    outcome = install(ovh_byoi, emulator.image_url("no-table.raw"), "raw")
    assert_caught(outcome, emulator, "no partition table", "partition table (MBR or GPT)")


def test_preflight_too_big_for_the_disk(ovh_byoi: Run, emulator: RunningEmulator) -> None:
    server = _small_server(emulator, diskSizeBytes=32 * MIB)
    outcome = install(ovh_byoi, emulator.image_url("debian.raw"), "raw", server=server)
    assert_caught(outcome, emulator, f"server's disk of {32 * MIB} bytes", "diskGroupId", server=server)


def test_preflight_too_big_for_memory(ovh_byoi: Run, emulator: RunningEmulator) -> None:
    server = _small_server(emulator, memoryBytes=3 * GIB + 32 * MIB)
    outcome = install(ovh_byoi, emulator.image_url("debian.raw"), "raw", server=server)
    assert_caught(outcome, emulator, "RAM minus 3 GiB", "reduce the size of the image", server=server)


def test_preflight_wrong_checksum(
    ovh_byoi: Run, emulator: RunningEmulator, test_images: dict[str, Path]
) -> None:
    wrong = hashlib.sha256(test_images["ubuntu.raw"].read_bytes()).hexdigest()
    outcome = install(
        ovh_byoi, emulator.image_url("debian.raw"), "raw", "--checksum", wrong, "--preflight", "full"
    )
    assert_caught(outcome, emulator, "--image-checksum", "checksum of this very image")


def test_preflight_401_on_download(
    ovh_byoi: Run, emulator: RunningEmulator, image_server: ImageServer
) -> None:
    outcome = install(ovh_byoi, image_server.url("debian.raw", prefix="private"), "raw")
    assert_caught(outcome, emulator, "--http-header", "Authorization")


def test_preflight_unreachable_url(ovh_byoi: Run, emulator: RunningEmulator, unused_port: int) -> None:
    outcome = install(ovh_byoi, f"http://127.0.0.1:{unused_port}/debian.raw", "raw")
    assert_caught(outcome, emulator, "Connection refused", "curl")


def test_preflight_compressed_file(
    ovh_byoi: Run, emulator: RunningEmulator, image_server: ImageServer
) -> None:
    outcome = install(ovh_byoi, image_server.url("debian.raw.gz"), "raw")
    assert_caught(outcome, emulator, "gzip-compressed", "Decompress it first")


def test_preflight_qcow2_with_backing_file(
    ovh_byoi: Run, emulator: RunningEmulator, image_server: ImageServer
) -> None:
    outcome = install(ovh_byoi, image_server.url("overlay.qcow2"), "qcow2")
    assert_caught(outcome, emulator, "backing file", "qemu-img convert")


def test_preflight_unwritable_image(ovh_byoi: Run, emulator: RunningEmulator) -> None:
    outcome = install(ovh_byoi, emulator.image_url("corrupt.qcow2"), "qcow2", "--preflight", "full")
    assert_caught(outcome, emulator, "the qcow2 image is damaged", "qemu-img convert -f")


def test_preflight_wrong_efi_bootloader_path(ovh_byoi: Run, emulator: RunningEmulator) -> None:
    outcome = ovh_byoi(
        "install", SERVER, "--image-url", emulator.image_url("ubuntu.raw"), "--image-type", "raw",
        "--efi-path", EFI, "--preflight", "full", "--yes",
    )  # fmt: skip
    assert_caught(outcome, emulator, "--efi-bootloader-path", r"\EFI\ubuntu\shimx64.efi")


def test_checksum_without_its_type_is_refused_before_ovh(ovh_byoi: Run, emulator: RunningEmulator) -> None:
    # The guide's "Please provide checkSum AND checkSumType or none of them" cannot reach OVH from this tool.
    outcome = install(ovh_byoi, emulator.image_url("debian.raw"), "raw", "--checksum-type", "sha512")
    assert outcome.exit_code == 2
    assert "--image-checksum-type" in outcome.stderr and "add image_checksum" in outcome.stderr
    assert reinstalls_requested(emulator) == 0


def assert_caught(
    outcome: Outcome, emulator: RunningEmulator, problem: str, fix: str, server: str = SERVER
) -> None:
    assert outcome.exit_code == 1, outcome.output
    assert problem in outcome.stdout
    assert fix in outcome.stdout
    assert "nothing was sent to OVH and the server is untouched" in outcome.stderr
    assert "Traceback" not in outcome.output
    assert reinstalls_requested(emulator) == 0
    assert installs(emulator, server) == []


# --- reported from OVH's failed task ------------------------------------------------------------------------

TASK_FAILURES = {
    "wrong format": "image provided format is raw which does not match expected qcow2 format",
    "no partition table": "image provided format is not of type raw because no partition table was found",
    "too big for the disk": (
        f"image provided has a size of {64 * MIB} bytes which is larger than device of {32 * MIB} bytes"
    ),
    "too big for memory": "Could not download, raw image is too big to download in memory.",
    "wrong checksum": "Bad checkSumType for downloaded file, got: ",
    "401 on download": "Could not download image located: ",
    "unreachable url": "Could not download image located: ",
    "unwritable image": "Can't write qcow2 on disk",
}


@pytest.mark.parametrize("row", list(TASK_FAILURES))
def test_with_preflight_off_the_failed_task_is_reported_with_the_guides_fix(
    ovh_byoi: Run,
    emulator: RunningEmulator,
    image_server: ImageServer,
    test_images: dict[str, Path],
    unused_port: int,
    row: str,
) -> None:
    server = SERVER
    extra: list[str] = []
    image_url, image_type = emulator.image_url("debian.raw"), "raw"
    if row == "wrong format":
        image_type = "qcow2"
    elif row == "no partition table":
        image_url = emulator.image_url("no-table.raw")
    elif row == "too big for the disk":
        server = _small_server(emulator, diskSizeBytes=32 * MIB)
    elif row == "too big for memory":
        server = _small_server(emulator, memoryBytes=3 * GIB + 32 * MIB)
    elif row == "wrong checksum":
        extra = ["--checksum", hashlib.sha256(test_images["ubuntu.raw"].read_bytes()).hexdigest()]
    elif row == "401 on download":
        image_url = image_server.url("debian.raw", prefix="private")
    elif row == "unreachable url":
        image_url = f"http://127.0.0.1:{unused_port}/debian.raw"
    elif row == "unwritable image":
        image_url, image_type = emulator.image_url("corrupt.qcow2"), "qcow2"

    outcome = install(ovh_byoi, image_url, image_type, "--preflight", "off", *extra, server=server)

    text = TASK_FAILURES[row]
    assert outcome.exit_code == 1, outcome.output
    assert "Traceback" not in outcome.output
    [entry] = installs(emulator, server)
    assert entry["status"] == "customerError"
    assert f"OVH task {entry['taskId']} ended in customerError" in outcome.stderr
    said = next(line for line in outcome.stderr.splitlines() if line.startswith("OVH says: "))
    assert text in said
    fix = fix_for(said)
    assert fix is not None
    # The size fix ends with the server's own disk groups (here none holds the image), not the generic advice.
    assert f"Fix: {fix.split(' (BYOI writes it')[0]}" in outcome.stderr
    if row == "too big for the disk":
        assert "no disk group of this server (OVH's diskGroupId) has a disk that large" in outcome.stderr


def test_the_right_headers_make_the_download_work(
    ovh_byoi: Run, emulator: RunningEmulator, image_server: ImageServer
) -> None:
    header = f"Authorization: {BASIC_AUTH['Authorization']}"
    outcome = install(ovh_byoi, image_server.url("debian.raw", prefix="private"), "raw", "-H", header)
    assert outcome.exit_code == 0, outcome.output
    assert BASIC_AUTH["Authorization"] not in outcome.output
    assert reinstalls_requested(emulator) == 1
