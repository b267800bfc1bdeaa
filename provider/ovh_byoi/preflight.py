"""Checks an image before a destructive reinstall: every problem found before OVH erases the server.

OVH downloads and checks the image only after it has started reinstalling, so each mistake costs the server
its data. `run_preflight` finds the seed guide's common customer errors beforehand and returns them all at
once, each naming the field to change and the fix:

- ``quick`` reaches the URL with the user's headers (HEAD, or a ranged GET where HEAD is refused), compares
  the image's size with the server's disk and with its RAM minus 3 GiB, and inspects the first bytes with
  OpenStack's hardened format inspector: compressed files, a format other than ``image_type``, a raw image
  without a partition table, a qcow2 with a backing or external data file, ISO and other formats.
- ``full`` does the quick checks, then streams the whole image once, in constant memory, verifying the
  checksum and checking that ``efi_bootloader_path`` exists in the image's EFI system partition (read with
  ``qemu-img`` and ``mtools``, case-insensitively as UEFI firmware does).

Besides http(s) URLs, ``image_url`` may be a local path or ``file://`` URL, to verify an image before upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import queue
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from oslo_utils.imageutils import format_inspector

from ovh_byoi.errors import DiskGroups, disk_group_advice, guide_fix
from ovh_byoi.redaction import redact, url_secrets

__all__ = ["CHECK_LEVELS", "Finding", "ProgressCallback", "run_preflight"]

CHECK_LEVELS = ("off", "quick", "full")
Level = Literal["off", "quick", "full"]
ProgressCallback = Callable[[int, int | None], None]
"""Called with the bytes read so far and the image's size (``None`` when the server does not say)."""

GIB = 1024**3
# OVH downloads the image into the server's memory and keeps this much for the installer itself.
MEMORY_RESERVED_BYTES = 3 * GIB
# Enough for every format header the inspector knows (ISO needs 34 KiB) and for a GPT's partition entries.
HEAD_BYTES = 1024 * 1024
# Large reads keep per-chunk Python work negligible next to hashing; the queues bound memory to a few chunks.
CHUNK_BYTES = 1024 * 1024
QUEUE_CHUNKS = 8
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
TOOL_TIMEOUT = 600.0


@dataclass(frozen=True)
class Finding:
    """One problem with the declared image: the field to change, what is wrong, and how to fix it."""

    field: str
    message: str
    fix: str


def run_preflight(
    *,
    image_url: str,
    image_type: str,
    image_checksum: str | None,
    image_checksum_type: str | None,
    http_headers: Mapping[str, str] | None,
    efi_bootloader_path: str | None,
    level: str,
    disk_bytes: int | None,
    memory_bytes: int | None,
    progress: ProgressCallback | None = None,
    disk_groups: DiskGroups = (),
    disk_group_id: int | None = None,
) -> list[Finding]:
    """Every problem found with the image, or an empty list; never raises for a problem with the image.

    ``disk_bytes`` (the first disk of the target disk group: BYOI writes to that one disk) and
    ``memory_bytes`` describe the target server (``None`` skips that comparison); ``disk_groups`` and
    ``disk_group_id`` let the fix for an image too large name the groups that would hold it; ``progress`` is
    called while ``full`` streams the image.
    """
    disk = _Disk(disk_bytes, disk_groups, disk_group_id)
    if level not in CHECK_LEVELS:
        return [Finding("preflight", f"unknown preflight level {level!r}", "Use one of: off, quick, full.")]
    if level == "off":
        return []
    findings: list[Finding] = []
    checksum = _checksum_plan(image_checksum, image_checksum_type, findings)
    source = _source_for(image_url, http_headers or {})
    probe = source.probe()
    findings.extend(probe.findings)
    if probe.head is not None:
        layout = _inspect_head(probe.head, image_type, source.display)
        findings.extend(layout.findings)
        findings.extend(_size_findings(layout, probe.size, disk, memory_bytes))
        if level == "full":
            findings.extend(
                _full_check(
                    source, probe, layout, checksum, efi_bootloader_path, disk, memory_bytes, progress
                )
            )
    # Servers and libraries quote what they were sent: whatever a finding repeats, no secret gets through.
    return [
        Finding(finding.field, redact(finding.message, source.secrets), redact(finding.fix, source.secrets))
        for finding in findings
    ]


# ---------------------------------------------------------------------------------------------------------
# Checksums

