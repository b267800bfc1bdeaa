"""The engine's steps for one resource, as `pulumi up` and `pulumi refresh` drive a provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testkit.provider_process import ProviderProcess

# The `image_inputs` fixture: inputs of an install of one of the emulator's images.
Inputs = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Deployed:
    """What the engine keeps of a resource between runs."""

    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


def up(
    provider: ProviderProcess, inputs: dict[str, Any], deployed: Deployed | None = None
) -> tuple[str, Deployed]:
    """The engine's steps for one resource in `pulumi up`: check, then diff and create, update or replace."""
    checked = provider.check(deployed.inputs if deployed else {}, inputs)
    assert checked.ok, checked.failures
    if deployed is None:
        created = provider.create(checked.inputs)
        return "create", Deployed(created.id, checked.inputs, created.outputs)
    diff = provider.diff(deployed.id, deployed.outputs, checked.inputs)
    if not diff.changes:
        return "same", deployed
    if diff.replaces:
        created = provider.create(checked.inputs)
        provider.delete(deployed.id, deployed.outputs)
        return "replace", Deployed(created.id, checked.inputs, created.outputs)
    updated = provider.update(deployed.id, deployed.outputs, checked.inputs)
    return "update", Deployed(deployed.id, checked.inputs, updated.outputs)


def refresh(provider: ProviderProcess, deployed: Deployed) -> Deployed:
    read = provider.read(deployed.id, deployed.outputs)
    assert read.id is not None
    return Deployed(read.id, deployed.inputs, read.outputs)
