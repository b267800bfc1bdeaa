"""Install your own OS image on OVHcloud dedicated servers, as a Pulumi resource.

`ByoiInstallation` is the resource a stack declares; `ByoiProvider` is its dynamic provider (its module path
is recorded in every stack's state and never moves); the spec models describe what a user declares and what
OVH's reinstall call receives.
"""

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
