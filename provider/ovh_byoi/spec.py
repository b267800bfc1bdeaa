"""What a user declares for one BYOI installation, and the body OVH's reinstall call takes.

`ByoiInstallationArgs` is the user-facing input (snake_case), `ByoiInstallationState` adds what the provider
records, and `ReinstallRequest` is OVH's wire format (`operatingSystem`, `customizations.imageURL`, ...).
`check_inputs` validates field by field so that each bad field yields one problem naming the field and its
fix, and leaves alone the values Pulumi does not know yet. `install_changes` decides which differences end up
on the disk, which is what makes a change a reinstall.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import socket
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self, TypeAlias, cast
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo

__all__ = [
    "CHECKSUM_LENGTHS",
    "DEFAULT_TIMEOUT_MINUTES",
    "INSTALL_FIELDS",
    "ByoiInstallationArgs",
    "ByoiInstallationState",
    "ChecksumType",
    "ImageType",
    "OperatingSystem",
    "PreflightLevel",
    "Problem",
    "ReinstallCustomizations",
    "ReinstallRequest",
    "check_inputs",
    "install_changes",
    "is_unknown",
    "render_user_data",
]

# OVH's Terraform users outgrew 45 and then 60 minutes. The deadline also covers waiting for a reinstall
# that someone else started (10 to 20 minutes) before ours may begin, and downloading a large image over a
# slow link (20 GiB at 100 Mbit/s is half an hour on its own) on top of OVH's own 10 to 20 minutes of steps.
DEFAULT_TIMEOUT_MINUTES = 120
MAX_TIMEOUT_MINUTES = 24 * 60

CHECKSUM_LENGTHS: dict[str, int] = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
# OVH's API answers 413 beyond this ("Maximum request body size 1048576 exceeded."), after nothing was done.
MAX_REQUEST_BODY_BYTES = 1_048_576

ImageType: TypeAlias = Literal["qcow2", "raw"]
ChecksumType: TypeAlias = Literal["md5", "sha1", "sha256", "sha512"]
OperatingSystem: TypeAlias = Literal["byoi_64", "byolinux_64"]
PreflightLevel: TypeAlias = Literal["quick", "full", "off"]

# What ends up on the disk. A difference in any of these is a reinstall; every other input is a knob.
# The image itself is compared by `image_identity` (checksum when both sides have one, else URL), so
# `image_url` and `image_checksum` are not listed here.
INSTALL_FIELDS: tuple[str, ...] = (
    "service_name",
    "operating_system",
    "image_type",
    "efi_bootloader_path",
    "hostname",
    "ssh_key",
    "config_drive_user_data",
    "config_drive_metadata",
    "disk_group_id",
)
# Which inputs each template needs: BYOLinux needs only the image's URL (its image is qcow2, and OVH's own
# script makes it bootable); BYOI also needs the image type and the EFI bootloader's path.
TEMPLATE_REQUIRED: dict[str, tuple[str, ...]] = {
    "byoi_64": ("image_type", "efi_bootloader_path"),
    "byolinux_64": (),
}
# OVH's disk group ids are small integers; 0 is OVH's automatic choice (disk group 1, its install guide says).
MAX_DISK_GROUP_ID = 64


class _Unset:
    """Marks a value Pulumi does not know yet (an output of a resource not created during a preview)."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN_VALUE: Any = _Unset()

# The string the engine uses for an unknown value when it is not turned into `pulumi.output.Unknown`.
_UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def is_unknown(value: Any) -> bool:
    """Whether `value` is, or contains, a value Pulumi does not know yet."""
    if value is UNKNOWN_VALUE or value == _UNKNOWN_SENTINEL:
        return True
    if type(value).__name__ == "Unknown" and type(value).__module__.startswith("pulumi"):
        return True
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_unknown(v) for v in value)
    return False