_HASH_HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_HASH_BY_HEX_LENGTH = {length: name for name, length in _HASH_HEX_LENGTHS.items()}


@dataclass(frozen=True)
class _Checksum:
    algorithm: str
    hexdigest: str


def _checksum_plan(
    checksum: str | None, checksum_type: str | None, findings: list[Finding]
) -> _Checksum | None:
    value = (checksum or "").strip().lower()
    declared = (checksum_type or "").strip().lower()
    if not value:
        if declared:
            findings.append(
                Finding(
                    "image_checksum",
                    "image_checksum_type is set but image_checksum is not",
                    guide_fix("checksum_pair"),
                )
            )
        return None
    algorithm = declared or _HASH_BY_HEX_LENGTH.get(len(value), "")
    if algorithm not in _HASH_HEX_LENGTHS:
        findings.append(
            Finding(
                "image_checksum_type",
                f"unknown checksum type {declared!r}"
                if declared
                else f"a checksum of {len(value)} hex digits matches no checksum type",
                "Use md5, sha1, sha256 or sha512 (the hex digest has 32, 40, 64 or 128 digits).",
            )
        )
        return None
    if not re.fullmatch(rf"[0-9a-f]{{{_HASH_HEX_LENGTHS[algorithm]}}}", value):
        findings.append(
            Finding(
                "image_checksum",
                f"is not a {algorithm} hex digest ({_HASH_HEX_LENGTHS[algorithm]} hex digits)",
                f"Give the image's {algorithm} hex digest, as printed by `{algorithm}sum <image>`.",
            )
        )
        return None
    return _Checksum(algorithm, value)


# ---------------------------------------------------------------------------------------------------------
# Where the image comes from: an http(s) URL, or a local file


@dataclass
class _Probe:
    size: int | None = None
    head: bytes | None = None
    findings: list[Finding] = field(default_factory=list)


class _Source(Protocol):
    display: str
    # What must never be shown: the values of the HTTP headers sent.
    secrets: tuple[str, ...]

    def probe(self) -> _Probe: ...

    def stream(self) -> contextlib.AbstractContextManager[Callable[[], bytes]]: ...

    @property
    def local_path(self) -> Path | None: ...


def _source_for(image_url: str, http_headers: Mapping[str, str]) -> _Source:
    scheme = urlsplit(image_url).scheme.lower()
    if scheme in ("http", "https"):
        return _HttpSource(image_url, http_headers)
    if scheme == "file":
        return _FileSource(Path(unquote(urlsplit(image_url).path)))
    return _FileSource(Path(image_url).expanduser())


# What an HTTP status most likely means, and which field fixes it.
_STATUS_ADVICE: dict[int, tuple[str, str]] = {
    401: (
        "http_headers",
        "The server wants credentials: give them in http_headers, e.g. "
        '{"Authorization": "Basic <base64 of user:password>"}, and check them with curl.',
    ),
    403: (
        "http_headers",
        "The server refuses these credentials or this client: check the values in http_headers (and, for a "
        "pre-signed URL, that it has not expired).",
    ),
    404: ("image_url", "Nothing is published at this URL: check the host, the path and the file name."),
    407: (
        "image_url",
        "A proxy wants credentials: OVH's servers download directly, use a URL they can reach.",
    ),
    410: ("image_url", "The image was removed from this URL: publish it again or use its new URL."),
}


def _status_finding(status: int, reason: str | None, display: str, *, sent_credentials: bool) -> Finding:
    # A 401 despite the user's headers means they were refused, not missing.
    advice = _STATUS_ADVICE[403] if status == 401 and sent_credentials else _STATUS_ADVICE.get(status)
    target, fix = advice or ("image_url", guide_fix("download_failed"))
    return Finding(target, f"downloading {display} answers HTTP {status} {reason or ''}".rstrip(), fix)


# Reading the body through `response.raw` raises urllib3's own errors, which requests does not wrap; a host
# that cannot be encoded or a header value beyond Latin-1 fails with a ValueError before anything is sent.
_TRANSFER_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, ValueError)


