"""Real images built with real tools, served by a real local HTTP server on port 0."""

from __future__ import annotations

import base64
import bz2
import lzma
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.preflight import Finding, run_preflight
from ovh_emulator.images import build_image

from . import imaging

USER, PASSWORD = "alice", "s3cret-pass"
# Two bootloaders, so that a wrong path's fix has more than one to name.
EFI_FILES = {"EFI/debian/grubx64.efi": b"grub", "EFI/BOOT/BOOTX64.EFI": b"shim"}
GIB = 1024**3
ROOMY = {"disk_bytes": 500 * GIB, "memory_bytes": 64 * GIB}
BASIC_AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The images behind OVH's failure texts (the catalog in ovh_byoi.errors), built once per session."""
    root = tmp_path_factory.mktemp("images")
    built = {
        "debian.raw": build_image(root / "debian.raw", efi_files=EFI_FILES),
        "debian.qcow2": build_image(root / "debian.qcow2", fmt="qcow2", efi_files=EFI_FILES),
        "mbr.raw": build_image(root / "mbr.raw", table="mbr", efi_files=EFI_FILES),
        "no-table.raw": build_image(root / "no-table.raw", partition_table=False, efi_files=EFI_FILES),
        "no-esp.raw": build_image(root / "no-esp.raw", efi_files={}, esp=False),
        "installer.iso": imaging.iso_like(root / "installer.iso"),
    }
    built["truncated.qcow2"] = root / "truncated.qcow2"
    built["truncated.qcow2"].write_bytes(built["debian.qcow2"].read_bytes()[: 256 * 1024])
    built["overlay.qcow2"] = imaging.build_qcow2_with_backing(root / "overlay.qcow2", built["debian.qcow2"])
    raw = built["debian.raw"]
    built["debian.raw.gz"] = imaging.gzip_file(raw, root / "debian.raw.gz")
    built["debian.raw.xz"] = root / "debian.raw.xz"
    built["debian.raw.xz"].write_bytes(lzma.compress(raw.read_bytes()[: 1 << 20], preset=0))
    built["debian.raw.bz2"] = root / "debian.raw.bz2"
    built["debian.raw.bz2"].write_bytes(bz2.compress(raw.read_bytes()[: 1 << 20], compresslevel=1))
    built["debian.zip"] = root / "debian.zip"
    with zipfile.ZipFile(built["debian.zip"], "w") as archive:
        archive.write(raw, "debian.raw")
    if shutil.which("zstd"):
        subprocess.run(["zstd", "-q", "-1", str(raw), "-o", str(root / "debian.raw.zst")], check=True)
        built["debian.raw.zst"] = root / "debian.raw.zst"
    return built


class _Handler(SimpleHTTPRequestHandler):
    """Serves the images folder; ``/private/`` needs Basic auth, ``/get-only/`` refuses HEAD (like some
    object stores), ``/truncated/`` announces more bytes than it sends."""

    def __init__(self, *args: Any, directory: str, **kwargs: Any) -> None:
        super().__init__(*args, directory=directory, **kwargs)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _route(self) -> str | None:
        """The path without its prefix, or None once an error was sent."""
        prefix, _, rest = self.path.lstrip("/").partition("/")
        if prefix == "private":
            if self.headers.get("Authorization") != BASIC_AUTH["Authorization"]:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="images"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return "/" + rest
        if prefix in ("get-only", "truncated"):
            return "/" + rest
        return self.path

    def do_HEAD(self) -> None:
        if self.path.startswith("/get-only/"):
            self.send_error(405)
            return
        route = self._route()
        if route is not None:
            self.path = route
            super().do_HEAD()

    def do_GET(self) -> None:
        truncated = self.path.startswith("/truncated/")
        route = self._route()
        if route is None:
            return
        if truncated:
            body = Path(self.directory, route.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.path = route
        super().do_GET()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that read the first bytes then hang up (the quick check does) are expected.
        pass


@dataclass(frozen=True)
class ImageServer:
    base_url: str

    def url(self, name: str, *, prefix: str = "", credentials: str = "") -> str:
        host = self.base_url.removeprefix("http://")
        where = f"{prefix}/" if prefix else ""
        return f"http://{credentials + '@' if credentials else ''}{host}/{where}{name}"


@pytest.fixture(scope="session")
def image_server(images: dict[str, Path]) -> Iterator[ImageServer]:
    directory = str(next(iter(images.values())).parent)

    def handler(*args: Any, **kwargs: Any) -> _Handler:
        return _Handler(*args, directory=directory, **kwargs)

    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ImageServer(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def preflight_at(default_level: str, url: str, image_type: str = "raw", **overrides: Any) -> list[Finding]:
    """The findings of the preflight (at `default_level` unless `level` is overridden) on a Debian image at
    `url`, for a server with room to spare."""
    arguments: dict[str, Any] = {
        "image_url": url,
        "image_type": image_type,
        "image_checksum": None,
        "image_checksum_type": None,
        "http_headers": None,
        "efi_bootloader_path": r"\efi\debian\grubx64.efi",
        "level": default_level,
        **ROOMY,
    }
    arguments.update(overrides)
    return run_preflight(**arguments)


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]
