"""A program declaring one ByoiFleet `web`, its keyword arguments the stack config's `fleet` object."""

import pulumi
from ovh_byoi import ByoiFleet
from ovh_byoi.fleet import require_engine_version

config = pulumi.Config()
# A test asks for an impossible CLI version to see, under the real engine, what a user of an old CLI sees.
minimum = config.get("requireVersion")
if minimum:
    require_engine_version("web", minimum)
web = ByoiFleet("web", **config.require_object("fleet"))
pulumi.export("batches", web.batches)
pulumi.export("task_ids", {name: installation.task_id for name, installation in web.installations.items()})
