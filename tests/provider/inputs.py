"""Inputs a user could write, for the provider's tests."""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

SHA512 = hashlib.sha512(b"an image").hexdigest()
SHA256 = hashlib.sha256(b"an image").hexdigest()
OTHER_SHA512 = hashlib.sha512(b"another image").hexdigest()


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


# An ed25519 public key laid out as OpenSSH writes it: the key type, then the 32-byte key, as SSH strings.
SSH_KEY = (
    "ssh-ed25519 "
    + base64.b64encode(_ssh_string(b"ssh-ed25519") + _ssh_string(bytes(range(32)))).decode()
    + " ops@example"
)
OTHER_SSH_KEY = (
    "ssh-ed25519 "
    + base64.b64encode(_ssh_string(b"ssh-ed25519") + _ssh_string(bytes(range(1, 33)))).decode()
    + " ops@example"
)

EFI_DEBIAN = "\\efi\\debian\\grubx64.efi"


def valid_inputs(**changes: Any) -> dict[str, Any]:
    """A complete, valid set of inputs; `changes` replace (or, with None, remove) fields."""
    inputs: dict[str, Any] = {
        "service_name": "ns1000001.emulator.ovh",
        "image_url": "https://images.example.net/debian-12-generic-amd64.qcow2",
        "image_type": "qcow2",
        "efi_bootloader_path": EFI_DEBIAN,
        "hostname": "web-1",
        "ssh_key": SSH_KEY,
    }
    inputs.update(changes)
    return {name: value for name, value in inputs.items() if value is not None}