# --- field rules --------------------------------------------------------------------------------------------


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _no_control_characters(value: str, what: str) -> None:
    if any(ch in value for ch in "\r\n\t\0") or not value.isprintable():
        raise ValueError(f"{what} contains control characters or line breaks")


_SERVICE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _service_name(value: str) -> str:
    if not _SERVICE_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a dedicated server service name")
    return value


def _image_url(value: str) -> str:
    _no_control_characters(value, "the URL")
    if value != value.strip() or " " in value:
        raise ValueError("the URL contains spaces")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            f"the URL scheme is {parts.scheme or 'missing'!r}; OVH downloads over http or https only"
        )
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        # A URL is stored and shown in plain text: credentials in it would leak into state and logs.
        raise ValueError("the URL carries credentials (user:password@), which would be stored in plain text")
    if not _is_host(parts.hostname):
        raise ValueError(
            "the URL's host is neither an IP address nor a host name (labels of 1 to 63 characters)"
        )
    link_local = _link_local(parts.hostname)
    if link_local:
        raise ValueError(
            f"the URL's host is {link_local}, a link-local or cloud metadata address: the server would "
            "download from its own network segment or its provider's metadata service, never your image"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("the URL's port is not a number from 1 to 65535")
    return value


# Names of metadata services that no image server uses (the addresses are caught by their range).
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "instance-data"})
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)
# The forms of an IPv4 address that resolvers accept besides dotted decimal: 2852039166, 0xa9fea9fe,
# 169.254.43518, 0251.0376.0251.0376 all reach 169.254.169.254.
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.I)


def _numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except (OSError, ValueError):
        return None


def _link_local(host: str) -> str | None:
    """How `host` is link-local or a metadata service, checked on the host as written (no DNS lookup)."""
    name = host.strip("[]").lower().rstrip(".")
    if name in _METADATA_NAMES:
        return name
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(
            name.split("%", 1)[0]
        )
    except ValueError:
        address = _numeric_ipv4(name)
    if address is None:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address.is_link_local or address in _METADATA_ADDRESSES:
        return str(address) if str(address) == name else f"{address} (written {name})"
    return None


