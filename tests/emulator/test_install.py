"""A BYOI reinstall through OVH's real client, from the request to the bytes on the emulated disk."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import ovh
from ovh_emulator.images import build_image
from ovh_emulator.testing import RunningEmulator

from .api import SERVER, assert_schema, byoi_body, wait_for_task


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw_sha256(image: Path, tmp_path: Path) -> str:
    raw = tmp_path / "converted.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(raw)], check=True)
    return sha256(raw)


def test_raw_image_is_written_to_the_disk_and_the_server_runs_byoi(
    emulator: RunningEmulator, client: ovh.Client, test_images: dict[str, Path]
) -> None:
    image = test_images["debian.raw"]
    body = byoi_body(
        emulator.image_url("debian.raw"),
        imageCheckSum=hashlib.sha512(image.read_bytes()).hexdigest(),
        imageCheckSumType="sha512",
        hostname="web-1",
        configDriveUserData="I2Nsb3VkLWNvbmZpZwo=",
        configDriveMetadata={"role": "web"},
    )

    task = client.post(f"/dedicated/server/{SERVER}/reinstall", **body)

    assert_schema("dedicated.server.Task", task)
    assert task["status"] == "init"
    assert task["function"] == "reinstallServer"
    done = wait_for_task(client, SERVER, task["taskId"])
    assert_schema("dedicated.server.Task", done)
    assert done["status"] == "done"
    assert client.get(f"/dedicated/server/{SERVER}")["os"] == "byoi_64"
    view = emulator.server(SERVER)
    assert view["diskSha256"] == sha256(image)
    assert view["efiBootloaderPath"] == "\\efi\\debian\\grubx64.efi"
    assert view["configDrive"]["userData"] == "I2Nsb3VkLWNvbmZpZwo="
    assert view["configDrive"]["metadata"] == {"role": "web"}
    assert view["configDrive"]["hostname"] == "web-1"
    assert [(i["taskId"], i["status"], i["outOfBand"]) for i in view["installs"]] == [
        (task["taskId"], "done", False)
    ]


def test_qcow2_image_is_converted_to_raw_on_the_disk(
    emulator: RunningEmulator, client: ovh.Client, test_images: dict[str, Path], tmp_path: Path
) -> None:
    task = client.post(
        f"/dedicated/server/{SERVER}/reinstall", **byoi_body(emulator.image_url("debian.qcow2"), "qcow2")
    )

    assert wait_for_task(client, SERVER, task["taskId"])["status"] == "done"
    assert emulator.server(SERVER)["diskSha256"] == raw_sha256(test_images["debian.qcow2"], tmp_path)


def test_build_image_makes_a_gpt_disk_with_the_bootloader_in_its_efi_partition(tmp_path: Path) -> None:
    image = build_image(tmp_path / "custom.raw", size_mib=16, efi_files={"EFI/BOOT/BOOTX64.EFI": b"boot"})

    listing = subprocess.run(["/usr/sbin/sfdisk", "--json", str(image)], capture_output=True, check=True)
    table = json.loads(listing.stdout)["partitiontable"]
    assert table["label"] == "gpt"
    assert table["partitions"][0]["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    content = subprocess.run(
        ["mtype", "-i", f"{image}@@1M", "::/EFI/BOOT/BOOTX64.EFI"], capture_output=True, check=True
    )
    assert content.stdout == b"boot"
