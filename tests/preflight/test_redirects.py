"""Redirects: the user's headers reach the image URL's scheme, host and port only.

requests drops only `Authorization` when a redirect changes host, and nothing when it changes port: a token
sent as `X-Auth-Token` or `PRIVATE-TOKEN` would reach whatever server the image server redirects to. Two real
local servers, on two loopback addresses, record every request they receive.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.preflight import run_preflight

HEADERS = {
    "Authorization": "Bearer token-A-1f9c",
    "X-Auth-Token": "token-B-77d2",
    "PRIVATE-TOKEN": "token-C-0b3e",
}
EFI = r"\efi\debian\grubx64.efi"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Recorder:
    """A server that records what it receives; `/redirect/HOST:PORT/NAME` redirects, `/img/NAME` serves."""

    image: bytes
    needs_token: bool = False
    seen: list[Seen] = field(default_factory=list)
    url: str = ""


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, with_body: bool) -> None:
            recorder.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
            if self.path.startswith("/redirect/"):
                target = self.path.removeprefix("/redirect/")
                self.send_response(302)
                self.send_header("Location", f"http://{target}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if recorder.needs_token and self.headers.get("X-Auth-Token") != HEADERS["X-Auth-Token"]:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = recorder.image
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes=0-"):
                end = min(int(ranged.removeprefix("bytes=0-")), len(body) - 1)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes 0-{end}/{len(body)}")
                body = body[: end + 1]
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._answer(with_body=False)

        def do_GET(self) -> None:
            self._answer(with_body=True)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture
def serve(images: dict[str, Path]) -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []
    image = images["debian.raw"].read_bytes()

    def start(address: str, *, needs_token: bool = False) -> Recorder:
        recorder = Recorder(image, needs_token)
        server = _QuietServer((address, 0), _handler(recorder))
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        recorder.url = f"{address}:{server.server_address[1]}"
        return recorder

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def preflight(url: str, checksum: str) -> list[Any]:
    return run_preflight(
        image_url=url,
        image_type="raw",
        image_checksum=checksum,
        image_checksum_type=None,
        http_headers=HEADERS,
        efi_bootloader_path=EFI,
        level="full",
        disk_bytes=None,
        memory_bytes=None,
    )


def received_secrets(recorder: Recorder) -> list[tuple[str, str]]:
    values = set(HEADERS.values())
    return [
        (seen.method, name)
        for seen in recorder.seen
        for name, value in seen.headers.items()
        if value in values or any(secret in value for secret in values)
    ]


@pytest.mark.parametrize("other_address", ["127.0.0.2", "127.0.0.1"], ids=["other host", "other port"])
def test_a_redirect_elsewhere_receives_none_of_the_users_headers(
    serve: Any, images: dict[str, Path], other_address: str
) -> None:
    first, other = serve("127.0.0.1"), serve(other_address)
    checksum = hashlib.sha256(images["debian.raw"].read_bytes()).hexdigest()

    findings = preflight(f"http://{first.url}/redirect/{other.url}/img/debian.raw", checksum)

    assert findings == [], "the image downloads, its checksum and bootloader verified"
    methods = [(seen.method, "Range" in seen.headers) for seen in other.seen]
    assert methods == [("HEAD", False), ("GET", True), ("GET", False)], "HEAD, ranged GET, full GET"
    assert received_secrets(other) == []
    assert len(received_secrets(first)) == 3 * len(HEADERS), "the image URL's own host gets them all"


def test_a_redirect_within_the_origin_keeps_the_headers(serve: Any, images: dict[str, Path]) -> None:
    server = serve("127.0.0.1", needs_token=True)
    checksum = hashlib.sha256(images["debian.raw"].read_bytes()).hexdigest()

    findings = preflight(f"http://{server.url}/redirect/{server.url}/img/debian.raw", checksum)

    assert findings == []
    served = [seen for seen in server.seen if seen.path.startswith("/img/")]
    assert len(served) == 3
    assert all(seen.headers.get("X-Auth-Token") == HEADERS["X-Auth-Token"] for seen in served)


def test_a_redirect_to_a_server_that_needs_the_headers_is_explained(
    serve: Any, images: dict[str, Path]
) -> None:
    first, other = serve("127.0.0.1"), serve("127.0.0.2", needs_token=True)

    findings = preflight(f"http://{first.url}/redirect/{other.url}/img/debian.raw", "0" * 64)

    [finding] = findings
    assert finding.field == "http_headers"
    assert f"redirected to http://{other.url}/img/debian.raw, which answers HTTP 401" in finding.message
    assert "never to another scheme, host or port" in finding.message
    assert "give its URL as image_url" in finding.fix
    assert received_secrets(other) == []
