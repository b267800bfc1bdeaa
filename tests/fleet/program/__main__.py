"""A program declaring one ByoiFleet `web`, its keyword arguments the stack config's `fleet` object.

With the config `layout: provider-per-server`, it declares the same fleet as ByoiFleet did before its servers
shared one provider: the same component, the same children, each with an explicit provider of its own
(`web-<service name>-provider`), for a test of the upgrade from that layout.
"""

from typing import Any

import pulumi
from ovh_byoi import ByoiFleet, ByoiInstallation
from ovh_byoi.fleet import (
    DYNAMIC_PROVIDER_PACKAGE,
    provider_credentials,
    require_engine_version,
    rollout_batches,
)


class ProviderPerServerFleet(pulumi.ComponentResource):
    """ByoiFleet's resources as it registered them up to 95a626c
    (`git show 95a626c:provider/ovh_byoi/fleet.py`): each child with its own `pulumi-python` provider, under
    the same parent and with the same names."""

    def __init__(
        self, name: str, *, servers: dict[str, Any], canary: int = 1, max_parallel: int = 4, **shared: Any
    ) -> None:
        super().__init__("ovh_byoi:index:ByoiFleet", name, None, None)
        credentials = provider_credentials()
        self.batches = rollout_batches(list(servers), canary=canary, max_parallel=max_parallel)
        self.installations: dict[str, ByoiInstallation] = {}
        previous: list[pulumi.Resource] = []
        for batch in self.batches:
            current: list[pulumi.Resource] = []
            for service_name in batch:
                provider = pulumi.ProviderResource(
                    DYNAMIC_PROVIDER_PACKAGE,
                    f"{name}-{service_name}-provider",
                    dict(credentials),
                    pulumi.ResourceOptions(parent=self),
                )
                installation = ByoiInstallation(
                    f"{name}-{service_name}",
                    service_name=service_name,
                    **{**shared, **(servers[service_name] or {})},
                    opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(previous)),
                )
                self.installations[service_name] = installation
                current.append(installation)
            previous = current
        self.register_outputs(
            {"task_ids": {sn: installation.task_id for sn, installation in self.installations.items()}}
        )


config = pulumi.Config()
# A test asks for an impossible CLI version to see, under the real engine, what a user of an old CLI sees.
minimum = config.get("requireVersion")
if minimum:
    require_engine_version("web", minimum)
fleet = ProviderPerServerFleet if config.get("layout") == "provider-per-server" else ByoiFleet
web = fleet("web", **config.require_object("fleet"))
pulumi.export("batches", web.batches)
pulumi.export("task_ids", {name: installation.task_id for name, installation in web.installations.items()})
