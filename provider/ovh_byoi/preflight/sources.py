"""Where the image comes from: an http(s) URL (see `http`), or a local file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ovh_byoi.spec import Problem

# Enough for every format header the inspector knows (ISO needs 34 KiB) and for a GPT's partition entries.
HEAD_BYTES = 1024 * 1024

ReadInto = Callable[[bytearray], int]
"""Fills the start of a buffer with the next bytes of the image; returns how many, 0 at the end."""


@dataclass
class Probe:
    """What reaching the image tells: its size when known, its first bytes, or why it cannot be read."""

    size: int | None = None
    head: bytes | None = None
    findings: list[Problem] = field(default_factory=list)


class Source(Protocol):
    display: str
    # What must never be shown: the values of the HTTP headers sent.
    secrets: tuple[str, ...]
    # What reading the image raises when the transfer itself fails (not a bug of ours).
    transfer_errors: tuple[type[Exception], ...]

    def probe(self) -> Probe: ...

    def stream(self) -> contextlib.AbstractContextManager[ReadInto]: ...

    @property
    def local_path(self) -> Path | None: ...


def source_for(image_url: str, http_headers: Mapping[str, str]) -> Source:
    scheme = urlsplit(image_url).scheme.lower()
    if scheme in ("http", "https"):
        # Imported here: requests and urllib3 are a tenth of a second that checking a local file never needs.
        from .http import HttpSource

        return HttpSource(image_url, http_headers)
    if scheme == "file":
        return FileSource(Path(unquote(urlsplit(image_url).path)))
    return FileSource(Path(image_url).expanduser())


class FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = str(path)
        self.secrets: tuple[str, ...] = ()
        self.transfer_errors: tuple[type[Exception], ...] = (OSError,)

    @property
    def local_path(self) -> Path | None:
        return self.path

    def probe(self) -> Probe:
        try:
            with self.path.open("rb") as image:
                return Probe(size=os.fstat(image.fileno()).st_size, head=image.read(HEAD_BYTES))
        except OSError as exc:
            return Probe(
                findings=[
                    Problem(
                        "image_url",
                        f"cannot read {self.display}: {exc.strerror}",
                        "Give an http(s) URL, or the path of a readable image file.",
                    )
                ]
            )

    @contextlib.contextmanager
    def stream(self) -> Iterator[ReadInto]:
        # Unbuffered: `readinto` then copies from the page cache straight into the caller's buffer.
        with self.path.open("rb", buffering=0) as image:
            yield image.readinto
