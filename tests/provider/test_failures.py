"""What a user is told when an install cannot be done: OVH's words, the task, the query id and the fix, from a
real provider process against the emulator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ovh_byoi.provider import ByoiProvider
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import writes
from testkit.provider_process import ProviderCallError, ProviderProcess
from testkit.pulumi_cli import emulator_credentials as stack_config

from .conftest import SERVER, installs
from .steps import Inputs, up


def test_a_failed_install_carries_ovhs_reason_task_and_fix(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    # A bare file system is no raw disk image; without preflight only OVH finds out, after erasing the server.
    inputs = image_inputs("no-table.raw", preflight="off")

    with pytest.raises(ProviderCallError) as failure:
        up(provider, inputs)

    [install] = installs(emulator)
    message = failure.value.reason
    assert install["status"] == "customerError"
    assert SERVER in message
    assert str(install["taskId"]) in message
    assert "customerError" in message
    assert "no partition table was found" in message, "OVH's own words"
    assert re.search(r"OVH query id: \S+", message)
    assert "Fix: " in message and "partition table" in message.split("Fix: ", 1)[1]


def test_an_ovh_side_failure_says_so(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    emulator.set_faults({"rules": [{"task": "ovhError", "times": 1}]})

    with pytest.raises(ProviderCallError) as failure:
        up(provider, image_inputs("debian.qcow2", preflight="off"))

    [install] = installs(emulator)
    assert install["status"] == "ovhError"
    assert str(install["taskId"]) in failure.value.reason
    assert "OVHcloud technicians have been notified" in failure.value.reason
    assert "Fix: " in failure.value.reason


def test_preflight_catches_a_bad_image_before_anything_is_erased(
    provider: ProviderProcess, emulator: RunningEmulator, image_inputs: Inputs
) -> None:
    with pytest.raises(ProviderCallError) as failure:
        up(provider, image_inputs("no-table.raw"))

    assert writes(emulator) == {}, "the server is untouched"
    assert installs(emulator) == []
    assert "image_type" in failure.value.reason or "image_url" in failure.value.reason
    assert "nothing was sent to OVH" in failure.value.reason


def test_a_refusal_carries_ovhs_words_query_id_and_fix(
    emulator: RunningEmulator, image_inputs: Inputs, provider_env: dict[str, str], tmp_path: Path
) -> None:
    config = {**stack_config(emulator), "ovh:consumerKey": "a-consumer-key-ovh-does-not-know"}
    with ProviderProcess(ByoiProvider(), env=provider_env, cwd=tmp_path) as provider:
        provider.configure(config)
        with pytest.raises(ProviderCallError) as failure:
            up(provider, image_inputs("debian.qcow2"))

    message = failure.value.reason
    assert SERVER in message
    assert "OVH says:" in message
    assert re.search(r"OVH query id: \S+", message)
    assert "Fix: " in message and "consumer key" in message
    assert emulator.application_secret not in failure.value.details
    assert writes(emulator) == {}


def test_a_server_ovh_does_not_know_fails_the_refresh_and_is_not_dropped(
    provider: ProviderProcess, image_inputs: Inputs
) -> None:
    outputs = {
        **image_inputs("debian.qcow2", service_name="ns1999999.emulator.ovh"),
        "task_id": 7,
        "os": "byoi_64",
    }

    # A 404 is not proof the server is gone (another account's keys, OVH's inconsistency): dropping the
    # resource would have the next up reinstall it. The way out of a really gone server is named instead.
    with pytest.raises(ProviderCallError, match="pulumi state delete"):
        provider.read("ns1999999.emulator.ovh/7", outputs)
