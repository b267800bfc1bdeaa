"""Web servers running the same image; `drift-check` tells, on a schedule, whether they still do."""

import pulumi
from ovh_byoi import ByoiInstallation

config = pulumi.Config()

for number, service_name in enumerate(config.require_object("serviceNames"), start=1):
    # Named after the server, which never changes: see docs/reference.md, "The root stack".
    ByoiInstallation(
        service_name,
        service_name=service_name,
        image_url=config.require("imageUrl"),
        image_type="qcow2",
        image_checksum=config.get("imageChecksum"),
        efi_bootloader_path=r"\efi\debian\grubx64.efi",
        hostname=f"web-{number}",
    )
