"""The image URL's rules: one OVH can download from, leaking no credential, reaching no metadata service.

Checked on the URL as written, without a DNS lookup: the provider runs where the user runs Pulumi, not where
the server downloads.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Annotated
from urllib.parse import urlsplit

import idna
from pydantic import AfterValidator, Field

from .field_rules import no_control_characters

__all__ = ["ImageUrl"]


def _image_url(value: str) -> str:
    no_control_characters(value, "the URL")
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
        # The encoding `requests` applies before connecting (IDNA 2008 with UTS 46 mapping), not Python's
        # IDNA 2003 codec, which accepts names such as "¡" that no download could then send.
        encoded = idna.encode(host, uts46=True)
    except (idna.IDNAError, UnicodeError):
        return False
    return 0 < len(encoded) <= 253 and all(
        0 < len(label) <= 63 for label in encoded.removesuffix(b".").split(b".")
    )


ImageUrl = Annotated[str, Field(max_length=4096), AfterValidator(_image_url)]