def _unreachable_finding(display: str, exc: Exception, secrets: Iterable[str] = ()) -> Finding:
    kind = {
        requests.exceptions.SSLError: "its TLS certificate is not valid",
        requests.exceptions.ConnectTimeout: "the connection timed out",
        requests.exceptions.ReadTimeout: "the server stopped answering",
        requests.exceptions.ConnectionError: "the connection failed",
        requests.exceptions.InvalidURL: "the URL is not valid",
    }
    cause = next((text for klass, text in kind.items() if isinstance(exc, klass)), "the request failed")
    # urllib3 nests the reason in layers of repr: the system's words ("[Errno 111] ...") say it all.
    system_words = re.search(r"\[Errno -?\d+\] [^'\")\]]+", str(exc))
    detail = system_words.group(0) if system_words else redact(str(exc), secrets)
    return Finding(
        "image_url", f"cannot download {display}: {cause} ({detail})", guide_fix("download_failed")
    )


def _total_size(response: requests.Response) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    match = re.fullmatch(r"bytes \d+-\d+/(\d+)", content_range.strip())
    if match:
        return int(match.group(1))
    if response.status_code == 200 and "Content-Encoding" not in response.headers:
        length = response.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: what a redirect must keep for the user's headers to follow it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _origin_text(origin: tuple[str, str, int | None]) -> str:
    scheme, host, port = origin
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


class _OriginBoundSession(requests.Session):
    """Sends the user's headers to the image URL's scheme, host and port only.

    requests itself drops only `Authorization` when a redirect changes host (and keeps it on a change of
    port): a token in `X-Auth-Token` or `PRIVATE-TOKEN` would reach whatever host the image server redirects
    to. Here every user header is dropped at the first hop that leaves the origin, and stays dropped for the
    rest of that chain (requests builds each hop from the previous one).
    """

    def __init__(self, origin: tuple[str, str, int | None], user_headers: Iterable[str]) -> None:
        super().__init__()
        self.origin = origin
        self.user_headers = tuple(user_headers)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        if _origin(prepared_request.url or "") != self.origin:
            for name in self.user_headers:
                prepared_request.headers.pop(name, None)
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]