def _is_host(host: str) -> bool:
    """Whether a download could connect to `host`: an IP address, or a name that IDNA can encode."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        return False
    return 0 < len(encoded) <= 253 and all(
        0 < len(label) <= 63 for label in encoded.removesuffix(b".").split(b".")
    )


def _checksum(value: str) -> str:
    value = value.strip().lower()
    if not value or any(ch not in string.hexdigits for ch in value):
        raise ValueError("the checksum must be a hexadecimal digest")
    if len(value) not in CHECKSUM_LENGTHS.values():
        raise ValueError(
            f"a hexadecimal digest of {len(value)} characters is none of "
            "md5 (32), sha1 (40), sha256 (64), sha512 (128)"
        )
    return value


def _efi_bootloader_path(value: str) -> str:
    _no_control_characters(value, "the path")
    if "/" in value:
        raise ValueError("the path uses '/'; OVH expects backslashes, as in \\efi\\debian\\grubx64.efi")
    if "\\\\" in value:
        raise ValueError("the path has doubled backslashes (the JSON-escaped form of the guide's table)")
    if not value.startswith("\\"):
        raise ValueError("the path must start with a backslash, as in \\efi\\debian\\grubx64.efi")
    if not value.lower().endswith(".efi"):
        raise ValueError("the path must name an .efi file")
    return value


_HOSTNAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _hostname(value: str) -> str:
    if not _HOSTNAME.fullmatch(value):
        raise ValueError(
            "OVH requires at most 63 characters, starting with a letter, ending with a letter or a digit, "
            "and only letters, digits and hyphens"
        )
    return value


_SSH_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


def _ssh_strings(blob: bytes) -> list[bytes] | None:
    """The SSH wire strings (4-byte big-endian length, then the bytes) that make up `blob` exactly."""
    fields: list[bytes] = []
    position = 0
    while position < len(blob):
        if position + 4 > len(blob):
            return None
        length = int.from_bytes(blob[position : position + 4], "big")
        position += 4
        if position + length > len(blob):
            return None
        fields.append(blob[position : position + length])
        position += length
    return fields


def _ecdsa_point(curve: str) -> Callable[[list[bytes]], bool]:
    # An uncompressed point: 0x04, then both coordinates of the curve's size.
    size = {"nistp256": 65, "nistp384": 97, "nistp521": 133}[curve]

    def layout(fields: list[bytes]) -> bool:
        return fields[1] == curve.encode() and len(fields[2]) == size and fields[2][:1] == b"\x04"

    return layout


# What follows the key type in the key's data, per type (RFC 4253, 5656, 8709, OpenSSH's PROTOCOL.u2f).
_SSH_KEY_LAYOUTS: dict[str, tuple[int, Callable[[list[bytes]], bool]]] = {
    "ssh-ed25519": (2, lambda fields: len(fields[1]) == 32),
    "sk-ssh-ed25519@openssh.com": (3, lambda fields: len(fields[1]) == 32 and bool(fields[2])),
    # e, then a modulus of at least 1024 bits (OpenSSH refuses shorter ones).
    "ssh-rsa": (3, lambda fields: bool(fields[1]) and len(fields[2].lstrip(b"\0")) >= 128),
    "ssh-dss": (5, lambda fields: all(fields[1:])),
    "ecdsa-sha2-nistp256": (3, _ecdsa_point("nistp256")),
    "ecdsa-sha2-nistp384": (3, _ecdsa_point("nistp384")),
    "ecdsa-sha2-nistp521": (3, _ecdsa_point("nistp521")),
    "sk-ecdsa-sha2-nistp256@openssh.com": (
        4,
        lambda fields: _ecdsa_point("nistp256")(fields) and bool(fields[3]),
    ),
}
_SSH_KEY_TYPES = frozenset(_SSH_KEY_LAYOUTS)


def _ssh_key(value: str) -> str:
    value = value.strip()
    if "\n" in value or "\r" in value:
        raise ValueError("the key spans several lines; give one OpenSSH public key line")
    fields = value.split(None, 2)
    if len(fields) < 2 or fields[0] not in _SSH_KEY_TYPES:
        raise ValueError("this is not an OpenSSH public key line ('ssh-ed25519 AAAA... comment')")
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the key's base64 part does not decode") from None
    parts = _ssh_strings(blob)
    if not parts or parts[0].decode("ascii", "replace") != fields[0]:
        raise ValueError(f"the key's data is not a {fields[0]} key (truncated or mixed up)")
    count, layout = _SSH_KEY_LAYOUTS[fields[0]]
    if len(parts) != count or not layout(parts):
        raise ValueError(
            f"the key's data starts as a {fields[0]} key but does not hold one (truncated, padded or edited)"
        )
    return value


def render_user_data(value: Mapping[str, Any]) -> str:
    """A mapping as a `#cloud-config` document.

    Keys are sorted, so that reordering a dict in a program changes nothing on the disk.
    """
    body = yaml.safe_dump(dict(value), sort_keys=True, default_flow_style=False, allow_unicode=True)
    return "#cloud-config\n" + body


def _user_data_from_mapping(value: Any) -> Any:
    if isinstance(value, Mapping):
        try:
            return render_user_data(value)
        except yaml.YAMLError:
            raise ValueError("the mapping holds values YAML cannot represent") from None
    return value


_BASE64_TEXT = re.compile(r"^[A-Za-z0-9+/\s]+={0,2}\s*$")


def _from_base64(value: str) -> str:
    """What the guide tells users to send OVH (`base64 -w0 < user-data.yaml`), decoded; else `value`."""
    if value.startswith("#") or not _BASE64_TEXT.fullmatch(value):
        return value
    try:
        decoded = base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return value
    if decoded.startswith(("#cloud-config", "#!")):
        return decoded
    raise ValueError(
        "the value is base64, but what it decodes to starts with neither '#cloud-config' nor '#!'"
    )


def _user_data(value: str) -> str:
    value = _from_base64(value)
    encoded = 4 * ((len(value.encode()) + 2) // 3)
    if encoded > MAX_REQUEST_BODY_BYTES:
        raise ValueError(
            f"the user data is {len(value.encode())} bytes, {encoded} once in base64: beyond OVH's request "
            f"body limit of {MAX_REQUEST_BODY_BYTES} bytes (OVH: 'Maximum request body size "
            f"{MAX_REQUEST_BODY_BYTES} exceeded.')"
        )
    if value.startswith("#!"):
        return value
    if not value.startswith("#cloud-config"):
        raise ValueError(
            "user data must start with '#cloud-config' (a YAML document) or '#!' (a script), "
            "as text or in base64"
        )
    try:
        document = yaml.safe_load(value)
    except yaml.MarkedYAMLError as exc:
        # The text may hold secrets: report only where and what, never a snippet of it.
        where = (
            f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
            if exc.problem_mark
            else ""
        )
        raise ValueError(f"the #cloud-config document is not valid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError:
        raise ValueError("the #cloud-config document is not valid YAML") from None
    if document is not None and not isinstance(document, dict):
        raise ValueError("a #cloud-config document must be a YAML mapping (keys such as packages:, users:)")
    return value


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE = re.compile(r"^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$")


# Headers the HTTP client writes itself, to frame or route the request (RFC 9110, 9112): a user's own would
# contradict it, and the download breaks or goes elsewhere. Range would make OVH download part of the image.
_CLIENT_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "range",
    }
)


def _http_headers(value: dict[str, str]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for name, header_value in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid HTTP header name")
        if name.lower() in _CLIENT_HEADERS:
            raise ValueError(
                f"header {name!r} is written by the HTTP client itself (it frames or routes the request): "
                "a value of yours would break the download; remove it"
            )
        if name.lower() in seen:
            raise ValueError(
                f"headers {seen[name.lower()]!r} and {name!r} are the same header (names ignore case); "
                "keep one"
            )
        seen[name.lower()] = name
        if not header_value:
            raise ValueError(f"the value of header {name!r} is empty; give its value or remove the header")
        # The value is a secret (typically a password): name the header, never show the value.
        if any(ch in header_value for ch in "\r\n\0"):
            raise ValueError(f"the value of header {name!r} contains a line break")
        if not _HEADER_VALUE.fullmatch(header_value):
            # HTTP carries visible ASCII in header values; anything else fails the download, or the request.
            raise ValueError(
                f"the value of header {name!r} holds a control character, a character beyond ASCII, or "
                "leading or trailing spaces"
            )
    return value


def _metadata(value: dict[str, str]) -> dict[str, str]:
    if any(not key for key in value):
        raise ValueError("a metadata key is empty")
    for key, item in value.items():
        if not key.isprintable():
            raise ValueError(f"the metadata key {key!r} holds a control character or a line break")
        # The value may be a secret: name its key only.
        if not item.isprintable():
            raise ValueError(f"the value of metadata key {key!r} holds a control character or a line break")
    return value


ServiceName = Annotated[str, AfterValidator(_service_name)]
ImageUrl = Annotated[str, Field(max_length=4096), AfterValidator(_image_url)]
Checksum = Annotated[str, AfterValidator(_checksum)]
EfiBootloaderPath = Annotated[str, Field(max_length=1024), AfterValidator(_efi_bootloader_path)]
Hostname = Annotated[str, AfterValidator(_hostname)]
SshKey = Annotated[str, Field(max_length=16384), AfterValidator(_ssh_key)]
UserData = Annotated[
    str, BeforeValidator(_user_data_from_mapping), Field(min_length=1), AfterValidator(_user_data)
]
HttpHeaders = Annotated[dict[str, str], AfterValidator(_http_headers)]
Metadata = Annotated[dict[str, str], AfterValidator(_metadata)]
TimeoutMinutes = Annotated[int, Field(ge=1, le=MAX_TIMEOUT_MINUTES)]


# --- the models ---------------------------------------------------------------------------------------------

# One fix per field, shown with every problem of that field: what to write instead.
FIXES: dict[str, str] = {
    "service_name": "use the server's service name as OVH lists it, e.g. ns3001234.ip-51-91-2.eu",
    "image_url": (
        "give an http:// or https:// URL your server can download from its public network; put credentials "
        "in http_headers"
    ),
    "image_type": (
        'set "qcow2" or "raw", whatever the file really is (`qemu-img info` tells); byolinux_64 takes qcow2 '
        "only (leave it out or set qcow2)"
    ),
    "image_checksum": "give the image's hex digest (e.g. the output of `sha512sum`)",
    "image_checksum_type": 'set "md5", "sha1", "sha256" or "sha512" to match image_checksum, or omit it',
    "efi_bootloader_path": 'write the path with single backslashes, e.g. r"\\efi\\debian\\grubx64.efi"',
    "hostname": (
        "use a host name such as web-1 or a full domain name such as web-1.example.com: each dot-separated "
        "label at most 63 characters, starting with a letter, ending with a letter or a digit"
    ),
    "ssh_key": "paste one line of your .pub file, e.g. ssh-ed25519 AAAA... you@example",
    "config_drive_user_data": (
        "give a #cloud-config YAML document, a #! script, or a mapping, as text (the provider encodes it "
        "in base64 for OVH) or in base64 (`base64 -w0 < user-data.yaml`); keep it well under 1 MiB by "
        "having cloud-init fetch large files itself (write_files with a URL, #include)"
    ),
    "config_drive_metadata": (
        "give a mapping of non-empty string keys to string values, each on one line, without control "
        "characters"
    ),
    "http_headers": (
        'give a mapping of header names to non-empty string values, e.g. {"Authorization": "Basic ..."}, '
        "without the headers HTTP writes itself (Host, Content-Length, Transfer-Encoding, Connection, Range)"
    ),
    "operating_system": 'set "byoi_64" (the default) or "byolinux_64"',
    "adopt": "set true to take over a server that already runs this image, false to install it",
    "disk_group_id": (
        f"give the diskGroupId of one of the server's disk groups (1 to {MAX_DISK_GROUP_ID}; "
        "GET /dedicated/server/<name>/specifications/hardware list them), or 0 / leave it out for OVH's "
        "automatic choice (disk group 1)"
    ),
    "timeout_minutes": f"give a whole number of minutes from 1 to {MAX_TIMEOUT_MINUTES}",
    "preflight": 'set "quick" (the default), "full" or "off"',
}


class ByoiInstallationArgs(BaseModel):
    """What a user declares: this server runs this image."""

    model_config = ConfigDict(extra="forbid")

    service_name: ServiceName
    image_url: ImageUrl
    # Required by byoi_64, not by byolinux_64 (TEMPLATE_REQUIRED).
    image_type: Annotated[ImageType, BeforeValidator(_lower)] | None = None
    efi_bootloader_path: EfiBootloaderPath | None = None
    image_checksum: Checksum | None = None
    image_checksum_type: Annotated[ChecksumType, BeforeValidator(_lower)] | None = None
    hostname: Hostname | None = None
    ssh_key: SshKey | None = None
    config_drive_user_data: UserData | None = None
    config_drive_metadata: Metadata | None = None
    http_headers: HttpHeaders | None = None
    operating_system: OperatingSystem = "byoi_64"
    disk_group_id: Annotated[int, Field(ge=0, le=MAX_DISK_GROUP_ID)] | None = None
    adopt: bool = False
    timeout_minutes: TimeoutMinutes = DEFAULT_TIMEOUT_MINUTES
    preflight: PreflightLevel = "quick"

    @model_validator(mode="after")
    def _checksum_pair(self) -> Self:
        problems = cross_field_problems(self.model_dump(), skip=frozenset())
        if problems:
            raise ValueError("; ".join(p.message for p in problems))
        if self.image_checksum is not None and self.image_checksum_type is None:
            self.image_checksum_type = _infer_checksum_type(self.image_checksum)
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
        user_data = args.config_drive_user_data
        customizations = {
            "imageURL": args.image_url,
            "imageType": args.image_type,
            "efiBootloaderPath": args.efi_bootloader_path,
            "imageCheckSum": args.image_checksum,
            "imageCheckSumType": args.image_checksum_type,
            "hostname": args.hostname,
            "sshKey": args.ssh_key,
            # The seed guide recommends base64: it survives quotes and line breaks untouched.
            "configDriveUserData": base64.b64encode(user_data.encode()).decode() if user_data else None,
            "configDriveMetadata": args.config_drive_metadata,
            "httpHeaders": args.http_headers,
        }
        body: dict[str, Any] = {"operatingSystem": args.operating_system, "customizations": customizations}
        if args.disk_group_id:
            # 0 is OVH's default (automatic): sent only when the user chose a group.
            body["storage"] = [{"diskGroupId": args.disk_group_id}]
        return cls.model_validate(body)

    def body(self) -> dict[str, Any]:
        """The JSON body of `POST /dedicated/server/{serviceName}/reinstall`."""
        return self.model_dump(by_alias=True, exclude_none=True)


# --- check --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One bad input: which field, what is wrong, and how to fix it."""

    field: str
    message: str
    fix: str

    @property
    def reason(self) -> str:
        return f"{self.field}: {self.message}. Fix: {self.fix}"


