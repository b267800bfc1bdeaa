"""Every input of ByoiInstallation, declared once: its type and rules, and what the rest of the project needs.

Each field of `ByoiInstallationArgs` carries an `InputMeta`: its fix, whether a difference reinstalls the
server, whether it is secret, whether a fleet's server may set it for itself, and its option of
`ovh-byoi install`. The resource, the fleet, the provider's check and diff, the command and the root stack
read these from here (`INSTALL_FIELDS`, `FIXES`, `SECRET_INPUTS`, `OVERRIDABLE`, `INPUTS`); tests check that
the resource's and the fleet's keyword parameters match the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

from .checksums import Checksum, ChecksumType, infer_checksum_type
from .cross_field import cross_field_problems
from .field_rules import (
    EfiBootloaderPath,
    Hostname,
    HttpHeaders,
    ImageType,
    Metadata,
    OperatingSystem,
    PreflightLevel,
    ServiceName,
    SshKey,
    UserData,
    lowercase,
)
from .url_rules import ImageUrl

__all__ = [
    "DEFAULT_TIMEOUT_MINUTES",
    "FIXES",
    "INPUTS",
    "INSTALL_FIELDS",
    "MAX_DISK_GROUP_ID",
    "MAX_TIMEOUT_MINUTES",
    "OVERRIDABLE",
    "SECRET_INPUTS",
    "ByoiInstallationArgs",
    "ByoiInstallationState",
    "CliOption",
    "InputMeta",
]

# OVH's Terraform users outgrew 45 and then 60 minutes. The deadline also covers waiting for a reinstall
# that someone else started (10 to 20 minutes) before ours may begin, and downloading a large image over a
# slow link (20 GiB at 100 Mbit/s is half an hour on its own) on top of OVH's own 10 to 20 minutes of steps.
DEFAULT_TIMEOUT_MINUTES = 120
MAX_TIMEOUT_MINUTES = 24 * 60
# OVH's disk group ids are small integers; 0 is OVH's automatic choice (disk group 1, its install guide says).
MAX_DISK_GROUP_ID = 64


@dataclass(frozen=True)
class CliOption:
    """How `ovh-byoi install` takes an input: its flags (the first long one names it in errors) and help.

    Choices and the value's type come from the field's type. `parse` reads repeated `'Name: value'` headers
    or `KEY=VALUE` pairs into a mapping; `reads_file` lets `@FILE` stand for the file's text.
    """

    flags: tuple[str, ...]
    help: str
    case_sensitive: bool = True
    parse: Literal["headers", "pairs"] | None = None
    reads_file: bool = False


@dataclass(frozen=True)
class InputMeta:
    """What the project knows of one input besides its type.

    `fix`: what to write instead, shown with every problem of the field. `reinstalls`: a difference ends up
    on the disk, so it replaces the resource (the image itself is compared by checksum, else URL, and is
    not marked). `secret`: always secret in the state, whatever the program passed. `per_server`: a fleet's
    server may set it for itself (else it is the server's own key). `cli`: its option of `ovh-byoi install`,
    None when the command does not take it as an option.
    """

    fix: str
    reinstalls: bool = False
    secret: bool = False
    per_server: bool = True
    cli: CliOption | None = None


class ByoiInstallationArgs(BaseModel):
    """What a user declares: this server runs this image."""

    model_config = ConfigDict(extra="forbid")

    service_name: Annotated[
        ServiceName,
        InputMeta(
            fix="use the server's service name as OVH lists it, e.g. ns3001234.ip-51-91-2.eu",
            reinstalls=True,
            per_server=False,
        ),
    ]
    image_url: Annotated[
        ImageUrl,
        InputMeta(
            fix="give an http:// or https:// URL your server can download from its public network; put "
            "credentials in http_headers",
            cli=CliOption(("--image-url",), "Where OVH downloads the image (http or https)."),
        ),
    ]
    # Required by byoi_64, not by byolinux_64 (TEMPLATE_REQUIRED).
    image_type: Annotated[
        Annotated[ImageType, BeforeValidator(lowercase)] | None,
        InputMeta(
            fix='set "qcow2" or "raw", whatever the file really is (`qemu-img info` tells); byolinux_64 '
            "takes qcow2 only (leave it out or set qcow2)",
            reinstalls=True,
            cli=CliOption(("--image-type", "--type"), "The image's real format.", case_sensitive=False),
        ),
    ] = None
    efi_bootloader_path: Annotated[
        EfiBootloaderPath | None,
        InputMeta(
            fix='write the path with single backslashes, e.g. r"\\efi\\debian\\grubx64.efi"',
            reinstalls=True,
            cli=CliOption(
                ("--efi-bootloader-path", "--efi-path"),
                r"The bootloader UEFI starts, e.g. \efi\debian\grubx64.efi.",
            ),
        ),
    ] = None
    image_checksum: Annotated[
        Checksum | None,
        InputMeta(
            fix="give the image's hex digest (e.g. the output of `sha512sum`)",
            cli=CliOption(("--image-checksum", "--checksum"), "The image's hex digest."),
        ),
    ] = None
    image_checksum_type: Annotated[
        Annotated[ChecksumType, BeforeValidator(lowercase)] | None,
        InputMeta(
            fix='set "md5", "sha1", "sha256" or "sha512" to match image_checksum, or omit it',
            cli=CliOption(
                ("--image-checksum-type", "--checksum-type"),
                "The digest's algorithm (default: inferred from its length).",
            ),
        ),
    ] = None
    hostname: Annotated[
        Hostname | None,
        InputMeta(
            fix="use a host name such as web-1 or a full domain name such as web-1.example.com: each "
            "dot-separated label at most 63 characters, starting with a letter, ending with a letter or a "
            "digit",
            reinstalls=True,
            cli=CliOption(("--hostname",), "The server's new host name."),
        ),
    ] = None
    ssh_key: Annotated[
        SshKey | None,
        InputMeta(
            fix="paste one line of your .pub file, e.g. ssh-ed25519 AAAA... you@example",
            reinstalls=True,
            cli=CliOption(("--ssh-key",), "An OpenSSH public key line, or @FILE.", reads_file=True),
        ),
    ] = None
    config_drive_user_data: Annotated[
        UserData | None,
        InputMeta(
            fix="give a #cloud-config YAML document, a #! script, or a mapping, as text (the provider "
            "encodes it in base64 for OVH) or in base64 (`base64 -w0 < user-data.yaml`); keep it well under "
            "1 MiB by having cloud-init fetch large files itself (write_files with a URL, #include)",
            reinstalls=True,
            # User data commonly carries credentials for first boot.
            secret=True,
            cli=CliOption(
                ("--config-drive-user-data", "--user-data"),
                "A #cloud-config document or a script, or @FILE.",
                reads_file=True,
            ),
        ),
    ] = None
    config_drive_metadata: Annotated[
        Metadata | None,
        InputMeta(
            fix="give a mapping of non-empty string keys to string values, each on one line, without control "
            "characters",
            reinstalls=True,
            secret=True,
            cli=CliOption(
                ("--config-drive-metadata", "--metadata"), "Cloud-init metadata (repeatable).", parse="pairs"
            ),
        ),
    ] = None
    http_headers: Annotated[
        HttpHeaders | None,
        InputMeta(
            fix='give a mapping of header names to non-empty string values, e.g. {"Authorization": "Basic '
            '..."}, without the headers HTTP writes itself (Host, Content-Length, Transfer-Encoding, '
            "Connection, Range)",
            # Headers carry passwords or tokens.
            secret=True,
            cli=CliOption(
                ("-H", "--http-header"), "An HTTP header the download needs (repeatable).", parse="headers"
            ),
        ),
    ] = None
    operating_system: Annotated[
        OperatingSystem,
        InputMeta(
            fix='set "byoi_64" (the default) or "byolinux_64"',
            reinstalls=True,
            cli=CliOption(
                ("--operating-system",),
                "OVH's template (default byoi_64; byolinux_64 needs only --image-url, and a qcow2 image).",
            ),
        ),
    ] = "byoi_64"
    disk_group_id: Annotated[
        Annotated[int, Field(ge=0, le=MAX_DISK_GROUP_ID)] | None,
        InputMeta(
            fix=f"give the diskGroupId of one of the server's disk groups (1 to {MAX_DISK_GROUP_ID}; "
            "GET /dedicated/server/<name>/specifications/hardware list them), or 0 / leave it out for OVH's "
            "automatic choice (disk group 1)",
            reinstalls=True,
            cli=CliOption(
                ("--disk-group-id",),
                "The disk group the image goes to, on its first disk "
                "(default: OVH's automatic choice, group 1).",
            ),
        ),
    ] = None
    adopt: Annotated[
        bool,
        # Not an option of `ovh-byoi install`, which always installs.
        InputMeta(fix="set true to take over a server that already runs this image, false to install it"),
    ] = False
    timeout_minutes: Annotated[
        int,
        Field(ge=1, le=MAX_TIMEOUT_MINUTES),
        InputMeta(
            fix=f"give a whole number of minutes from 1 to {MAX_TIMEOUT_MINUTES}",
            cli=CliOption(("--timeout-minutes",), "How long to wait for OVH before giving up (default 120)."),
        ),
    ] = DEFAULT_TIMEOUT_MINUTES
    preflight: Annotated[
        PreflightLevel,
        InputMeta(
            fix='set "quick" (the default), "full" or "off"',
            cli=CliOption(("--preflight",), "Image checks first (default quick)."),
        ),
    ] = "quick"

    @model_validator(mode="after")
    def _checksum_pair(self) -> Self:
        problems = cross_field_problems(self.model_dump(), skip=frozenset(), fixes=FIXES)
        if problems:
            raise ValueError("; ".join(p.message for p in problems))
        if self.image_checksum is not None and self.image_checksum_type is None:
            self.image_checksum_type = infer_checksum_type(self.image_checksum)
        return self

    def outputs(self) -> dict[str, Any]:
        """The values to echo into the resource's outputs (Pulumi drops None, so leave it out)."""
        return self.model_dump(exclude_none=True)


class ByoiInstallationState(ByoiInstallationArgs):
    """What the provider records: the inputs, plus what OVH reported about the installation."""

    task_id: int | None = None
    installed_at: str | None = None
    os: str | None = None
    drift: str = ""


def _meta(name: str, info: FieldInfo) -> InputMeta:
    found = [item for item in info.metadata if isinstance(item, InputMeta)]
    if len(found) != 1:
        raise TypeError(f"ByoiInstallationArgs.{name} must carry one InputMeta (its fix, and what it is)")
    return found[0]


INPUTS: dict[str, InputMeta] = {
    name: _meta(name, info) for name, info in ByoiInstallationArgs.model_fields.items()
}
# What ends up on the disk. A difference in any of these is a reinstall; every other input is a knob.
# The image itself is compared by `image_identity` (checksum when both sides have one, else URL).
INSTALL_FIELDS: tuple[str, ...] = tuple(name for name, meta in INPUTS.items() if meta.reinstalls)
FIXES: dict[str, str] = {name: meta.fix for name, meta in INPUTS.items()}
SECRET_INPUTS: tuple[str, ...] = tuple(name for name, meta in INPUTS.items() if meta.secret)
# What a fleet's server may set for itself, and so what a fleet shares: all but the server's own name.
OVERRIDABLE: tuple[str, ...] = tuple(name for name, meta in INPUTS.items() if meta.per_server)
