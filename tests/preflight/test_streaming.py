"""The one pass over the image: every byte to every consumer, a full disk reported, a bug never hidden."""

from __future__ import annotations

import errno
import hashlib
import io
from pathlib import Path

import pytest
from ovh_byoi.preflight.streaming import CHUNK_BYTES, POOL_CHUNKS, RangeSpool, pump

# More buffers than the pool holds, and a ragged end: buffers are reused, and reused correctly.
DATA = bytes(range(256)) * ((POOL_CHUNKS + 3) * CHUNK_BYTES // 256) + b"tail"


def test_every_consumer_sees_every_byte_in_order(tmp_path: Path) -> None:
    hasher = hashlib.sha256()
    spool = RangeSpool(tmp_path / "part", 3 * CHUNK_BYTES - 5, 5 * CHUNK_BYTES + 7)
    received, errors = pump(io.BytesIO(DATA).readinto, [hasher.update, spool], len(DATA), None)
    spool.close()
    assert (received, errors) == (len(DATA), [])
    assert hasher.hexdigest() == hashlib.sha256(DATA).hexdigest()
    assert (tmp_path / "part").read_bytes() == DATA[3 * CHUNK_BYTES - 5 : 5 * CHUNK_BYTES + 7]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_a_full_disk_under_the_spool_is_reported_and_the_hash_still_completes() -> None:
    hasher = hashlib.sha256()
    spool = RangeSpool(Path("/dev/full"), 0, len(DATA))
    received, errors = pump(io.BytesIO(DATA).readinto, [spool, hasher.update], None, None)
    assert received == len(DATA)
    assert [error.errno for error in errors] == [errno.ENOSPC]
    assert hasher.hexdigest() == hashlib.sha256(DATA).hexdigest()
    spool.close()  # a failed flush is returned, never raised


def test_a_bug_in_a_consumer_is_raised_not_reported() -> None:
    def buggy(chunk: memoryview) -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError, match="a bug"):
        pump(io.BytesIO(DATA).readinto, [hashlib.sha256().update, buggy], None, None)