def _infer_checksum_type(checksum: str) -> ChecksumType:
    for name, length in CHECKSUM_LENGTHS.items():
        if len(checksum) == length:
            return cast(ChecksumType, name)
    raise ValueError(f"no checksum type has {len(checksum)} hex digits")


def _wire_value(name: str, value: Any) -> Any:
    if name == "config_drive_user_data" and isinstance(value, str):
        return base64.b64encode(value.encode()).decode()
    return value


def _body_size_problems(values: Mapping[str, Any], skip: frozenset[str]) -> list[Problem]:
    """OVH's request body limit, over the known values (unknown ones can only add to the size)."""
    aliases = {
        name: info.alias or name
        for name, info in ReinstallCustomizations.model_fields.items()
        if name not in skip and values.get(name) is not None
    }
    customizations = {alias: _wire_value(name, values[name]) for name, alias in aliases.items()}
    body = {"operatingSystem": values.get("operating_system") or "byoi_64", "customizations": customizations}
    # As OVH's client sends it: compact separators, non-ASCII escaped.
    size = len(json.dumps(body, separators=(",", ":")).encode())
    if size <= MAX_REQUEST_BODY_BYTES:
        return []
    shares = {name: len(json.dumps(customizations[alias])) for name, alias in aliases.items()}
    biggest = max(shares, key=lambda name: shares[name])
    return [
        Problem(
            biggest,
            f"OVH's reinstall request would be {size} bytes, beyond its request body limit of "
            f"{MAX_REQUEST_BODY_BYTES} bytes (OVH: 'Maximum request body size {MAX_REQUEST_BODY_BYTES} "
            f"exceeded.'); {biggest} makes {shares[biggest]} of them",
            FIXES[biggest],
        )
    ]


