"""A reinstall through OVH's real client, from the request to the bytes on the emulated disk."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import ovh
import pytest
import requests
from ovh_emulator.images import build_image
from ovh_emulator.plan import redact_url
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import sha256

from .api import assert_answer, assert_schema, byoi_body, current_step, reinstall, wait_for_task


def raw_sha256(image: Path, tmp_path: Path) -> str:
    raw = tmp_path / "converted.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(raw)], check=True)
    return sha256(raw)


def test_raw_image_is_written_to_the_disk_and_the_server_runs_byoi(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, new_server: str, test_images: dict[str, Path]
) -> None:
    image = test_images["debian.raw"]
    body = byoi_body(
        shared_emulator.image_url("debian.raw"),
        imageCheckSum=hashlib.sha512(image.read_bytes()).hexdigest(),
        imageCheckSumType="sha512",
        hostname="web-1",
        sshKey="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey admin@example",
        configDriveUserData="I2Nsb3VkLWNvbmZpZwo=",
        configDriveMetadata={"role": "web"},
    )

    task = reinstall(shared_client, new_server, body)

    assert_schema("dedicated.server.Task", task)
    assert (task["status"], task["function"]) == ("init", "reinstallServer")
    done = wait_for_task(shared_client, new_server, task["taskId"])
    assert done["status"] == "done"
    server = shared_client.get(f"/dedicated/server/{new_server}")
    assert (server["os"], server["efiBootloaderPath"]) == ("byoi_64", "\\efi\\debian\\grubx64.efi")
    view = shared_emulator.server(new_server)
    assert view["diskSha256"] == sha256(image)
    assert view["configDrive"] == {
        "userData": "I2Nsb3VkLWNvbmZpZwo=",
        "metadata": {"role": "web"},
        "hostname": "web-1",
        "sshKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey admin@example",
    }
    assert [(i["taskId"], i["status"], i["outOfBand"], i["imageURL"]) for i in view["installs"]] == [
        (task["taskId"], "done", False, shared_emulator.image_url("debian.raw"))
    ]


def test_qcow2_image_is_converted_to_raw_on_the_disk(
    shared_emulator: RunningEmulator,
    shared_client: ovh.Client,
    new_server: str,
    test_images: dict[str, Path],
    tmp_path: Path,
) -> None:
    body = byoi_body(shared_emulator.image_url("debian.qcow2"), "qcow2", imageCheckSumType="md5")
    body["customizations"]["imageCheckSum"] = hashlib.md5(
        test_images["debian.qcow2"].read_bytes()
    ).hexdigest()

    task = reinstall(shared_client, new_server, body)

    assert wait_for_task(shared_client, new_server, task["taskId"])["status"] == "done"
    written = shared_emulator.server(new_server)["diskSha256"]
    assert written == raw_sha256(test_images["debian.qcow2"], tmp_path)
    assert written != sha256(test_images["debian.qcow2"])


def test_reinstall_replaces_what_the_previous_one_wrote(
    shared_emulator: RunningEmulator, shared_client: ovh.Client, new_server: str, test_images: dict[str, Path]
) -> None:
    for name in ("debian.raw", "ubuntu.raw"):
        body = byoi_body(shared_emulator.image_url(name), efiBootloaderPath="\\efi\\ubuntu\\shimx64.efi")
        wait_for_task(shared_client, new_server, reinstall(shared_client, new_server, body)["taskId"])

    view = shared_emulator.server(new_server)
    assert view["diskSha256"] == sha256(test_images["ubuntu.raw"])
    assert [entry["diskSha256"] for entry in view["installs"]] == [
        sha256(test_images["debian.raw"]),
        sha256(test_images["ubuntu.raw"]),
    ]
    assert view["os"] == "byoi_64"


def test_out_of_band_reinstall_is_a_real_task_that_changes_the_server(
    faulty: RunningEmulator, shared_client: ovh.Client, new_server: str
) -> None:
    shared_emulator = faulty
    ours = reinstall(shared_client, new_server, byoi_body(shared_emulator.image_url("small.raw")))
    wait_for_task(shared_client, new_server, ours["taskId"])
    # It downloads nothing a rule could hold: parked at a step, it runs until it has refused ours.
    faulty.set_faults({"rules": [{"holdAtStep": "Checking hardware", "serviceName": new_server, "times": 1}]})

    theirs = shared_emulator.reinstall_out_of_band(new_server, "ubuntu2404-server_64")

    assert_schema("dedicated.server.Task", theirs)
    tasks = shared_client.get(f"/dedicated/server/{new_server}/task", function="reinstallServer")
    assert tasks == [ours["taskId"], theirs["taskId"]]
    faulty.wait_until_held(1)
    assert current_step(shared_client, new_server) == "Checking hardware"
    with pytest.raises(ovh.exceptions.BadParametersError, match="already running"):
        reinstall(shared_client, new_server, byoi_body(shared_emulator.image_url("small.raw")))
    faulty.release()
    assert wait_for_task(shared_client, new_server, theirs["taskId"])["status"] == "done"
    server = shared_client.get(f"/dedicated/server/{new_server}")
    assert_answer("GET", "/dedicated/server/{serviceName}", server)
    assert server["os"] == "ubuntu2404-server_64"
    view = shared_emulator.server(new_server)
    assert view["diskSha256"] is None
    assert [(entry["outOfBand"], entry["operatingSystem"]) for entry in view["installs"]] == [
        (False, "byoi_64"),
        (True, "ubuntu2404-server_64"),
    ]


def test_admin_adds_servers_with_the_given_hardware(
    shared_emulator: RunningEmulator, shared_client: ovh.Client
) -> None:
    added = shared_emulator.add_server(
        "ns2888888.emulator.ovh", diskSizeBytes=2 * 10**12, memoryBytes=32 * 1024**3, bootMode="legacy"
    )

    assert (added["os"], added["installs"]) == ("debian12_64", [])
    hardware = shared_client.get("/dedicated/server/ns2888888.emulator.ovh/specifications/hardware")
    assert hardware["diskGroups"][0]["diskSize"] == {"unit": "TB", "value": 2}
    assert hardware["memorySize"] == {"unit": "MB", "value": 32768}
    assert hardware["bootMode"] == "legacy"
    with pytest.raises(Exception, match="already exists"):
        shared_emulator.add_server("ns2888888.emulator.ovh")
    with pytest.raises(Exception, match="bootMode: 'bios' is not one of"):
        shared_emulator.add_server("ns2888889.emulator.ovh", bootMode="bios")


def test_images_are_served_with_their_size_and_nothing_outside_the_folder(
    shared_emulator: RunningEmulator, test_images: dict[str, Path]
) -> None:
    head = requests.head(shared_emulator.image_url("small.raw"), timeout=10)
    escape = requests.get(shared_emulator.base_url + "/images/..%2Fstate.sqlite", timeout=10)

    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == test_images["small.raw"].stat().st_size
    assert escape.status_code == 404


def test_urls_in_logs_lose_their_password_and_query() -> None:
    assert redact_url("https://user:pa:ss@example.com/a.raw") == "https://user:***@example.com/a.raw"
    assert redact_url("https://example.com/a.raw?X-Amz-Signature=abc") == "https://example.com/a.raw?***"
    assert redact_url("https://example.com/debian.raw") == "https://example.com/debian.raw"
    assert redact_url("/images/a.raw?token=abc") == "/images/a.raw?***"


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
    assert image.stat().st_size == 16 * 1024**2


def test_build_image_qcow2_holds_the_same_disk(tmp_path: Path) -> None:
    image = build_image(tmp_path / "disk.qcow2", fmt="qcow2", size_mib=8)

    info = json.loads(
        subprocess.run(["qemu-img", "info", "--output=json", str(image)], capture_output=True).stdout
    )
    assert (info["format"], info["virtual-size"]) == ("qcow2", 8 * 1024**2)
    with pytest.raises(ValueError, match="efi_files"):
        build_image(tmp_path / "bad.raw", efi_files={"../escape": b""})
