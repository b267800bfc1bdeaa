"""How ByoiFleet makes sure the engine is recent enough on CLIs that predate the engine's version check.

The real CLI at hand (3.274) answers the check itself (test_rollout proves that path end to end); engines
older than 3.217 answer UNIMPLEMENTED, which only a stand-in for the engine's stub can show here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pulumi
import pytest
from ovh_byoi import fleet
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import resource_pb2


class Unimplemented(grpc.RpcError):  # type: ignore[misc]  # grpc ships no types
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNIMPLEMENTED

    def details(self) -> str:
        return "unknown method RequirePulumiVersion for service pulumirpc.Engine"


class EngineBefore3217:
    def RequirePulumiVersion(self, request: Any) -> None:
        raise Unimplemented()


def engine_with(monkeypatch: pytest.MonkeyPatch, *, hooks: bool) -> None:
    monkeypatch.setattr(pulumi_settings, "get_engine", EngineBefore3217)
    features = {resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_HOOKS} if hooks else set()
    monkeypatch.setattr(pulumi_settings, "monitor_supports_feature", lambda feature: feature in features)


def test_an_engine_without_the_version_check_but_with_resource_hooks_is_recent_enough(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine_with(monkeypatch, hooks=True)

    fleet.require_engine_version("web")


def test_an_engine_older_than_resource_hooks_is_refused_with_the_reason_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine_with(monkeypatch, hooks=False)

    with pytest.raises(pulumi.RunError) as refused:
        fleet.require_engine_version("web")

    message = str(refused.value)
    assert "needs the Pulumi CLI 3.182.0 or later, and this one is older" in message
    assert "replace (reinstall) a server when its provider's settings change" in message
    assert "Fix: upgrade the Pulumi CLI to 3.182.0 or later" in message


def test_without_an_engine_there_is_nothing_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulumi_settings, "get_engine", lambda: None)

    fleet.require_engine_version("web")


def test_the_minimum_is_the_one_scripts_get_pulumi_accepts() -> None:
    get_pulumi = (Path(__file__).resolve().parents[2] / "scripts" / "get-pulumi").read_text()

    assert f"PULUMI_MINIMUM={fleet.MINIMUM_PULUMI_VERSION}" in get_pulumi