def cross_field_problems(
    values: Mapping[str, Any], *, skip: frozenset[str], require: bool = True
) -> list[Problem]:
    """Rules that involve several fields; a rule is left out when a field it needs is in `skip`.

    `require`: the inputs the template needs must be there (not when checking part of an install)."""
    size_problems = _body_size_problems(values, skip)
    return size_problems or [*_template_problems(values, skip, require), *_checksum_problems(values, skip)]


def _template_problems(values: Mapping[str, Any], skip: frozenset[str], require: bool) -> list[Problem]:
    if "operating_system" in skip:
        return []
    template = values.get("operating_system") or "byoi_64"
    problems = []
    if require:
        for name in TEMPLATE_REQUIRED.get(template, ()):
            if values.get(name) is None and name not in skip:
                problems.append(Problem(name, f"{name} is required for {template}", FIXES[name]))
    if template == "byolinux_64" and values.get("image_type") not in (None, "qcow2"):
        problems.append(
            Problem(
                "image_type",
                f"byolinux_64 installs qcow2 images only, not {values['image_type']} (OVH's BYOLinux guide)",
                "convert the image (qemu-img convert -O qcow2 <image> <new image>) and set image_type to "
                '"qcow2" or leave it out, or use operating_system "byoi_64" for a raw image',
            )
        )
    return problems


