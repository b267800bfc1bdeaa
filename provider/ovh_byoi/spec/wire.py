"""OVH's reinstall call as it goes on the wire: `POST /dedicated/server/{serviceName}/reinstall`'s body."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .checksums import ChecksumType
from .field_rules import ImageType, OperatingSystem

if TYPE_CHECKING:
    from .inputs import ByoiInstallationArgs

__all__ = ["ReinstallCustomizations", "ReinstallRequest", "wire_value"]


class ReinstallCustomizations(BaseModel):
    """OVH's `dedicated.server.reinstall.Customizations`, in OVH's casing (`imageURL`, `imageCheckSum`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    image_url: str = Field(alias="imageURL")
    image_type: ImageType | None = Field(default=None, alias="imageType")
    efi_bootloader_path: str | None = Field(default=None, alias="efiBootloaderPath")
    image_checksum: str | None = Field(default=None, alias="imageCheckSum")
    image_checksum_type: ChecksumType | None = Field(default=None, alias="imageCheckSumType")
    hostname: str | None = Field(default=None, alias="hostname")
    ssh_key: str | None = Field(default=None, alias="sshKey")
    config_drive_user_data: str | None = Field(default=None, alias="configDriveUserData")
    config_drive_metadata: dict[str, str] | None = Field(default=None, alias="configDriveMetadata")
    http_headers: dict[str, str] | None = Field(default=None, alias="httpHeaders")


class ReinstallRequest(BaseModel):
    """OVH's `dedicated.server.Reinstall` body for a BYOI installation."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    operating_system: OperatingSystem = Field(alias="operatingSystem")
    customizations: ReinstallCustomizations
    storage: list[dict[str, int]] | None = None

    @classmethod
    def from_args(cls, args: ByoiInstallationArgs) -> ReinstallRequest:
        # Each customization is the input of the same name, in OVH's casing.
        customizations = {
            info.alias or name: wire_value(name, getattr(args, name))
            for name, info in ReinstallCustomizations.model_fields.items()
        }
        body: dict[str, Any] = {"operatingSystem": args.operating_system, "customizations": customizations}
        if args.disk_group_id:
            # 0 is OVH's default (automatic): sent only when the user chose a group.
            body["storage"] = [{"diskGroupId": args.disk_group_id}]
        return cls.model_validate(body)

    def body(self) -> dict[str, Any]:
        """The JSON body of `POST /dedicated/server/{serviceName}/reinstall`."""
        return self.model_dump(by_alias=True, exclude_none=True)


def wire_value(name: str, value: Any) -> Any:
    """An input's value as it goes into OVH's request body."""
    if name == "config_drive_user_data" and isinstance(value, str):
        # Base64 survives quotes and line breaks untouched, whatever the document holds.
        return base64.b64encode(value.encode()).decode()
    return value
