"""Install your own OS image on OVHcloud dedicated servers, as a Pulumi resource.

`ByoiInstallation` is the resource a stack declares; `ByoiFleet` rolls one image across many servers in
batches; `ByoiProvider` is the dynamic provider (its module path is recorded in every stack's state and never
moves); the spec models describe what a user declares and what OVH's reinstall call receives.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fleet import ByoiFleet
    from .provider import ByoiProvider
    from .resource import ByoiInstallation
    from .spec import ByoiInstallationArgs, ByoiInstallationState, ReinstallCustomizations, ReinstallRequest

__all__ = [
    "ByoiFleet",
    "ByoiInstallation",
    "ByoiInstallationArgs",
    "ByoiInstallationState",
    "ByoiProvider",
    "ReinstallCustomizations",
    "ReinstallRequest",
]

# Imported on first use: the `ovh-byoi` command needs none of Pulumi's SDK, whose import costs it about a
# second and most of its memory.
_MODULE_OF = {
    "ByoiFleet": ".fleet",
    "ByoiInstallation": ".resource",
    "ByoiProvider": ".provider",
    "ByoiInstallationArgs": ".spec",
    "ByoiInstallationState": ".spec",
    "ReinstallCustomizations": ".spec",
    "ReinstallRequest": ".spec",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