def _checksum_problems(values: Mapping[str, Any], skip: frozenset[str]) -> list[Problem]:
    if {"image_checksum", "image_checksum_type"} & skip:
        return []
    checksum, checksum_type = values.get("image_checksum"), values.get("image_checksum_type")
    if checksum_type is not None and checksum is None:
        return [
            Problem(
                "image_checksum_type",
                "image_checksum_type is set without image_checksum (OVH: 'Please provide checkSum AND "
                "checkSumType or none of them')",
                "add image_checksum, or remove image_checksum_type",
            )
        ]
    if (
        checksum is not None
        and checksum_type is not None
        and len(checksum) != CHECKSUM_LENGTHS[checksum_type]
    ):
        return [
            Problem(
                "image_checksum",
                f"a {checksum_type} digest has {CHECKSUM_LENGTHS[checksum_type]} hex digits, "
                f"this one has {len(checksum)}",
                "give the digest of the type you named, or fix image_checksum_type (or omit it to infer it)",
            )
        ]
    return []


def _field_adapter(info: FieldInfo) -> TypeAdapter[Any]:
    # The field's type with its constraints and validators, to validate one field at a time.
    annotation: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(annotation)


_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    name: _field_adapter(info) for name, info in ByoiInstallationArgs.model_fields.items()
}


