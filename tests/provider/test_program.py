"""A program declaring ByoiInstallation, run by the real Pulumi CLI against the emulator: what a preview
calls, and what the state keeps of the secret inputs. (Second runs, drift and interruptions: tests/engine.)"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, writes
from testkit.pulumi_cli import PulumiStack

from .conftest import installs

PROGRAM = Path(__file__).with_name("program")
SERVERS = ["ns1000001.emulator.ovh", "ns1000002.emulator.ovh"]
# What the program writes, as the provider receives it and as it could leak.
SECRETS = (
    "header-secret-5521",
    base64.b64encode(b"mirror:header-secret-5521").decode(),
    "user-data-secret-8812",
    "metadata-secret-3391",
)
# How `pulumi stack export --show-secrets` marks a secret value.
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


@pytest.fixture
def stack(emulator: RunningEmulator, image_inputs: Any, tmp_path: Path) -> PulumiStack:
    image = image_inputs("small.qcow2")
    config = {
        "program:servers": SERVERS,
        "program:imageUrl": image["image_url"],
        "program:imageChecksum": image["image_checksum"],
    }
    return PulumiStack.create(PROGRAM, tmp_path, "test", emulator=emulator, config=config)


def test_a_preview_calls_nothing_on_ovh_and_shows_which_servers_would_be_erased(
    stack: PulumiStack, emulator: RunningEmulator, image_inputs: Any
) -> None:
    created = stack.preview()

    assert "+ 3 to create" in created.output, created
    assert emulator.stats() == {}

    stack.up()
    before = emulator.stats()
    stack.set_config({"program:imageChecksum": image_inputs("debian.qcow2")["image_checksum"]})
    replaced = stack.preview()

    for name in ("web-1", "web-2"):
        assert f"+- pulumi-python:dynamic/ovh_byoi:ByoiInstallation {name} replace" in replaced.output, (
            replaced
        )
    assert "+-2 to replace" in replaced.output
    assert emulator.stats() == before, "a preview calls nothing on OVH"


def test_secret_inputs_are_secret_outputs_and_never_plain_in_the_state_or_the_output(
    stack: PulumiStack, emulator: RunningEmulator
) -> None:
    up = stack.up()

    assert writes(emulator) == {REINSTALL: 2}
    assert all(installs(emulator, server)[0]["status"] == "done" for server in SERVERS)
    outputs = stack.resources()["web-1"]["outputs"]
    for name in ("http_headers", "config_drive_user_data", "config_drive_metadata"):
        assert SECRET_SIGNATURE in outputs[name], f"{name} is not a secret output"
    assert json.loads(outputs["config_drive_user_data"]["plaintext"]).startswith("#cloud-config\n")
    raw = stack.raw_state()
    assert [secret for secret in SECRETS if secret in raw] == []
    assert [secret for secret in SECRETS if secret in up.output] == []
