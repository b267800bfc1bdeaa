"""The same servers declared as one ByoiFleet (`bench:shape` fleet: one shared provider, all in one batch)
or as plain ByoiInstallations (`installations`: the default provider), with the inputs of `bench:shared`."""

from typing import Any

import pulumi
from ovh_byoi import ByoiFleet, ByoiInstallation

config = pulumi.Config()
servers: list[str] = config.require_object("servers")
shared: dict[str, Any] = config.require_object("shared")
if config.require("shape") == "fleet":
    ByoiFleet(
        "web", servers={name: {} for name in servers}, canary=0, max_parallel=max(1, len(servers)), **shared
    )
else:
    for name in servers:
        ByoiInstallation(f"web-{name}", service_name=name, **shared)
