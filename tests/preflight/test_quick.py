"""The quick check: reachability, format, partition table, sizes; against real images over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.errors import fix_for
from ovh_byoi.preflight import Finding

from .conftest import BASIC_AUTH, GIB, PASSWORD, ImageServer, only, preflight_at

USER_IN_URL = "bob"


def quick(url: str, image_type: str = "raw", **overrides: Any) -> list[Finding]:
    return preflight_at("quick", url, image_type, **overrides)


@pytest.mark.parametrize(
    ("name", "image_type"), [("debian.raw", "raw"), ("mbr.raw", "raw"), ("debian.qcow2", "qcow2")]
)
def test_good_images_pass(image_server: ImageServer, name: str, image_type: str) -> None:
    assert quick(image_server.url(name), image_type) == []


def test_raw_declared_qcow2_is_a_format_mismatch_with_the_guides_fix(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("debian.raw"), "qcow2"))
    assert finding.field == "image_type"
    assert "really raw" in finding.message
    # The guide's fix for "image provided format is raw which does not match expected qcow2 format".
    assert finding.fix == fix_for("image provided format is raw which does not match expected qcow2 format")
    assert "set image_type to raw" in finding.fix


def test_qcow2_declared_raw_is_a_format_mismatch(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("debian.qcow2"), "raw"))
    assert finding.field == "image_type"
    assert "set image_type to qcow2" in finding.fix


def test_raw_without_partition_table_is_refused(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("no-table.raw"), "raw"))
    assert finding.field == "image_url"
    assert "no partition table" in finding.message
    assert "MBR or GPT" in finding.fix


def test_image_bigger_than_the_disk(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("debian.raw"), disk_bytes=32 * 1024 * 1024))
    assert "on disk" in finding.message and str(64 * 1024 * 1024) in finding.message
    assert "diskGroupId" in finding.fix


def test_qcow2_is_measured_by_its_virtual_size_on_disk(
    image_server: ImageServer, images: dict[str, Path]
) -> None:
    assert images["debian.qcow2"].stat().st_size < 32 * 1024 * 1024
    finding = only(quick(image_server.url("debian.qcow2"), "qcow2", disk_bytes=32 * 1024 * 1024))
    assert str(64 * 1024 * 1024) in finding.message


def test_image_bigger_than_memory_minus_three_gib(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("debian.raw"), memory_bytes=3 * GIB + 16 * 1024 * 1024))
    assert "RAM minus 3 GiB" in finding.message
    assert finding.fix == fix_for("Could not download, raw image is too big to download in memory.")


def test_unknown_server_sizes_skip_the_comparisons(image_server: ImageServer) -> None:
    assert quick(image_server.url("debian.raw"), disk_bytes=None, memory_bytes=None) == []


def test_401_without_headers_points_at_http_headers(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("debian.raw", prefix="private")))
    assert finding.field == "http_headers"
    assert "401" in finding.message
    assert "Authorization" in finding.fix


def test_the_users_headers_are_sent(image_server: ImageServer) -> None:
    assert quick(image_server.url("debian.raw", prefix="private"), http_headers=BASIC_AUTH) == []


def test_wrong_credentials_are_reported(image_server: ImageServer) -> None:
    finding = only(
        quick(
            image_server.url("debian.raw", prefix="private"), http_headers={"Authorization": "Basic bm9wZQ=="}
        )
    )
    assert finding.field == "http_headers"
    assert "refuses these credentials" in finding.fix


def test_an_empty_file_is_not_an_image(tmp_path: Path) -> None:
    empty = tmp_path / "empty.raw"
    empty.touch()
    assert "is empty" in only(quick(str(empty))).message


def test_a_server_refusing_head_is_checked_with_a_ranged_get(image_server: ImageServer) -> None:
    assert quick(image_server.url("debian.qcow2", prefix="get-only"), "qcow2") == []
    finding = only(quick(image_server.url("missing.raw", prefix="get-only")))
    assert "404" in finding.message


def test_404_points_at_the_url(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("missing.raw")))
    assert finding.field == "image_url"
    assert "404" in finding.message
    assert "check the host, the path and the file name" in finding.fix


def test_unreachable_url(unused_port: int) -> None:
    finding = only(quick(f"http://127.0.0.1:{unused_port}/debian.raw"))
    assert finding.field == "image_url"
    assert "Connection refused" in finding.message
    assert finding.fix == fix_for("Could not download image located: http://127.0.0.1/debian.raw")


@pytest.mark.parametrize(
    "name", ["debian.raw.gz", "debian.raw.xz", "debian.raw.bz2", "debian.zip", "debian.raw.zst"]
)
def test_compressed_files_must_be_decompressed_first(
    image_server: ImageServer, images: dict[str, Path], name: str
) -> None:
    if name not in images:
        pytest.skip("zstd is not installed")
    finding = only(quick(image_server.url(name)))
    assert "compressed" in finding.message
    assert finding.fix.startswith("Decompress it first")


def test_qcow2_with_a_backing_file_is_refused(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("overlay.qcow2"), "qcow2"))
    assert "backing file" in finding.message
    assert "qemu-img convert" in finding.fix


def test_iso_is_refused(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("installer.iso")))
    assert "ISO" in finding.message
    assert "qcow2 and raw" in finding.fix


def test_credentials_in_the_url_never_appear_in_findings(image_server: ImageServer) -> None:
    url = image_server.url("missing.raw", credentials=f"{USER_IN_URL}:{PASSWORD}")
    finding = only(quick(url))
    assert PASSWORD not in finding.message + finding.fix
    assert "***@" in finding.message


def test_a_checksum_type_without_checksum_is_reported_even_in_quick(image_server: ImageServer) -> None:
    # The resource's own rule, as `pulumi preview` reports it, quoting what OVH would answer.
    finding = only(quick(image_server.url("debian.raw"), image_checksum_type="sha512"))
    assert finding.field == "image_checksum_type"
    assert "Please provide checkSum AND checkSumType" in finding.message
    assert "image_checksum" in finding.fix


def test_a_checksum_of_no_known_length_is_reported(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("debian.raw"), image_checksum="abc123"))
    assert finding.field == "image_checksum"
    assert "sha512 (128)" in finding.message


def test_a_checksum_of_the_wrong_length_for_its_type_is_reported(image_server: ImageServer) -> None:
    finding = only(quick(image_server.url("debian.raw"), image_checksum="0" * 64, image_checksum_type="md5"))
    assert finding.field == "image_checksum"
    assert "md5" in finding.message and "32" in finding.message


def test_findings_are_reported_all_at_once(image_server: ImageServer) -> None:
    findings = quick(
        image_server.url("debian.raw"),
        "qcow2",
        image_checksum_type="md5",
        disk_bytes=1024 * 1024,
        memory_bytes=3 * GIB,
    )
    assert {finding.field for finding in findings} == {"image_type", "image_checksum_type", "image_url"}
    assert len(findings) == 4


def test_local_files_can_be_checked_before_upload(images: dict[str, Path]) -> None:
    assert quick(str(images["debian.qcow2"]), "qcow2") == []
    assert quick(images["debian.qcow2"].as_uri(), "qcow2") == []
    finding = only(quick(str(images["debian.raw"].with_name("absent.raw"))))
    assert "cannot read" in finding.message


def test_off_checks_nothing(unused_port: int) -> None:
    assert quick(f"http://127.0.0.1:{unused_port}/x.raw", level="off") == []
