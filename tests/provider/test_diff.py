"""Diff decides which changes erase a server: each case of the architecture's first invariant.

A reinstall happens only when something that ends up on the disk changes, or to repair recorded drift; never
for a moved URL with the same checksum, headers, timeouts, other knobs, or a new version of the provider.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from ovh_byoi.provider import ByoiProvider
from ovh_byoi.spec import INSTALL_FIELDS
from pulumi.dynamic import DiffResult
from pulumi.output import Unknown

from .inputs import OTHER_SHA512, OTHER_SSH_KEY, SHA256, SHA512, valid_inputs


def checked(**changes: Any) -> dict[str, Any]:
    """Inputs as the engine hands them to diff: after check, with the provider payload."""
    result = ByoiProvider().check({}, valid_inputs(**changes))
    assert result.failures == []
    return {**result.inputs, "__provider": "pickled-provider-v1"}


def outputs(**changes: Any) -> dict[str, Any]:
    """Stored outputs of an installed resource: the inputs echoed plus what the provider recorded."""
    return {
        **checked(**changes),
        "task_id": 4200001,
        "installed_at": "2026-01-01T10:00:00+00:00",
        "os": "byoi_64",
        "drift": "",
    }


def diff(olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
    return ByoiProvider().diff("ns1000001.emulator.ovh/4200001", olds, news)


def test_same_inputs_are_no_change() -> None:
    result = diff(outputs(image_checksum=SHA512), checked(image_checksum=SHA512))
    assert result.changes is False
    assert result.replaces == []


def test_diff_always_says_yes_or_no() -> None:
    # changes=None would make the engine compare every input, including the pickled provider.
    for news in (checked(), checked(hostname="web-2"), checked(timeout_minutes=300)):
        assert diff(outputs(), news).changes in (True, False)


def test_a_new_version_of_the_pickled_provider_is_no_change() -> None:
    news = {**checked(), "__provider": "pickled-provider-v2-from-a-newer-package"}
    result = diff(outputs(), news)
    assert result.changes is False
    assert result.replaces == []


ON_DISK_CHANGES: dict[str, Any] = {
    "service_name": "ns1000002.emulator.ovh",
    "operating_system": "byolinux_64",
    "image_type": "raw",
    "efi_bootloader_path": "\\efi\\ubuntu\\shimx64.efi",
    "hostname": "web-2",
    "ssh_key": OTHER_SSH_KEY,
    "config_drive_user_data": "#cloud-config\npackages: [tree]\n",
    "config_drive_metadata": {"role": "db"},
    "disk_group_id": 2,
}


def test_every_install_field_is_covered() -> None:
    assert set(ON_DISK_CHANGES) == set(INSTALL_FIELDS)


@pytest.mark.parametrize("field", sorted(ON_DISK_CHANGES))
def test_a_change_of_what_ends_up_on_the_disk_is_a_replacement(field: str) -> None:
    olds = outputs(
        config_drive_user_data="#cloud-config\npackages: [vim]\n", config_drive_metadata={"role": "web"}
    )
    news = checked(
        **{
            "config_drive_user_data": "#cloud-config\npackages: [vim]\n",
            "config_drive_metadata": {"role": "web"},
            field: ON_DISK_CHANGES[field],
        }
    )
    result = diff(olds, news)
    assert result.changes is True
    assert result.replaces == [field]


@pytest.mark.parametrize("field", ["hostname", "ssh_key", "config_drive_user_data", "config_drive_metadata"])
def test_adding_or_removing_an_install_field_is_a_replacement(field: str) -> None:
    value = ON_DISK_CHANGES[field]
    assert diff(outputs(**{field: None}), checked(**{field: value})).replaces == [field]
    assert diff(outputs(**{field: value}), checked(**{field: None})).replaces == [field]


def test_a_new_checksum_is_a_replacement_even_at_the_same_url() -> None:
    result = diff(outputs(image_checksum=SHA512), checked(image_checksum=OTHER_SHA512))
    assert result.changes is True
    assert result.replaces == ["image_checksum"]


def test_a_moved_url_with_the_same_checksum_is_an_update_that_reinstalls_nothing() -> None:
    olds = outputs(image_checksum=SHA512)
    news = checked(image_checksum=SHA512, image_url="https://mirror.example.org/debian/debian-12.qcow2")
    result = diff(olds, news)
    assert result.changes is True, "the new URL must be recorded"
    assert result.replaces == []


def test_without_checksums_the_url_is_the_image() -> None:
    result = diff(outputs(), checked(image_url="https://mirror.example.org/debian-13.qcow2"))
    assert result.replaces == ["image_url"]


def test_a_checksum_on_one_side_only_falls_back_to_the_url() -> None:
    # Adding a checksum to an installed image (same URL) says which bytes it was; nothing to reinstall.
    assert diff(outputs(), checked(image_checksum=SHA512)).replaces == []
    assert diff(outputs(image_checksum=SHA512), checked()).replaces == []
    moved = checked(image_checksum=SHA512, image_url="https://mirror.example.org/x.qcow2")
    assert diff(outputs(), moved).replaces == ["image_url"]


def test_a_checksum_written_differently_is_the_same_image() -> None:
    # State written by hand or by an older version may hold the digest in upper case, without its type.
    olds = outputs(image_checksum=SHA512) | {"image_checksum": SHA512.upper(), "image_checksum_type": None}
    assert diff(olds, checked(image_checksum=SHA512)).changes is False


def test_a_checksum_of_another_algorithm_is_another_image() -> None:
    assert diff(outputs(image_checksum=SHA512), checked(image_checksum=SHA256)).replaces == ["image_checksum"]


KNOBS: dict[str, Any] = {
    "http_headers": {"Authorization": "Bearer new-token"},
    "timeout_minutes": 240,
    "preflight": "full",
    "adopt": True,
}


@pytest.mark.parametrize("field", sorted(KNOBS))
def test_a_knob_is_an_update_that_reinstalls_nothing(field: str) -> None:
    result = diff(outputs(), checked(**{field: KNOBS[field]}))
    assert result.changes is True
    assert result.replaces == []


def test_defaults_written_out_or_left_out_are_the_same() -> None:
    olds = outputs()
    news = {
        name: value
        for name, value in checked().items()
        if name not in ("operating_system", "timeout_minutes", "preflight", "adopt")
    }
    assert diff(olds, news).changes is False


def test_user_data_given_as_a_mapping_or_as_its_document_is_the_same() -> None:
    olds = outputs(config_drive_user_data="#cloud-config\npackages:\n- vim\n")
    news = {**checked(), "config_drive_user_data": {"packages": ["vim"]}}
    assert diff(olds, news).changes is False


def test_recorded_drift_makes_the_next_up_a_replacement() -> None:
    olds = outputs() | {"drift": "ns1000001.emulator.ovh was reinstalled outside this stack (OVH task 7)"}
    result = diff(olds, checked())
    assert result.changes is True
    assert result.replaces == ["drift"]


def test_a_value_not_known_yet_may_erase_the_server() -> None:
    result = diff(outputs(image_checksum=SHA512), {**checked(image_checksum=SHA512), "hostname": Unknown()})
    assert result.replaces == ["hostname"]
    result = diff(outputs(image_checksum=SHA512), {**checked(), "image_checksum": Unknown()})
    assert result.replaces == ["image_checksum"]


def test_an_unknown_knob_is_no_replacement() -> None:
    result = diff(outputs(), {**checked(), "http_headers": {"Authorization": Unknown()}})
    assert result.replaces == []


@pytest.mark.parametrize("path", ["\\EFI\\debian\\grubx64.efi", "\\EFI\\DEBIAN\\GRUBX64.EFI"])
def test_an_efi_path_changed_only_in_case_is_recorded_without_reinstalling(path: str) -> None:
    # The EFI system partition is FAT: the firmware finds the same bootloader whatever the case.
    result = diff(outputs(), checked(efi_bootloader_path=path))

    assert result.replaces == []
    assert result.changes is True, "the new spelling is recorded, so that the next preview is clean"


def test_a_user_data_document_given_in_base64_is_the_same_install() -> None:
    document = "#cloud-config\npackages: [vim]\n"
    olds = outputs(config_drive_user_data=document)
    news = checked(config_drive_user_data=base64.b64encode(document.encode()).decode())

    assert diff(olds, news).changes is False