def _message(error: Mapping[str, Any], field: str) -> str:
    ctx = error.get("ctx") or {}
    custom = error["type"] == "value_error" and "error" in ctx
    message = str(ctx["error"]) if custom else str(error["msg"])
    # Name the map key (a header or metadata name, never its value) when the error is inside a mapping.
    inner = [str(part) for part in error.get("loc", ()) if part not in ("", field)]
    if inner and error["type"] != "value_error":
        message = f"[{inner[0]!r}]: {message}"
    return message


def _validate_field(name: str, value: Any) -> tuple[Any, Problem | None]:
    try:
        return _ADAPTERS[name].validate_python(value), None
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        message = "; ".join(dict.fromkeys(_message(e, name) for e in errors))
        return None, Problem(name, message, FIXES[name])


def normalize_field(name: str, value: Any) -> Any:
    """`value` as the model stores it, or as given when it does not validate (an older version's state)."""
    if name not in _ADAPTERS or value is None or is_unknown(value):
        return value
    normalized, problem = _validate_field(name, value)
    return value if problem else normalized


def check_inputs(inputs: Mapping[str, Any], *, partial: bool = False) -> tuple[dict[str, Any], list[Problem]]:
    """Validate user inputs field by field: the one validator of the resource, the command and the stack.

    Returns the normalized inputs (with defaults when all values are known) and one problem per bad field.
    Values not known yet are passed through untouched and skipped by every rule that needs them. `partial`
    checks only the fields given (what `ovh-byoi verify-image` knows of an install) and adds no default.
    """
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    unknown: set[str] = set()
    invalid: set[str] = set()
    known_fields = ByoiInstallationArgs.model_fields
    for name, value in inputs.items():
        if name not in known_fields:
            problems.append(
                Problem(
                    name,
                    "is not an input of ByoiInstallation",
                    f"remove it; inputs are {', '.join(known_fields)}",
                )
            )
        elif is_unknown(value):
            unknown.add(name)
        elif value is None:
            continue
        else:
            normalized, problem = _validate_field(name, value)
            if problem:
                problems.append(problem)
                invalid.add(name)
            else:
                values[name] = normalized
    for name, info in known_fields.items():
        if partial:
            break
        if info.is_required() and name not in values and name not in unknown and name not in invalid:
            problems.append(Problem(name, f"{name} is required", FIXES[name]))
    problems.extend(cross_field_problems(values, skip=frozenset(unknown | invalid), require=not partial))
    if problems:
        return dict(inputs), problems
    if partial:
        if "image_checksum" in values and "image_checksum_type" not in values:
            values["image_checksum_type"] = _infer_checksum_type(values["image_checksum"])
        return {**values, **{name: inputs[name] for name in unknown}}, []
    if unknown:
        return {**values, **{name: inputs[name] for name in unknown}}, []
    return ByoiInstallationArgs.model_validate(values).outputs(), []


