"""Several servers running one image, rolled out the way a careful operator would do it by hand.

The first server (by service name) is the canary: it is reinstalled alone. Once it runs the new image, the
others follow `maxParallel` at a time, each batch after the previous one has finished. If an install fails,
the rollout stops there: later servers are left untouched, and the next `pulumi up` picks up where it
stopped. Servers whose install does not change are not touched, so adding a server installs just that one.
"""

import pulumi
from ovh_byoi import ByoiFleet

config = pulumi.Config()
# Service name -> hostname, e.g. {"ns3001234.ip-51-91-2.eu": "web-1", ...}
servers: dict[str, str] = config.require_object("servers")

web = ByoiFleet(
    "web",
    servers={service_name: {"hostname": hostname} for service_name, hostname in servers.items()},
    image_url=config.require("imageUrl"),
    image_type="qcow2",
    # A new checksum is a new image: it rolls through the fleet, canary first.
    image_checksum=config.get("imageChecksum"),
    efi_bootloader_path=r"\efi\debian\grubx64.efi",
    ssh_key=config.get("sshKey"),
    canary=config.get_int("canary", 1),
    max_parallel=config.get_int("maxParallel", 4),
)

pulumi.export("batches", web.batches)
pulumi.export("task_ids", {name: installation.task_id for name, installation in web.installations.items()})
