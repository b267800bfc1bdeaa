"""Programs declaring ByoiInstallation, run by LocalEngine with real provider processes and the emulator."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi import ByoiInstallation
from ovh_byoi_harness.engine import ChangesNotExpectedError, LocalEngine
from ovh_emulator.testing import RunningEmulator

from .conftest import REINSTALL, installs, stack_config, writes

SERVERS = ("ns1000001.emulator.ovh", "ns1000002.emulator.ovh")
HEADER_VALUE = "Basic " + base64.b64encode(b"mirror:header-secret-5521").decode()
USER_DATA = {"chpasswd": {"list": "root:user-data-secret-8812"}, "packages": ["vim"]}


def fleet(image_inputs: Callable[..., dict[str, Any]], **changes: Any) -> Callable[[], None]:
    """A program declaring one installation per server."""

    def program() -> None:
        for number, service_name in enumerate(SERVERS, start=1):
            inputs = image_inputs("small.qcow2", service_name=service_name, hostname=f"web-{number}")
            inputs.update(changes)
            ByoiInstallation(
                f"web-{number}",
                **inputs,
                http_headers={"Authorization": HEADER_VALUE},
                config_drive_user_data=USER_DATA,
                config_drive_metadata={"role": "web"},
            )

    return program


@pytest.fixture
def engine(emulator: RunningEmulator, provider_env: dict[str, str], tmp_path: Path) -> LocalEngine:
    return LocalEngine(
        tmp_path / "state.json",
        config=stack_config(emulator),
        secret_config={"ovh:applicationSecret", "ovh:consumerKey"},
        env=provider_env,
        cwd=tmp_path,
        passphrase="stack passphrase",
    )


def test_a_second_up_changes_nothing_and_writes_nothing(
    engine: LocalEngine, emulator: RunningEmulator, image_inputs: Callable[..., dict[str, Any]]
) -> None:
    program = fleet(image_inputs)

    first = engine.up(program).raise_for_errors()

    assert first.ops() == {"web-1": "create", "web-2": "create"}
    for service_name in SERVERS:
        assert [entry["status"] for entry in installs(emulator, service_name)] == ["done"]
    assert writes(emulator) == {REINSTALL: 2}

    second = engine.up(program, expect_no_changes=True).raise_for_errors()

    assert second.ops() == {"web-1": "same", "web-2": "same"}
    assert writes(emulator) == {REINSTALL: 2}


def test_a_preview_writes_nothing_and_shows_which_servers_would_be_erased(
    engine: LocalEngine, emulator: RunningEmulator, image_inputs: Callable[..., dict[str, Any]]
) -> None:
    new_image = fleet(image_inputs, image_checksum=image_inputs("debian.qcow2")["image_checksum"])

    created = engine.preview(fleet(image_inputs)).raise_for_errors()
    assert created.ops() == {"web-1": "create", "web-2": "create"}
    assert writes(emulator) == {}

    engine.up(fleet(image_inputs)).raise_for_errors()
    before = emulator.stats()
    replaced = engine.preview(new_image).raise_for_errors()

    replacements = [step for step in replaced.steps if step.op == "replace"]
    assert sorted(step.name for step in replacements) == ["web-1", "web-2"]
    assert all(step.replaces == ("image_checksum",) for step in replacements)
    assert emulator.stats() == before, "a preview calls nothing on OVH"


def test_secret_inputs_are_secret_outputs_and_never_plain_in_state(
    engine: LocalEngine, emulator: RunningEmulator, image_inputs: Callable[..., dict[str, Any]]
) -> None:
    result = engine.up(fleet(image_inputs)).raise_for_errors()

    assert {"http_headers", "config_drive_user_data", "config_drive_metadata"} <= result.secret_outputs_of(
        "web-1"
    )
    assert result.outputs_of("web-1")["config_drive_user_data"].startswith("#cloud-config\n")
    stored = engine.state_path.read_text()
    for secret in (
        "header-secret-5521",
        base64.b64encode(b"mirror:header-secret-5521").decode(),
        "user-data-secret-8812",
        emulator.application_secret,
        emulator.consumer_key,
    ):
        assert secret not in stored
        assert secret not in result.printed()


def test_a_scheduled_drift_check_finds_an_out_of_band_reinstall(
    engine: LocalEngine, emulator: RunningEmulator, image_inputs: Callable[..., dict[str, Any]]
) -> None:
    program = fleet(image_inputs)
    engine.up(program).raise_for_errors()
    other = emulator.reinstall_out_of_band(SERVERS[1])
    emulator.wait_for_task(SERVERS[1], other["taskId"])

    with pytest.raises(ChangesNotExpectedError):
        engine.refresh(expect_no_changes=True)
    engine.refresh().raise_for_errors()
    repaired = engine.up(program).raise_for_errors()

    assert [(step.name, step.op) for step in repaired.steps if step.op != "delete"] == [
        ("web-1", "same"),
        ("web-2", "replace"),
    ]
    assert [entry["outOfBand"] for entry in installs(emulator, SERVERS[1])] == [False, True, False]
    assert writes(emulator) == {REINSTALL: 3}
    engine.refresh(expect_no_changes=True).raise_for_errors()