class _HttpSource:
    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        self.url = url
        self.display = redact(url)
        self._user_headers = bool(headers) or "@" in urlsplit(url).netloc
        self._user_header_names = tuple(headers)
        self.secrets: tuple[str, ...] = (*headers.values(), *url_secrets(url))
        self._headers = {
            # OVH's downloader receives the bytes as stored: never let the server compress them for us.
            "Accept-Encoding": "identity",
            "User-Agent": "ovh-byoi-preflight",
            **headers,
        }

    @property
    def local_path(self) -> Path | None:
        return None

    def _session(self) -> requests.Session:
        session = _OriginBoundSession(_origin(self.url), self._user_header_names)
        session.headers.update(self._headers)
        return session

    def _refused(self, response: requests.Response) -> Finding:
        elsewhere = _origin(response.url) != _origin(self.url)
        if elsewhere and response.history and self._user_header_names and response.status_code in (401, 403):
            # The headers were withheld on purpose: say so, rather than blame their values.
            return Finding(
                "http_headers",
                f"downloading {self.display} is redirected to {redact(response.url)}, which answers HTTP "
                f"{response.status_code} {response.reason or ''}".rstrip()
                + f"; http_headers are sent to {_origin_text(_origin(self.url))} only, never to another "
                "scheme, host or port",
                "If that server is the one that needs the headers, give its URL as image_url (OVH's "
                "downloader should not have to follow the redirect with your credentials); otherwise make "
                "the redirect's target downloadable without them (e.g. a pre-signed URL).",
            )
        return _status_finding(
            response.status_code, response.reason, self.display, sent_credentials=self._user_headers
        )

    def probe(self) -> _Probe:
        with self._session() as session:
            try:
                head = session.head(self.url, allow_redirects=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            except _TRANSFER_ERRORS as exc:
                return _Probe(findings=[_unreachable_finding(self.display, exc, self.secrets)])
            size = _total_size(head) if head.ok else None
            # The ranged GET reads the first bytes, and its status is the one that counts: some servers refuse
            # HEAD (405, 501) and pre-signed URLs allow GET only (403 on HEAD).
            try:
                with session.get(
                    self.url,
                    headers={"Range": f"bytes=0-{HEAD_BYTES - 1}"},
                    stream=True,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                ) as response:
                    if not response.ok:
                        return _Probe(findings=[self._refused(response)])
                    first = _read_at_most(lambda n: response.raw.read(n, decode_content=False), HEAD_BYTES)
                    size = _total_size(response) or size
            except _TRANSFER_ERRORS as exc:
                return _Probe(findings=[_unreachable_finding(self.display, exc, self.secrets)])
        return _Probe(size=size, head=first)

    @contextlib.contextmanager
    def stream(self) -> Iterator[Callable[[], bytes]]:
        with (
            self._session() as session,
            session.get(self.url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as response,
        ):
            response.raise_for_status()
            raw = response.raw
            yield lambda: raw.read(CHUNK_BYTES, decode_content=False)


class _FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = str(path)
        self.secrets: tuple[str, ...] = ()

    @property
    def local_path(self) -> Path | None:
        return self.path

    def probe(self) -> _Probe:
        try:
            with self.path.open("rb") as image:
                return _Probe(size=os.fstat(image.fileno()).st_size, head=image.read(HEAD_BYTES))
        except OSError as exc:
            return _Probe(
                findings=[
                    Finding(
                        "image_url",
                        f"cannot read {self.display}: {exc.strerror}",
                        "Give an http(s) URL, or the path of a readable image file.",
                    )
                ]
            )

    @contextlib.contextmanager
    def stream(self) -> Iterator[Callable[[], bytes]]:
        with self.path.open("rb", buffering=0) as image:
            yield lambda: image.read(CHUNK_BYTES) or b""


def _read_at_most(read: Callable[[int], bytes], limit: int) -> bytes:
    parts: list[bytes] = []
    remaining = limit
    while remaining > 0:
        part = read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------------------
# What the first bytes say


_COMPRESSION_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "gzip", "gunzip"),
    (b"\xfd7zXZ\x00", "xz", "unxz"),
    (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"),
    (b"BZh", "bzip2", "bunzip2"),
    (b"PK\x03\x04", "zip", "unzip"),
)

# The inspector's names for what OVH refuses.
_OTHER_FORMATS = {
    "iso": "an ISO 9660/UDF installer image",
    "vmdk": "a VMware (vmdk) disk",
    "vhd": "a Hyper-V (vhd) disk",
    "vhdx": "a Hyper-V (vhdx) disk",
    "vdi": "a VirtualBox (vdi) disk",
    "qed": "a QEMU qed disk",
    "luks": "a LUKS-encrypted volume",
}

_SAFETY_ADVICE: dict[str, tuple[str, str]] = {
    "backing_file": (
        "the qcow2 image points to a backing file, which OVH's server cannot read",
        "Flatten it into a standalone image: `qemu-img convert -O qcow2 <image> <standalone.qcow2>`.",
    ),
    "data_file": (
        "the qcow2 image keeps its data in an external data file, which OVH's server cannot read",
        "Flatten it into a standalone image: `qemu-img convert -O qcow2 <image> <standalone.qcow2>`.",
    ),
    "unknown_features": (
        "the qcow2 image uses features or a version that cannot be checked safely",
        "Rewrite it as a plain qcow2: `qemu-img convert -O qcow2 -o compat=1.1 <image> <new.qcow2>`.",
    ),
    "mbr": (
        "the image's partition table (MBR) is invalid",
        "Repair the partition table (`sfdisk --verify <image>`), or rebuild the image.",
    ),
}

ESP_TYPE_GUID = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
_MBR_ESP_TYPE = 0xEF
_MBR_GPT_PROTECTIVE = 0xEE


@dataclass(frozen=True)
class _Partition:
    number: int
    start: int
    size: int
    is_esp: bool


@dataclass
class _Layout:
    """What the first bytes tell: the real format, the size on disk, and where the EFI partition is."""

    real_format: str | None = None  # "raw" (with a partition table) or "qcow2" when usable, else None
    virtual_size: int | None = None
    partitions: tuple[_Partition, ...] = ()
    findings: list[Finding] = field(default_factory=list)


def _inspect_head(head: bytes, image_type: str, display: str) -> _Layout:
    if not head:
        return _Layout(
            findings=[Finding("image_url", f"{display} is empty", "Publish the image itself at this URL.")]
        )
    for magic, name, tool in _COMPRESSION_MAGIC:
        if head.startswith(magic):
            return _Layout(
                findings=[
                    Finding(
                        "image_url",
                        f"{display} is a {name}-compressed file, and OVH writes the bytes as they are",
                        f"Decompress it first (`{tool} <file>`), publish the uncompressed {image_type} "
                        "image, and point image_url (and image_checksum) at it.",
                    )
                ]
            )
    wrapper = format_inspector.InspectWrapper(io.BytesIO(head))
    while wrapper.read(64 * 1024):
        pass
    wrapper.close()
    try:
        detected = wrapper.format
    except format_inspector.ImageFormatError:
        # Several formats at once: a hybrid ISO (ISO 9660 and a partition table) is the usual case.
        names = sorted(str(inspector) for inspector in wrapper.formats or ())
        return _Layout(findings=[_unsupported_finding(display, names[0] if "iso" not in names else "iso")])
    name = str(detected) if detected is not None else "raw"
    if name in _OTHER_FORMATS:
        return _Layout(findings=[_unsupported_finding(display, name)])
    layout = _Layout()
    if name == "raw":
        # Nothing recognised: for a disk image, that means no partition table in the first sector.
        if image_type == "raw":
            layout.findings.append(
                Finding(
                    "image_url",
                    f"{display} has no partition table (MBR or GPT): it is not a raw disk image",
                    guide_fix("no_partition_table"),
                )
            )
        else:
            layout.findings.append(_mismatch_finding(display, "raw (without a partition table)", image_type))
        return layout
    real_format = "raw" if name == "gpt" else name
    if real_format != image_type:
        layout.findings.append(_mismatch_finding(display, real_format, image_type))
    assert detected is not None
    try:
        detected.safety_check()
    except format_inspector.SafetyCheckFailed as exc:
        for check in exc.failures:
            message, fix = _SAFETY_ADVICE.get(
                check.removeprefix("inner_"),
                (f"the image fails the {check} safety check", guide_fix("download_failed")),
            )
            layout.findings.append(Finding("image_url", f"{message} ({exc.failures[check]})", fix))
        return layout
    except format_inspector.ImageFormatError as exc:
        layout.findings.append(
            Finding("image_url", f"{display} cannot be inspected: {exc}", guide_fix("download_failed"))
        )
        return layout
    layout.real_format = real_format
    if real_format == "qcow2":
        layout.virtual_size = detected.virtual_size or None
    else:
        layout.partitions = tuple(_partitions(head))
    return layout


def _unsupported_finding(display: str, name: str) -> Finding:
    what = _OTHER_FORMATS.get(name, f"a {name} image")
    return Finding(
        "image_url",
        f"{display} is {what}; OVH installs only qcow2 and raw disk images",
        guide_fix("unsupported_format"),
    )


def _mismatch_finding(display: str, found: str, expected: str) -> Finding:
    short = found.split(" ", 1)[0]
    return Finding(
        "image_type",
        f"image_type is {expected}, but {display} is really {found}",
        guide_fix("format_mismatch", found=short, expected=expected),
    )


def _partitions(disk_head: bytes) -> list[_Partition]:
    """The partitions of a disk from its first bytes: the GPT's entries, or the MBR's four primaries."""
    for sector in (512, 4096):
        header = disk_head[sector : sector + 92]
        if header[:8] == b"EFI PART":
            return _gpt_partitions(disk_head, header, sector)
    if disk_head[510:512] != b"\x55\xaa":
        return []
    partitions = []
    for index in range(4):
        entry = disk_head[446 + 16 * index : 446 + 16 * (index + 1)]
        kind = entry[4]
        start, count = struct.unpack_from("<II", entry, 8)
        if kind not in (0, _MBR_GPT_PROTECTIVE) and count:
            partitions.append(_Partition(index + 1, start * 512, count * 512, kind == _MBR_ESP_TYPE))
    return partitions


def _gpt_partitions(disk_head: bytes, header: bytes, sector: int) -> list[_Partition]:
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    partitions = []
    for index in range(min(count, 256)):
        offset = entries_lba * sector + index * entry_size
        entry = disk_head[offset : offset + 48]
        if len(entry) < 48:
            break
        type_guid = uuid.UUID(bytes_le=entry[:16])
        if type_guid.int == 0:
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        partitions.append(
            _Partition(index + 1, first * sector, (last - first + 1) * sector, type_guid == ESP_TYPE_GUID)
        )
    return partitions


# ---------------------------------------------------------------------------------------------------------
# Sizes


def _bytes_text(count: int) -> str:
    unit, scale = ("GiB", GIB) if abs(count) >= GIB else ("MiB", 1024**2)
    return f"{count} bytes ({count / scale:.1f} {unit})"


@dataclass(frozen=True)
class _Disk:
    """Where the image goes: the first disk of the target disk group, and the server's other groups."""

    size: int | None
    groups: DiskGroups = ()
    group_id: int | None = None


def _size_findings(
    layout: _Layout, download_size: int | None, disk: _Disk, memory_bytes: int | None
) -> list[Finding]:
    disk_bytes = disk.size
    findings = []
    if download_size is not None and memory_bytes is not None:
        room = memory_bytes - MEMORY_RESERVED_BYTES
        if download_size > room:
            findings.append(
                Finding(
                    "image_url",
                    f"the image is {_bytes_text(download_size)}, more than the server's RAM minus 3 GiB "
                    f"({_bytes_text(max(room, 0))}): OVH downloads the image into memory",
                    guide_fix("too_big_for_memory"),
                )
            )
    on_disk = layout.virtual_size if layout.real_format == "qcow2" else download_size
    if (
        layout.real_format is not None
        and on_disk is not None
        and disk_bytes is not None
        and on_disk > disk_bytes
    ):
        findings.append(
            Finding(
                "image_url",
                f"the image needs {_bytes_text(on_disk)} on disk, more than the server's disk of "
                f"{_bytes_text(disk_bytes)} (the first disk of disk group {disk.group_id or 1}, where BYOI "
                "writes it)",
                guide_fix(
                    "too_big_for_disk",
                    device=str(disk_bytes),
                    groups=disk_group_advice(on_disk, disk.groups, disk.group_id),
                ),
            )
        )
    return findings


# ---------------------------------------------------------------------------------------------------------
# The full check: one pass over the whole image


class _Sink:
    """Feeds every chunk, in order, to ``consume`` on its own thread.

    Hashing (``hashlib`` releases the GIL on large buffers) and spooling to disk then overlap with the next
    read; the bounded queue keeps memory constant. An error is kept, and later chunks are drained unused so
    that the reader never blocks on a dead consumer.
    """

    def __init__(self, consume: Callable[[bytes], object]) -> None:
        self._consume = consume
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="preflight-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        consume = self._consume
        get = self._queue.get
        while (chunk := get()) is not None:
            if self.error is None:
                try:
                    consume(chunk)
                except BaseException as exc:  # kept and reported by the caller
                    self.error = exc

    def put(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


_WHOLE_FILE = 2**63


class _RangeSpool:
    """Writes bytes ``[start, end)`` of the stream to a file (the EFI partition of a raw image)."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self._file = path.open("wb")
        self._start = start
        self._end = end
        self._position = 0

    def __call__(self, chunk: bytes) -> None:
        low = self._position
        self._position += len(chunk)
        first, last = max(low, self._start), min(self._position, self._end)
        if first < last:
            self._file.write(memoryview(chunk)[first - low : last - low])

    def close(self) -> None:
        self._file.close()


def _pump(
    read: Callable[[], bytes],
    consumers: Sequence[Callable[[bytes], object]],
    total: int | None,
    progress: ProgressCallback | None,
) -> tuple[int, list[BaseException]]:
    sinks = [_Sink(consume) for consume in consumers]
    done = 0
    try:
        while chunk := read():
            for sink in sinks:
                sink.put(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    finally:
        for sink in sinks:
            sink.close()
    return done, [sink.error for sink in sinks if sink.error is not None]


def _full_check(
    source: _Source,
    probe: _Probe,
    layout: _Layout,
    checksum: _Checksum | None,
    efi_bootloader_path: str | None,
    disk: _Disk,
    memory_bytes: int | None,
    progress: ProgressCallback | None,
) -> list[Finding]:
    findings: list[Finding] = []
    hasher = hashlib.new(checksum.algorithm) if checksum else None
    want_efi = bool(efi_bootloader_path) and layout.real_format is not None
    with tempfile.TemporaryDirectory(prefix="ovh-byoi-preflight-") as scratch:
        consumers: list[Callable[[bytes], object]] = []
        if hasher is not None:
            consumers.append(hasher.update)
        spool, esp = _plan_spool(source, layout, Path(scratch), want_efi)
        if spool is not None:
            consumers.append(spool)
        try:
            with source.stream() as read:
                received, errors = _pump(read, consumers, probe.size, progress)
        except (*_TRANSFER_ERRORS, OSError) as exc:
            detail = redact(str(exc), source.secrets)
            return [
                Finding(
                    "image_url",
                    f"downloading {source.display} failed: {detail}",
                    guide_fix("download_failed"),
                )
            ]
        finally:
            if spool is not None:
                spool.close()
        if probe.size is not None and received != probe.size:
            findings.append(
                Finding(
                    "image_url",
                    f"the download of {source.display} stopped after {received} of {probe.size} bytes",
                    guide_fix("download_failed"),
                )
            )
        elif probe.size is None:
            findings.extend(_size_findings(layout, received, disk, memory_bytes))
        if checksum is not None and hasher is not None:
            actual = hasher.hexdigest()
            if actual != checksum.hexdigest:
                findings.append(
                    Finding(
                        "image_checksum",
                        f"the image's {checksum.algorithm} is {actual}, "
                        f"not the declared {checksum.hexdigest}",
                        guide_fix("bad_checksum"),
                    )
                )
        if errors:
            findings.append(
                Finding(
                    "image_url",
                    f"could not keep a copy of the image to look inside it: {errors[0]}",
                    "Free space in the temporary directory (or point TMPDIR elsewhere) and check again.",
                )
            )
            return findings
        if layout.real_format == "qcow2":
            damage = _qcow2_damage(source.local_path or (esp.path if esp else None))
            if damage:
                # Nothing inside a damaged image can be trusted, the EFI partition included.
                findings.append(
                    Finding("image_url", f"the qcow2 image is damaged: {damage}", guide_fix("cannot_write"))
                )
                return findings
        if want_efi and efi_bootloader_path:
            findings.extend(_efi_findings(source, layout, esp, Path(scratch), efi_bootloader_path))
    return findings


@dataclass(frozen=True)
class _EspCopy:
    """Where the EFI partition can be read after the stream: a file, and the partition's offset in it."""

    path: Path
    offset: int
    number: int


def _plan_spool(
    source: _Source, layout: _Layout, scratch: Path, want_efi: bool
) -> tuple[_RangeSpool | None, _EspCopy | None]:
    """What to keep on disk while streaming, so that qemu-img and mtools can look inside afterwards."""
    if source.local_path is not None:
        return None, None
    if layout.real_format == "qcow2":
        # qemu-img checks the whole qcow2, and where the EFI partition lies inside it depends on its cluster
        # tables: keep the whole file.
        path = scratch / "image.qcow2"
        return _RangeSpool(path, 0, _WHOLE_FILE), _EspCopy(path, 0, 0)
    esp = next((partition for partition in layout.partitions if partition.is_esp), None)
    if esp is None or not want_efi:
        return None, None
    path = scratch / "esp.img"
    return _RangeSpool(path, esp.start, esp.start + esp.size), _EspCopy(path, 0, esp.number)


# ---------------------------------------------------------------------------------------------------------
# The EFI bootloader


def _efi_components(path: str) -> list[str]:
    # Users write the guide's form (\efi\debian\grubx64.efi), often with doubled backslashes, or slashes.
    return [part for part in re.split(r"[\\/]+", path.strip()) if part]


def _run_tool(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"}
    return subprocess.run(
        list(args), capture_output=True, text=True, env=environment, timeout=TOOL_TIMEOUT, check=False
    )


def _qemu_raw_view(qcow2: Path, offset: int, size: int) -> str:
    # A read-only raw window on the qcow2, with backing files disabled whatever the header says.
    spec: dict[str, Any] = {
        "driver": "raw",
        "offset": offset,
        "size": size,
        "file": {"driver": "qcow2", "backing": None, "file": {"driver": "file", "filename": str(qcow2)}},
    }
    return "json:" + json.dumps(spec)


def _qcow2_damage(qcow2: Path | None) -> str | None:
    """What `qemu-img check` finds wrong with a qcow2 (what would make OVH's `qemu-img convert` fail)."""
    if qcow2 is None or shutil.which("qemu-img") is None:
        return None
    spec = {"driver": "qcow2", "backing": None, "file": {"driver": "file", "filename": str(qcow2)}}
    result = _run_tool(["qemu-img", "check", "--output=json", "json:" + json.dumps(spec)])
    if result.returncode == 0:
        return None
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        report = {}
    counts = [f"{report[key]} {key}" for key in ("corruptions", "check-errors") if report.get(key)]
    words = result.stderr.strip().splitlines()
    detail = "; ".join(counts + words[:1])
    # Exit status 3 means leaked clusters only: wasted space, harmless to a conversion.
    return None if result.returncode == 3 else f"qemu-img check reports {detail or 'errors'}"


def _extract_from_qcow2(qcow2: Path, offset: int, size: int, destination: Path) -> str | None:
    """Copies guest bytes ``[offset, offset+size)`` of a qcow2 to a raw file; an error text on failure."""
    result = _run_tool(
        ["qemu-img", "convert", "-O", "raw", _qemu_raw_view(qcow2, offset, size), str(destination)]
    )
    return (
        None if result.returncode == 0 else (result.stderr.strip() or f"qemu-img exited {result.returncode}")
    )


def _efi_finding(message: str, fix: str) -> Finding:
    return Finding("efi_bootloader_path", message, fix)


def _efi_findings(
    source: _Source, layout: _Layout, spooled: _EspCopy | None, scratch: Path, efi_path: str
) -> list[Finding]:
    missing_tool = next((tool for tool in ("mdir", "qemu-img") if shutil.which(tool) is None), None)
    if missing_tool is not None:
        return [
            _efi_finding(
                f"cannot look inside the image: {missing_tool} is not installed",
                "Install qemu-utils and mtools (apt-get install qemu-utils mtools), or use the quick check.",
            )
        ]
    partitions = layout.partitions
    esp_file: Path
    esp_offset = 0
    if layout.real_format == "qcow2":
        qcow2 = source.local_path or (spooled.path if spooled else None)
        if qcow2 is None or layout.virtual_size is None:
            return []
        disk_head = scratch / "disk-head.raw"
        error = _extract_from_qcow2(qcow2, 0, min(HEAD_BYTES, layout.virtual_size), disk_head)
        if error:
            return [_efi_finding(f"qemu-img cannot read the image: {error}", guide_fix("cannot_write"))]
        partitions = tuple(_partitions(disk_head.read_bytes()))
    esp = next((partition for partition in partitions if partition.is_esp), None)
    if esp is None:
        return [
            _efi_finding(
                "the image has no EFI system partition, so a server booting in UEFI mode cannot start it",
                "Build the image with an EFI system partition (GPT type EF00, or MBR type 0xEF) holding the "
                "bootloader named by efi_bootloader_path.",
            )
        ]
    if layout.real_format == "qcow2":
        qcow2 = source.local_path or (spooled.path if spooled else None)
        assert qcow2 is not None
        esp_file = scratch / "esp.img"
        error = _extract_from_qcow2(qcow2, esp.start, esp.size, esp_file)
        if error:
            return [
                _efi_finding(f"qemu-img cannot read the EFI partition: {error}", guide_fix("cannot_write"))
            ]
    elif source.local_path is not None:
        esp_file, esp_offset = source.local_path, esp.start
    elif spooled is not None:
        esp_file = spooled.path
    else:
        return []
    listing = _run_tool(["mdir", "-/", "-b", "-i", f"{esp_file}@@{esp_offset}", "::/"])
    if listing.returncode != 0:
        return [
            _efi_finding(
                f"the EFI system partition (partition {esp.number}) is not a readable FAT file system "
                f"({listing.stderr.strip() or listing.stdout.strip()})",
                "Format the EFI system partition as FAT32 (mkfs.vfat -F 32) and install the bootloader "
                "in it.",
            )
        ]
    files = [line.removeprefix("::") for line in listing.stdout.splitlines() if line.startswith("::/")]
    wanted = "/" + "/".join(_efi_components(efi_path)).lower()
    if any(name.lower() == wanted for name in files):
        return []
    bootloaders = [name.replace("/", "\\") for name in files if name.lower().endswith(".efi")]
    if bootloaders:
        fix = f"Set efi_bootloader_path to one of the image's bootloaders: {', '.join(bootloaders[:8])}."
    else:
        fix = "The EFI system partition holds no .efi file: install a bootloader in the image (grub-install)."
    shown = "\\" + "\\".join(_efi_components(efi_path))
    return [
        _efi_finding(
            f"{shown} is not in the image's EFI system partition (partition {esp.number}), so the server "
            "would install and then never boot",
            fix,
        )
    ]
