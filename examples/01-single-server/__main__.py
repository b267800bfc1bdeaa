"""One dedicated server running one image: the smallest useful stack.

Which server and which image come from the stack config (Pulumi.<stack>.yaml); everything else is here.
"""

import pulumi
from ovh_byoi import ByoiInstallation

config = pulumi.Config()

web = ByoiInstallation(
    "web-1",
    service_name=config.require("serviceName"),
    image_url=config.require("imageUrl"),
    image_type="qcow2",
    # With a checksum the image is known by its bytes: moving it to another URL reinstalls nothing, and OVH
    # refuses a download that does not match.
    image_checksum=config.get("imageChecksum"),
    efi_bootloader_path=r"\efi\debian\grubx64.efi",
    hostname="web-1",
    ssh_key=config.get("sshKey"),
    # A mapping becomes a #cloud-config document; it is stored as a secret, like http_headers.
    config_drive_user_data={"packages": ["htop"], "timezone": "Europe/Paris"},
)

pulumi.export("os", web.os)
pulumi.export("task_id", web.task_id)
pulumi.export("installed_at", web.installed_at)
