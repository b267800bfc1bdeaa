"""The real `python -m pulumi.dynamic` server, driven over gRPC by ProviderProcess."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from ovh_byoi_harness.properties import secret
from ovh_byoi_harness.provider_process import (
    PROVIDER_KEY,
    ProviderCallError,
    ProviderProcess,
    pickle_provider,
)
from toy_provider import ToyProvider, read_journal


def test_configure_hands_the_stack_config_to_the_provider(world: Path, toy_env: dict[str, str]) -> None:
    with ProviderProcess(ToyProvider(), env=toy_env) as provider:
        provider.configure({"toy:endpoint": "http://127.0.0.1:9/api", "toy:token": "t0ken"})
        created = provider.create({"world": str(world), "name": "a"})

    assert created.outputs["endpoint"] == "http://127.0.0.1:9/api"
    (record,) = [r for r in read_journal(world) if r["call"] == "create"]
    assert record["token"] == "t0ken"


def test_calls_before_configure_are_refused(toy_env: dict[str, str]) -> None:
    with (
        ProviderProcess(ToyProvider(), env=toy_env) as provider,
        pytest.raises(RuntimeError, match="configure"),
    ):
        provider.check({}, {"world": "/nonexistent"})


def test_check_failures_name_the_field(world: Path, toy_env: dict[str, str]) -> None:
    with ProviderProcess(ToyProvider(), env=toy_env) as provider:
        provider.configure({})
        result = provider.check({}, {"world": str(world), "size": -3})

    assert not result.ok
    assert [(f.property, f.reason) for f in result.failures] == [
        ("size", "size must be a number >= 0, got -3.0; fix the size input")
    ]


def test_create_read_update_delete_round_trip(world: Path, toy_env: dict[str, str]) -> None:
    with ProviderProcess(ToyProvider(), env=toy_env) as provider:
        provider.configure({})
        checked = provider.check({}, {"world": str(world), "name": "a", "size": 1, "label": "one"})
        assert checked.inputs[PROVIDER_KEY] == pickle_provider(ToyProvider())

        created = provider.create(checked.inputs)
        assert (world / f"{created.id}.json").exists()
        assert created.outputs["serial"] == created.id.removeprefix("toy-")

        read = provider.read(created.id, created.outputs)
        assert read.id == created.id
        assert read.outputs["label"] == "one"

        relabelled = {**checked.inputs, "label": "two"}
        diff = provider.diff(created.id, created.outputs, relabelled)
        assert (diff.changes, diff.replaces) == (True, [])
        updated = provider.update(created.id, created.outputs, relabelled)
        assert updated.outputs["label"] == "two"

        resized = provider.diff(created.id, updated.outputs, {**relabelled, "size": 2})
        assert (resized.changes, resized.replaces) == (True, ["size"])
        assert provider.diff(created.id, updated.outputs, relabelled).changes is False

        provider.delete(created.id, updated.outputs)
        gone = provider.read(created.id, updated.outputs)

    assert gone.id is None
    assert [r["call"] for r in read_journal(world) if r["call"] != "check"] == [
        "create",
        "read",
        "diff",
        "update",
        "diff",
        "diff",
        "delete",
        "read",
    ]


def test_secrets_reach_the_provider_in_plain_text(world: Path, toy_env: dict[str, str]) -> None:
    with ProviderProcess(ToyProvider(), env=toy_env) as provider:
        provider.configure({})
        created = provider.create({"world": str(world), "name": "a", "password": secret("hunter2")})

    # The dynamic provider does not accept secrets: the engine sends plain values and re-marks them itself.
    assert created.outputs["password"] == "hunter2"
    assert created.outputs["password_length"] == 7


def test_an_exception_in_create_carries_the_providers_message(world: Path, toy_env: dict[str, str]) -> None:
    with ProviderProcess(ToyProvider(), env=toy_env) as provider:
        provider.configure({})
        with pytest.raises(ProviderCallError) as raised:
            provider.create({"world": str(world), "name": "a", "fail": "quota exceeded on ns1"})
        printed = provider.wait_for_line("[a] creating")

    assert raised.value.method == "Create"
    assert raised.value.reason == "RuntimeError: quota exceeded on ns1"
    assert "quota exceeded on ns1" in str(raised.value)
    assert "Traceback" in raised.value.details
    assert printed.startswith("[a] creating toy-")


def test_a_killed_provider_fails_the_running_call(world: Path, toy_env: dict[str, str]) -> None:
    with ProviderProcess(ToyProvider(), env=toy_env) as provider:
        provider.configure({})
        errors: list[BaseException] = []

        def slow_create() -> None:
            try:
                provider.create({"world": str(world), "name": "slow", "sleep": 30})
            except BaseException as error:  # collected for the assertion below
                errors.append(error)

        creating = threading.Thread(target=slow_create)
        creating.start()
        provider.wait_for_line("[slow] creating")
        provider.kill()
        creating.join(timeout=30)

        assert not provider.running
        with pytest.raises(ProviderCallError, match="exited with code"):
            provider.check({}, {"world": str(world)})

    assert len(errors) == 1
    assert isinstance(errors[0], ProviderCallError)
    assert "exited with code -9" in str(errors[0].details)


def test_stop_ends_the_process_group(toy_env: dict[str, str]) -> None:
    provider = ProviderProcess(ToyProvider(), env=toy_env).start()
    assert provider.running
    provider.stop()
    assert provider.returncode is not None
