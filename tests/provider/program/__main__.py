"""Two servers, one image from the stack config; headers, user data and metadata written in the program."""

import base64

import pulumi
from ovh_byoi import ByoiInstallation

config = pulumi.Config()
HEADER = "Basic " + base64.b64encode(b"mirror:header-secret-5521").decode()

for number, service_name in enumerate(config.require_object("servers"), start=1):
    ByoiInstallation(
        f"web-{number}",
        service_name=service_name,
        image_url=config.require("imageUrl"),
        image_type="qcow2",
        image_checksum=config.require("imageChecksum"),
        efi_bootloader_path=r"\efi\debian\grubx64.efi",
        hostname=f"web-{number}",
        http_headers={"Authorization": HEADER},
        config_drive_user_data={"chpasswd": {"list": "root:user-data-secret-8812"}, "packages": ["vim"]},
        config_drive_metadata={"role": "metadata-secret-3391"},
    )
