"""The image checksum's rules: which digests OVH takes, and the type a digest's length implies."""

from __future__ import annotations

import string
from typing import Annotated, Literal, TypeAlias, cast

from pydantic import AfterValidator

__all__ = ["CHECKSUM_LENGTHS", "Checksum", "ChecksumType", "checksum_digest", "infer_checksum_type"]

ChecksumType: TypeAlias = Literal["md5", "sha1", "sha256", "sha512"]
CHECKSUM_LENGTHS: dict[str, int] = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}


def checksum_digest(value: str) -> str:
    """`value` as a lowercase hex digest of one of OVH's checksum types, or a ValueError saying why not."""
    value = value.strip().lower()
    if not value or any(ch not in string.hexdigits for ch in value):
        raise ValueError("the checksum must be a hexadecimal digest")
    if len(value) not in CHECKSUM_LENGTHS.values():
        raise ValueError(
            f"a hexadecimal digest of {len(value)} characters is none of "
            "md5 (32), sha1 (40), sha256 (64), sha512 (128)"
        )
    return value


def infer_checksum_type(checksum: str) -> ChecksumType:
    """The checksum type whose digests have as many hex digits as `checksum`."""
    for name, length in CHECKSUM_LENGTHS.items():
        if len(checksum) == length:
            return cast(ChecksumType, name)
    raise ValueError(f"no checksum type has {len(checksum)} hex digits")


Checksum = Annotated[str, AfterValidator(checksum_digest)]
