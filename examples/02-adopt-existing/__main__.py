"""A server that already runs an image (installed by hand, with `ovh-byoi install` or OVH's control panel),
taken over by this stack without a reinstall.

`pulumi import` cannot work for dynamic resources, so adoption is a create that installs nothing: with
`adopt=True` the provider records the server's latest reinstall task and what OVH reports, and calls nothing
that changes the server. Declare exactly what was installed: from then on, a change of any of these inputs
is a replacement that reinstalls the server, and refresh reports any reinstall made outside the stack.
Once adopted, `adopt` may be set to false or removed: that is a plain update, never a reinstall.
"""

import pulumi
from ovh_byoi import ByoiInstallation

config = pulumi.Config()

db = ByoiInstallation(
    "db-1",
    service_name=config.require("serviceName"),
    image_url=config.require("imageUrl"),
    image_type="qcow2",
    image_checksum=config.get("imageChecksum"),
    efi_bootloader_path=r"\efi\debian\grubx64.efi",
    hostname="db-1",
    adopt=config.get_bool("adopt", True),
)

pulumi.export("task_id", db.task_id)
pulumi.export("os", db.os)
