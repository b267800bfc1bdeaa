"""The partitions of a disk, read from its first bytes: a GPT's entries, or an MBR's four primaries."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

ESP_TYPE_GUID = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
_MBR_ESP_TYPE = 0xEF
_MBR_GPT_PROTECTIVE = 0xEE


@dataclass(frozen=True)
class Partition:
    number: int
    start: int
    size: int
    is_esp: bool


def efi_system_partition(partitions: Iterable[Partition]) -> Partition | None:
    return next((partition for partition in partitions if partition.is_esp), None)


def read_partitions(disk_head: bytes) -> list[Partition]:
    """The partitions of a disk from its first bytes: the GPT's entries, or the MBR's four primaries."""
    for sector in (512, 4096):
        header = disk_head[sector : sector + 92]
        if header[:8] == b"EFI PART":
            return _gpt_partitions(disk_head, header, sector)
    if disk_head[510:512] != b"\x55\xaa":
        return []
    found: list[Partition] = []
    for index in range(4):
        entry = disk_head[446 + 16 * index : 446 + 16 * (index + 1)]
        kind = entry[4]
        start, count = struct.unpack_from("<II", entry, 8)
        if kind not in (0, _MBR_GPT_PROTECTIVE) and count:
            found.append(Partition(index + 1, start * 512, count * 512, kind == _MBR_ESP_TYPE))
    return found


def _gpt_partitions(disk_head: bytes, header: bytes, sector: int) -> list[Partition]:
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    found: list[Partition] = []
    for index in range(min(count, 256)):
        offset = entries_lba * sector + index * entry_size
        entry = disk_head[offset : offset + 48]
        if len(entry) < 48:
            break
        type_guid = uuid.UUID(bytes_le=entry[:16])
        if type_guid.int == 0:
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        found.append(
            Partition(index + 1, first * sector, (last - first + 1) * sector, type_guid == ESP_TYPE_GUID)
        )
    return found
