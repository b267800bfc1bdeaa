"""Each input's own rules, written for hostile input: what OVH would refuse, or what would break the install.

Each rule raises a ValueError whose text says what is wrong without quoting a value that may be a secret
(headers, user data, metadata); the input's fix is added by the check that reports it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, TypeAlias

import yaml
from pydantic import AfterValidator, BeforeValidator, Field

__all__ = [
    "MAX_REQUEST_BODY_BYTES",
    "EfiBootloaderPath",
    "Hostname",
    "HttpHeaders",
    "ImageType",
    "Metadata",
    "OperatingSystem",
    "PreflightLevel",
    "ServiceName",
    "SshKey",
    "UserData",
    "lowercase",
    "no_control_characters",
    "render_user_data",
]

# OVH's API answers 413 beyond this ("Maximum request body size 1048576 exceeded."), after nothing was done.
MAX_REQUEST_BODY_BYTES = 1_048_576

ImageType: TypeAlias = Literal["qcow2", "raw"]
OperatingSystem: TypeAlias = Literal["byoi_64", "byolinux_64"]
PreflightLevel: TypeAlias = Literal["quick", "full", "off"]


def lowercase(value: Any) -> Any:
    """A string stripped and in lower case (a `BeforeValidator` for names that ignore case)."""
    return value.strip().lower() if isinstance(value, str) else value


def no_control_characters(value: str, what: str) -> None:
    """Raise when `value` holds a line break, a tab, NUL or another character that does not print."""
    if any(ch in value for ch in "\r\n\t\0") or not value.isprintable():
        raise ValueError(f"{what} contains control characters or line breaks")


_SERVICE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _service_name(value: str) -> str:
    if not _SERVICE_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a dedicated server service name")
    return value


def _efi_bootloader_path(value: str) -> str:
    no_control_characters(value, "the path")
    if "/" in value:
        raise ValueError("the path uses '/'; OVH expects backslashes, as in \\efi\\debian\\grubx64.efi")
    if "\\\\" in value:
        raise ValueError("the path has doubled backslashes (the JSON-escaped form of the path)")
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
    """What OVH's BYOI guide tells users to send (`base64 -w0 < user-data.yaml`), decoded; else `value`."""
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
EfiBootloaderPath = Annotated[str, Field(max_length=1024), AfterValidator(_efi_bootloader_path)]
Hostname = Annotated[str, AfterValidator(_hostname)]
SshKey = Annotated[str, Field(max_length=16384), AfterValidator(_ssh_key)]
UserData = Annotated[
    str, BeforeValidator(_user_data_from_mapping), Field(min_length=1), AfterValidator(_user_data)
]
HttpHeaders = Annotated[dict[str, str], AfterValidator(_http_headers)]
Metadata = Annotated[dict[str, str], AfterValidator(_metadata)]