# --- diff ---------------------------------------------------------------------------------------------------


def _effective(props: Mapping[str, Any], name: str) -> Any:
    if name in props and props[name] is not None:
        return normalize_field(name, props[name])
    if name == "image_checksum_type":
        # Left out, it is the one the digest's length implies (as the model infers it).
        checksum = _effective(props, "image_checksum")
        if isinstance(checksum, str) and len(checksum) in CHECKSUM_LENGTHS.values():
            return _infer_checksum_type(checksum)
    info = ByoiInstallationArgs.model_fields[name]
    return None if info.is_required() else info.default


def _image_identity_change(olds: Mapping[str, Any], news: Mapping[str, Any]) -> str | None:
    old_sum, new_sum = _effective(olds, "image_checksum"), _effective(news, "image_checksum")
    if is_unknown(new_sum):
        return "image_checksum"
    if old_sum is not None and new_sum is not None:
        # Both sides name the bytes: the URL is only where they are fetched from.
        return "image_checksum" if old_sum != new_sum else None
    new_url = _effective(news, "image_url")
    if is_unknown(new_url) or _effective(olds, "image_url") != new_url:
        return "image_url"
    return None


def _on_disk(name: str, value: Any) -> Any:
    # The EFI system partition is FAT, whose names ignore case, and so does UEFI firmware looking up the
    # bootloader: \EFI\debian\grubx64.efi and \efi\debian\grubx64.efi boot the same file.
    if name == "efi_bootloader_path" and isinstance(value, str):
        return value.lower()
    if name == "disk_group_id":
        # Left out and 0 are both OVH's automatic choice.
        return value or 0
    return value


def install_changes(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """The inputs whose difference would change what ends up on the disk: each one means a reinstall.

    A value not known yet may change the disk, so it counts.
    """
    changed = [
        name
        for name in INSTALL_FIELDS
        if is_unknown(news.get(name))
        or _on_disk(name, _effective(olds, name)) != _on_disk(name, _effective(news, name))
    ]
    image = _image_identity_change(olds, news)
    if image:
        changed.insert(1, image)
    return changed


def knob_changes(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """The inputs that differ without changing what ends up on the disk (recorded by an update).

    An install field written differently for the same disk (the EFI path's case) is one of them.
    """
    changed = set(install_changes(olds, news))
    return [
        name
        for name in ByoiInstallationArgs.model_fields
        if name not in changed and _effective(olds, name) != _effective(news, name)
    ]
