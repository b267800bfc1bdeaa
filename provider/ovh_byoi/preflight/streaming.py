"""One pass over the whole image, in constant memory: read once, hashed and spooled on other threads.

Reads go into a fixed pool of buffers, each handed to every consumer (the hash, the spool) on the consumer's
own thread, and reused once all of them are done with it. `hashlib` releases the GIL while it hashes a large
buffer, so the next read overlaps the hashing, and no byte is copied but by the read itself. (Reading and
hashing a local file on one thread spends less CPU, but took longer on a busy two-core machine.)
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .sources import ReadInto, Source

# Large reads keep the per-buffer Python work negligible next to hashing; the pool bounds memory.
CHUNK_BYTES = 1024 * 1024
POOL_CHUNKS = 8

Consume = Callable[[memoryview], object]
Progress = Callable[[int, int | None], None]


class _Pool:
    """Buffers to read into; one returns to the pool once each of its ``holders`` has released it."""

    def __init__(self, holders: int) -> None:
        self._holders = holders
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(POOL_CHUNKS):
            self._free.put(bytearray(CHUNK_BYTES))
        self._waiting: dict[int, int] = {}
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        buffer = self._free.get()
        with self._lock:
            self._waiting[id(buffer)] = self._holders
        return buffer

    def give_back(self, buffer: bytearray) -> None:
        with self._lock:
            self._waiting[id(buffer)] -= 1
            if self._waiting[id(buffer)]:
                return
            del self._waiting[id(buffer)]
        self._free.put(buffer)


class _Sink:
    """Feeds every filled buffer, in order, to ``consume`` on its own thread.

    After a failure the later buffers are given back unused, so that the reader never waits on a dead
    consumer; `close` returns the failure to the reading thread.
    """

    def __init__(self, consume: Consume, pool: _Pool) -> None:
        self._consume = consume
        self._pool = pool
        self._queue: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="preflight-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        get = self._queue.get
        while (item := get()) is not None:
            buffer, length = item
            try:
                if self._failure is None:
                    self._consume(memoryview(buffer)[:length])
            except BaseException as exc:  # handed to the caller's thread by close()
                self._failure = exc
            finally:
                self._pool.give_back(buffer)

    def put(self, buffer: bytearray, length: int) -> None:
        self._queue.put((buffer, length))

    def close(self) -> BaseException | None:
        self._queue.put(None)
        self._thread.join()
        return self._failure


def pump(
    read_into: ReadInto, consumers: Sequence[Consume], total: int | None, progress: Progress | None
) -> tuple[int, list[OSError]]:
    """Reads to the end, feeding every consumer; the bytes read and the consumers' OSErrors.

    An OSError of a consumer is the spool's disk failing, which the user can act on; anything else a
    consumer raises is a bug, raised here once every consumer has stopped.
    """
    pool = _Pool(max(len(consumers), 1))
    sinks = [_Sink(consume, pool) for consume in consumers]
    done = 0
    try:
        while True:
            buffer = pool.take()
            length = read_into(buffer)
            if not length:
                break
            for sink in sinks:
                sink.put(buffer, length)
            if not sinks:
                pool.give_back(buffer)
            done += length
            if progress is not None:
                progress(done, total)
    finally:
        failures = [failure for failure in (sink.close() for sink in sinks) if failure is not None]
    bugs = [failure for failure in failures if not isinstance(failure, OSError)]
    if bugs:
        raise bugs[0]
    return done, [failure for failure in failures if isinstance(failure, OSError)]


class RangeSpool:
    """Writes bytes ``[start, end)`` of the stream to a file (the EFI partition of a raw image)."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self.path = path
        self._file = path.open("wb")
        self._start = start
        self._end = end
        self._position = 0

    def __call__(self, chunk: memoryview) -> None:
        low = self._position
        self._position += len(chunk)
        first, last = max(low, self._start), min(self._position, self._end)
        if first < last:
            self._file.write(chunk[first - low : last - low])

    def close(self) -> OSError | None:
        """Closes the file; the error of writing what was buffered, if any (a full disk, most likely)."""
        try:
            self._file.close()
        except OSError as exc:
            return exc
        return None


@dataclass(frozen=True)
class PassResult:
    received: int
    hexdigest: str | None
    # The spool's disk failures (the hash cannot fail but by a bug, which propagates).
    spool_errors: list[OSError]


class ImagePass:
    """Reads the image once, on its own thread, so that the caller can look at the image meanwhile."""

    def __init__(
        self,
        source: Source,
        algorithm: str | None,
        spool: RangeSpool | None,
        total: int | None,
        progress: Progress | None,
    ) -> None:
        self._source = source
        self._hasher = hashlib.new(algorithm) if algorithm else None
        self._consumers: list[Consume] = [self._hasher.update] if self._hasher else []
        if spool is not None:
            self._consumers.append(spool)
        self._total = total
        self._progress = progress
        self._outcome: tuple[int, list[OSError]] | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="preflight-pass", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._source.stream() as read_into:
                self._outcome = pump(read_into, self._consumers, self._total, self._progress)
        except BaseException as exc:  # re-raised by finish() on the caller's thread
            self._failure = exc

    def finish(self) -> PassResult:
        """Waits for the end of the pass; raises what reading raised (see `Source.transfer_errors`)."""
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        if self._outcome is None:
            raise RuntimeError("the image pass ended without an outcome")
        received, spool_errors = self._outcome
        hexdigest = self._hasher.hexdigest() if self._hasher else None
        return PassResult(received, hexdigest, spool_errors)
