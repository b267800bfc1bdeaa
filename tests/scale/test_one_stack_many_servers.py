"""Many plain `ByoiInstallation`s in one stack install at once under the real Pulumi CLI.

They all share the stack's default dynamic provider, one process whose gRPC pool serves four calls at a time
in Pulumi's SDK: without `ovh_byoi.sdk_compat`, a stack of servers would install four by four.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ovh_emulator.testing import RunningEmulator, start_emulator
from testkit.emulator_records import REINSTALL
from testkit.pulumi_cli import PulumiStack

SERVERS = 8
PROGRAM = f"""
import pulumi
from ovh_byoi import ByoiInstallation

config = pulumi.Config()
for number in range(1, {SERVERS} + 1):
    ByoiInstallation(
        f"server-{{number}}",
        service_name=f"ns{{1_000_000 + number}}.emulator.ovh",
        image_url=config.require("imageUrl"),
        image_type="qcow2",
        efi_bootloader_path=r"\\efi\\debian\\grubx64.efi",
        preflight="off",
    )
"""


class ImageBarrier:
    """Serves one image; each full download (OVH's installer fetching it) waits until `parties` downloads
    are in flight together, so the test sees concurrency as an event rather than as timing."""

    def __init__(self, image: Path, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=120)
        self.met = threading.Event()
        payload = image.read_bytes()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    owner.barrier.wait()
                    owner.met.set()
                except threading.BrokenBarrierError:
                    self.send_error(503, "fewer downloads at once than servers")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/small.qcow2"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.barrier.abort()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def many_servers(test_images: dict[str, Path]) -> Iterator[RunningEmulator]:
    with start_emulator(servers=SERVERS, speed=600) as running:
        yield running


@pytest.fixture
def image_barrier(test_images: dict[str, Path]) -> Iterator[ImageBarrier]:
    served = ImageBarrier(test_images["small.qcow2"], parties=SERVERS)
    yield served
    served.close()


def test_every_server_of_a_stack_installs_at_once(
    many_servers: RunningEmulator, image_barrier: ImageBarrier, tmp_path: Path
) -> None:
    project = tmp_path / "source"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: many-servers\nruntime: python\n")
    (project / "__main__.py").write_text(PROGRAM)
    stack = PulumiStack.create(
        project,
        tmp_path / "run",
        "emulator",
        emulator=many_servers,
        config={"many-servers:imageUrl": image_barrier.url},
    )

    # The engine's own limit (`--parallel`, 8 on two cores) must not be the one the test measures.
    run = stack.up("--parallel", str(4 * SERVERS), expect=None)

    assert image_barrier.met.is_set(), f"the {SERVERS} installs never ran at once:\n{run}"
    assert run.returncode == 0, str(run)
    assert many_servers.stats()[REINSTALL] == SERVERS
    for number in range(1, SERVERS + 1):
        assert [
            entry["status"]
            for entry in many_servers.server(f"ns{1_000_000 + number}.emulator.ovh")["installs"]
        ] == ["done"]
