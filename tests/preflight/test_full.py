"""The full check: one pass over the whole image for its checksum and its EFI bootloader."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.errors import fix_for
from ovh_byoi.preflight import Finding

from .conftest import ImageServer, only, preflight_at


def full(url: str, image_type: str = "raw", **overrides: Any) -> list[Finding]:
    return preflight_at("full", url, image_type, **overrides)


def digest(path: Path, algorithm: str) -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512"])
def test_the_right_checksum_passes(
    image_server: ImageServer, images: dict[str, Path], algorithm: str
) -> None:
    checksum = digest(images["debian.qcow2"], algorithm)
    url = image_server.url("debian.qcow2")
    assert full(url, "qcow2", image_checksum=checksum, image_checksum_type=algorithm) == []


def test_the_checksum_type_is_inferred_from_its_length(
    image_server: ImageServer, images: dict[str, Path]
) -> None:
    checksum = digest(images["debian.raw"], "sha256").upper()
    assert full(image_server.url("debian.raw"), image_checksum=checksum) == []


def test_a_wrong_checksum_is_caught_with_the_guides_fix(
    image_server: ImageServer, images: dict[str, Path]
) -> None:
    wrong = digest(images["mbr.raw"], "sha512")
    finding = only(full(image_server.url("debian.raw"), image_checksum=wrong, image_checksum_type="sha512"))
    assert finding.field == "image_checksum"
    assert digest(images["debian.raw"], "sha512") in finding.message
    assert finding.fix == fix_for("Bad checkSumType for downloaded file, got: 1 while expecting 2")


def test_quick_does_not_hash(image_server: ImageServer) -> None:
    findings = full(image_server.url("debian.raw"), image_checksum="0" * 128, level="quick")
    assert findings == []


@pytest.mark.parametrize(
    ("name", "image_type", "where"),
    [
        ("debian.raw", "raw", "http"),
        ("debian.qcow2", "qcow2", "http"),
        ("mbr.raw", "raw", "http"),
        ("debian.raw", "raw", "local"),
        ("debian.qcow2", "qcow2", "local"),
    ],
)
def test_a_wrong_efi_bootloader_path_is_caught(
    image_server: ImageServer, images: dict[str, Path], name: str, image_type: str, where: str
) -> None:
    url = image_server.url(name) if where == "http" else str(images[name])
    finding = only(full(url, image_type, efi_bootloader_path=r"\efi\ubuntu\grubx64.efi"))
    assert finding.field == "efi_bootloader_path"
    assert r"\efi\ubuntu\grubx64.efi" in finding.message
    # The fix names the bootloaders the image really carries.
    assert r"\EFI\debian\grubx64.efi" in finding.fix
    assert r"\EFI\BOOT\BOOTX64.EFI" in finding.fix


@pytest.mark.parametrize(
    "path", [r"\EFI\DEBIAN\GRUBX64.EFI", r"\\efi\\debian\\grubx64.efi", "/EFI/debian/grubx64.efi"]
)
@pytest.mark.parametrize(("name", "image_type"), [("debian.raw", "raw"), ("debian.qcow2", "qcow2")])
def test_efi_paths_match_as_uefi_reads_them(
    image_server: ImageServer, name: str, image_type: str, path: str
) -> None:
    assert full(image_server.url(name), image_type, efi_bootloader_path=path) == []


def test_an_image_without_efi_system_partition(image_server: ImageServer) -> None:
    finding = only(full(image_server.url("no-esp.raw")))
    assert finding.field == "efi_bootloader_path"
    assert "no EFI system partition" in finding.message


def test_the_efi_check_reads_the_real_format_when_the_declared_one_is_wrong(
    image_server: ImageServer,
) -> None:
    findings = full(image_server.url("debian.qcow2"), "raw", efi_bootloader_path=r"\efi\nope.efi")
    assert {finding.field for finding in findings} == {"image_type", "efi_bootloader_path"}


def test_progress_reports_every_byte_against_the_total(
    image_server: ImageServer, images: dict[str, Path]
) -> None:
    calls: list[tuple[int, int | None]] = []
    assert (
        full(image_server.url("debian.raw"), progress=lambda done, total: calls.append((done, total))) == []
    )
    size = images["debian.raw"].stat().st_size
    assert calls[-1] == (size, size)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_a_download_cut_short_is_reported(image_server: ImageServer) -> None:
    findings = full(image_server.url("debian.raw", prefix="truncated"), efi_bootloader_path=None)
    finding = only(findings)
    assert finding.field == "image_url"
    assert "debian.raw" in finding.message


def test_problems_found_early_do_not_hide_the_checksum(
    image_server: ImageServer, images: dict[str, Path]
) -> None:
    findings = full(
        image_server.url("no-table.raw"),
        image_checksum=digest(images["debian.raw"], "md5"),
        image_checksum_type="md5",
    )
    assert {finding.field for finding in findings} == {"image_url", "image_checksum"}


@pytest.mark.parametrize("where", ["http", "local"])
def test_a_damaged_qcow2_is_caught_by_qemu_img_check(
    image_server: ImageServer, images: dict[str, Path], where: str
) -> None:
    url = image_server.url("truncated.qcow2") if where == "http" else str(images["truncated.qcow2"])
    finding = only(full(url, "qcow2"))
    assert "damaged" in finding.message and "corruptions" in finding.message
    assert finding.fix == fix_for("Can't write qcow2 on disk")
    # The quick check reads only the header, which is intact.
    assert full(url, "qcow2", level="quick") == []


@pytest.mark.parametrize("where", ["http", "local"])
def test_no_usable_temporary_directory_is_a_finding_not_a_traceback(
    image_server: ImageServer, images: dict[str, Path], where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What TMPDIR pointing at a directory that is gone amounts to.
    monkeypatch.setattr(tempfile, "tempdir", str(images["debian.raw"].parent / "gone"))
    url = image_server.url("debian.qcow2") if where == "http" else str(images["debian.qcow2"])
    finding = only(full(url, "qcow2"))
    assert finding.field == "image_url"
    assert "TMPDIR" in finding.fix
