"""Fixtures shared by every test folder: real disk images and a fresh OVH API emulator."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from ovh_emulator.images import build_image
from ovh_emulator.testing import RunningEmulator, start_emulator
from reliability import report as reliability_report

UBUNTU_EFI_FILES = {
    "EFI/ubuntu/shimx64.efi": b"emulated shim\n",
    "EFI/ubuntu/grubx64.efi": b"emulated GRUB\n",
}


def corrupt_qcow2(source: Path, dest: Path) -> Path:
    """A copy of a qcow2 image whose first L1 entry points at an unaligned offset: unreadable data."""
    data = bytearray(source.read_bytes())
    (l1_offset,) = struct.unpack_from(">Q", data, 40)  # qcow2 header: l1_table_offset
    struct.pack_into(">Q", data, l1_offset, (1 << 63) | 0x12345)
    dest.write_bytes(bytes(data))
    return dest


@pytest.fixture(autouse=True)
def _private_reinstall_journal(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the journal of this machine's real reinstalls (`~/.local/state/ovh-byoi`).

    Provider processes a test starts inherit this unless the test sets a journal of its own.
    """
    monkeypatch.setenv("OVH_BYOI_JOURNAL", str(tmp_path_factory.mktemp("journal") / "reinstalls.sqlite"))


@pytest.fixture(scope="session")
def test_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real images, built once per session, by file name (all in one folder):

    - `debian.raw`, `debian.qcow2`: 64 MiB GPT disk, EFI system partition with `EFI/debian/grubx64.efi`;
    - `ubuntu.raw`: the same layout with `EFI/ubuntu/shimx64.efi` and `EFI/ubuntu/grubx64.efi`;
    - `small.raw`, `small.qcow2`: 4 MiB GPT disk with `EFI/debian/grubx64.efi` (for many installs at once);
    - `no-table.raw`: a bare FAT filesystem, no partition table (OVH refuses it as raw);
    - `corrupt.qcow2`: `debian.qcow2` with an L1 entry pointing at an unaligned L2 table (unconvertible).
    """
    folder = tmp_path_factory.mktemp("images")
    images = {
        "debian.raw": build_image(folder / "debian.raw"),
        "ubuntu.raw": build_image(folder / "ubuntu.raw", efi_files=UBUNTU_EFI_FILES),
        "small.raw": build_image(folder / "small.raw", size_mib=4),
        "no-table.raw": build_image(folder / "no-table.raw", partition_table=False),
    }
    images["debian.qcow2"] = build_image(folder / "debian.qcow2", fmt="qcow2")
    images["small.qcow2"] = build_image(folder / "small.qcow2", fmt="qcow2", size_mib=4)
    images["corrupt.qcow2"] = corrupt_qcow2(images["debian.qcow2"], folder / "corrupt.qcow2")
    return images


@pytest.fixture
def emulator(test_images: dict[str, Path]) -> Iterator[RunningEmulator]:
    """A fresh emulator (4 servers ns1000001..ns1000004.emulator.ovh, speed 600) serving `test_images`."""
    folder = next(iter(test_images.values())).parent
    with start_emulator(servers=4, speed=600, images=folder) as running:
        yield running


# The reliability report of a parallel run: written by the controller, which loads no test folder's conftest.
@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    reliability_report.add_worker_counts(node)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reliability_report.finish_on_the_controller(session, exitstatus)
