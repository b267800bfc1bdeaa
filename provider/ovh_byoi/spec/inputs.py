"""Every input of ByoiInstallation, declared once: its type and rules, and what the rest of the project needs.

Each field of `ByoiInstallationArgs` carries an `InputMeta` (`input_meta`): its fix, its row of the inputs
table of docs/reference.md, whether a difference reinstalls the server, whether it is secret, whether a
fleet's server may set it for itself, and its option of `ovh-byoi install`. The resource, the fleet, the
provider's check and diff, the command and the root stack read these from here (`INSTALL_FIELDS`, `FIXES`,
`SECRET_INPUTS`, `OVERRIDABLE`, `INPUTS`); tests check that the resource's and the fleet's keyword
parameters match the model, and that the inputs table is the one the model renders.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

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
from .input_meta import CliOption, InputDoc, InputMeta
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
]

# OVH's Terraform users outgrew 45 and then 60 minutes. The deadline also covers waiting for a reinstall
# that someone else started (10 to 20 minutes) before ours may begin, and downloading a large image over a
# slow link (20 GiB at 100 Mbit/s is half an hour on its own) on top of OVH's own 10 to 20 minutes of steps.
DEFAULT_TIMEOUT_MINUTES = 120
MAX_TIMEOUT_MINUTES = 24 * 60
# OVH's disk group ids are small integers; 0 is OVH's automatic choice (disk group 1, its install guide says).
MAX_DISK_GROUP_ID = 64


class ByoiInstallationArgs(BaseModel):
    """What a user declares: this server runs this image."""

    model_config = ConfigDict(extra="forbid")

    service_name: Annotated[
        ServiceName,
        InputMeta(
            fix="use the server's service name as OVH lists it, e.g. ns3001234.ip-51-91-2.eu",
            doc=InputDoc(
                "string",
                "OVH's name of the server, e.g. `ns3001234.ip-51-91-2.eu`",
                change="**reinstalls** (another server)",
            ),
            reinstalls=True,
            per_server=False,
        ),
    ]
    image_url: Annotated[
        ImageUrl,
        InputMeta(
            fix="give an http:// or https:// URL your server can download from its public network; put "
            "credentials in http_headers",
            doc=InputDoc(
                "string",
                "`http://` or `https://`; credentials in the URL are refused (they would be stored in plain "
                "text): use `http_headers`; link-local and cloud metadata hosts (`169.254.169.254`, "
                "`fe80::`) are refused; **secret** when it carries a query string (a pre-signed URL)",
                change="**reinstalls**, unless both old and new have an `image_checksum`",
            ),
            cli=CliOption(("--image-url",), "Where OVH downloads the image (http or https)."),
        ),
    ]
    # Required by byoi_64, not by byolinux_64 (TEMPLATE_REQUIRED).
    image_type: Annotated[
        Annotated[ImageType, BeforeValidator(lowercase)] | None,
        InputMeta(
            fix='set "qcow2" or "raw", whatever the file really is (`qemu-img info` tells); byolinux_64 '
            "takes qcow2 only (leave it out or set qcow2)",
            doc=InputDoc(
                '`"qcow2"` or `"raw"`',
                "what the file really is (`qemu-img info` tells); a raw image must hold a partition table; "
                "`byolinux_64` takes qcow2 only",
                default="required for `byoi_64`; none for `byolinux_64`",
            ),
            reinstalls=True,
            cli=CliOption(("--image-type", "--type"), "The image's real format.", case_sensitive=False),
        ),
    ] = None
    efi_bootloader_path: Annotated[
        EfiBootloaderPath | None,
        InputMeta(
            fix='write the path with single backslashes, e.g. r"\\efi\\debian\\grubx64.efi"',
            doc=InputDoc(
                "string",
                r'the bootloader the firmware starts, with single backslashes: `r"\efi\debian\grubx64.efi"`',
                default="required for `byoi_64`; none for `byolinux_64`",
                change="**reinstalls**, unless only its case changes (the EFI partition is FAT)",
            ),
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
            doc=InputDoc(
                "hex string",
                "the image's digest; when old and new both have one, it is the image's identity and the URL "
                "is only where it is",
                change="**reinstalls** (a new image)",
            ),
            cli=CliOption(("--image-checksum", "--checksum"), "The image's hex digest."),
        ),
    ] = None
    image_checksum_type: Annotated[
        Annotated[ChecksumType, BeforeValidator(lowercase)] | None,
        InputMeta(
            fix='set "md5", "sha1", "sha256" or "sha512" to match image_checksum, or omit it',
            doc=InputDoc(
                '`"md5"`, `"sha1"`, `"sha256"`, `"sha512"`',
                "only with `image_checksum`; checked against the digest's length",
                default="from the digest's length",
            ),
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
            doc=InputDoc(
                "string",
                "a host name or a full domain name (`web-1.example.com`); OVH's rule, per dot-separated "
                "label: at most 63 characters, starts with a letter, ends with a letter or a digit, letters, "
                "digits and hyphens",
            ),
            reinstalls=True,
            cli=CliOption(("--hostname",), "The server's new host name."),
        ),
    ] = None
    ssh_key: Annotated[
        SshKey | None,
        InputMeta(
            fix="paste one line of your .pub file, e.g. ssh-ed25519 AAAA... you@example",
            doc=InputDoc(
                "string", "one OpenSSH public key line, whose data must hold a whole key of its type"
            ),
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
            doc=InputDoc(
                "string or mapping",
                "a `#cloud-config` YAML document, a `#!` script, or a mapping (rendered as `#cloud-config`, "
                "keys sorted), or either in base64 (decoded); sent base64-encoded, and the whole request "
                "must stay under OVH's 1 MiB",
            ),
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
            doc=InputDoc("map of strings", "config-drive metadata, without control characters"),
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
            doc=InputDoc(
                "map of strings",
                "headers OVH sends to download the image (`Authorization: Basic ...`), non-empty; headers "
                "HTTP writes itself (`Host`, `Content-Length`, `Range`, ...) are refused",
            ),
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
            doc=InputDoc(
                '`"byoi_64"` or `"byolinux_64"`', "OVH's template ([BYOI and BYOLinux](#byoi-and-byolinux))"
            ),
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
            doc=InputDoc(
                f"int, 0 to {MAX_DISK_GROUP_ID}",
                "the disk group the image goes to; BYOI writes it to the group's **first disk**, so the "
                "image must fit that disk, not the group's total; preflight checks it against the server's "
                'hardware and the "larger than device" fix names the groups whose disks would hold the image',
                default="none (OVH's automatic choice, disk group 1)",
            ),
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
        InputMeta(
            fix="set true to take over a server that already runs this image, false to install it",
            doc=InputDoc(
                "bool",
                "take over a server that already runs this image, without reinstalling it "
                "([below](#adopting-servers-that-already-run-an-image))",
            ),
        ),
    ] = False
    timeout_minutes: Annotated[
        int,
        Field(ge=1, le=MAX_TIMEOUT_MINUTES),
        InputMeta(
            fix=f"give a whole number of minutes from 1 to {MAX_TIMEOUT_MINUTES}",
            doc=InputDoc(
                f"int, 1 to {MAX_TIMEOUT_MINUTES}",
                "the provider's overall deadline, including waiting for a reinstall someone else started; "
                "OVH goes on when it passes",
            ),
            cli=CliOption(("--timeout-minutes",), "How long to wait for OVH before giving up (default 120)."),
        ),
    ] = DEFAULT_TIMEOUT_MINUTES
    preflight: Annotated[
        PreflightLevel,
        InputMeta(
            fix='set "quick" (the default), "full" or "off"',
            doc=InputDoc(
                '`"quick"`, `"full"` or `"off"`',
                "image checks before the reinstall ([below](#preflight-verify-before-wiping))",
            ),
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
