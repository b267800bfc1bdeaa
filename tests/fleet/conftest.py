"""Fleets run by the real Pulumi CLI (`program/`, one ByoiFleet from the stack config) on a fresh emulator.

What the emulator did is read from its own records: the install history of each server (task ids, statuses,
start and end dates) and, for the order of events closer than the dates' one-second resolution, the log line
it prints when an install starts and when it ends (one process, one line at a time: their order is the
order of the events).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import sha512
from testkit.pulumi_cli import PulumiStack, Run

PROGRAM = Path(__file__).resolve().parent / "program"
CONFIG_KEY = "fleet-tests:fleet"
EFI_DEBIAN = r"\efi\debian\grubx64.efi"

_STARTED = re.compile(r"task (?P<task>\d+): \S+ reinstall of (?P<server>\S+) started")
_ENDED = re.compile(r"task (?P<task>\d+): (?:\S+ now runs \S+|(?:customerError|ovhError|cancelled) on \S+:)")


def server_names(count: int, first: int = 1) -> list[str]:
    """The emulator's naming: ns1000001.emulator.ovh, ns1000002.emulator.ovh, ..."""
    return [f"ns{1_000_000 + number}.emulator.ovh" for number in range(first, first + count)]


@dataclass(frozen=True)
class Install:
    """One install as the emulator recorded it; `started`/`ended`: positions of its events in the log."""

    service_name: str
    task_id: int
    status: str
    start_date: str
    done_date: str | None
    started: int
    ended: int | None

    def __str__(self) -> str:
        return f"{self.service_name} task {self.task_id} {self.status} {self.start_date} -> {self.done_date}"


class Timeline:
    """Every install the emulator ran, in the order it started them."""

    def __init__(self, emulator: RunningEmulator) -> None:
        started: dict[int, int] = {}
        ended: dict[int, int] = {}
        for position, line in enumerate(list(emulator.output)):
            if match := _STARTED.search(line):
                started[int(match["task"])] = position
            elif match := _ENDED.search(line):
                ended[int(match["task"])] = position
        installs: list[Install] = []
        for service_name in emulator.admin("GET", "servers"):
            for entry in emulator.server(service_name)["installs"]:
                task_id = int(entry["taskId"])
                installs.append(
                    Install(
                        service_name,
                        task_id,
                        entry["status"],
                        entry["startDate"],
                        entry["doneDate"],
                        started[task_id],
                        ended.get(task_id),
                    )
                )
        self.installs = sorted(installs, key=lambda install: install.started)

    def of(self, service_name: str) -> list[Install]:
        return [install for install in self.installs if install.service_name == service_name]

    def last(self, service_name: str) -> Install:
        return self.of(service_name)[-1]

    def servers(self) -> list[str]:
        """Servers in the order their (latest) install started."""
        return [install.service_name for install in self.installs]

    def show(self) -> str:
        return "\n".join(str(install) for install in self.installs)

    def assert_in_order(self, batches: Sequence[Sequence[str]]) -> None:
        """Each batch's installs all ended, and in success, before any install of the next one started."""
        for before, after in itertools.pairwise(batches):
            finished = [self.last(name) for name in before]
            following = [self.last(name) for name in after]
            last_end = max(install.ended if install.ended is not None else -1 for install in finished)
            first_start = min(install.started for install in following)
            assert all(install.status == "done" for install in finished), self.show()
            assert last_end < first_start, f"{before} had not finished when {after} started:\n{self.show()}"
            # The dates (to the second) agree with the order of the events.
            assert max(str(i.done_date) for i in finished) <= min(i.start_date for i in following)


class FleetStack:
    """A stack of `program/`: one ByoiFleet `web` whose keyword arguments are the stack config's `fleet`."""

    def __init__(self, emulator: RunningEmulator, images: Mapping[str, Path], folder: Path) -> None:
        self.emulator = emulator
        self.images = images
        self.stack = PulumiStack.create(PROGRAM, folder, "fleet", emulator=emulator)

    def settings(
        self, servers: Sequence[str], *, image: str = "small.qcow2", **options: Any
    ) -> dict[str, Any]:
        """`servers` (each with the hostname web-<nn>) installing one of the emulator's images with its
        checksum; a canary and batches of two unless `options` say otherwise."""
        return {
            "servers": {name: {"hostname": f"web-{name.split('.')[0][-2:]}"} for name in servers},
            "image_url": self.emulator.image_url(image),
            "image_type": "qcow2" if image.endswith(".qcow2") else "raw",
            "image_checksum": sha512(self.images[image]),
            "efi_bootloader_path": EFI_DEBIAN,
            "canary": 1,
            "max_parallel": 2,
            **options,
        }

    def declare(self, servers: Sequence[str], **options: Any) -> None:
        """The fleet of the next run (an edit of the stack config, as a user's pull request makes)."""
        self.stack.set_config({CONFIG_KEY: self.settings(servers, **options)})

    def up(self, *args: str, expect: int | None = 0) -> Run:
        return self.stack.up(*args, expect=expect)

    def preview(self, *args: str, expect: int | None = 0) -> Run:
        return self.stack.preview(*args, expect=expect)

    def steps(self, *args: str) -> dict[str, str]:
        """What `pulumi preview --json ARGS` would do to each resource, by name (`same` left out)."""
        output = self.stack.preview("--json", *args).output
        document = json.loads(output[output.index("{") :])
        return {
            step["urn"].rsplit("::", 1)[1]: step["op"]
            for step in document.get("steps", [])
            if step["op"] != "same"
        }

    def installations(self) -> dict[str, dict[str, Any]]:
        """The servers' ByoiInstallation resources in the state, by service name."""
        return {
            resource["inputs"]["service_name"]: resource
            for resource in self.stack.resources("ByoiInstallation").values()
        }

    def providers(self) -> dict[str, dict[str, Any]]:
        """The explicit providers in the state, by name."""
        return self.stack.resources("pulumi:providers:pulumi-python")

    def homes(self) -> dict[str, str]:
        """Each server's provider reference (`urn::id`), by service name."""
        return {name: resource["provider"] for name, resource in self.installations().items()}


@pytest.fixture
def fleet(emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path) -> FleetStack:
    """A new stack of the fleet program on a fresh emulator, its credentials set with `--secret`."""
    return FleetStack(emulator, test_images, tmp_path)


class HeldImageServer:
    """Serves one image over HTTP, holding each download until `expected` of them are under way at once.

    Lets a test show that installs run together: OVH's installer downloads the image during the install, so
    `expected` downloads held at the same moment are `expected` installs running at once. Gives up waiting
    after `patience` seconds (the downloads then go on, and `most_at_once` tells how many there were).
    """

    def __init__(self, image: Path, expected: int, patience: float = 120.0) -> None:
        self.image = image
        self.expected = expected
        self.patience = patience
        self.waiting = 0
        self.most_at_once = 0
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.image.name}"

    def _arrive(self) -> None:
        with self._lock:
            self.waiting += 1
            self.most_at_once = max(self.most_at_once, self.waiting)
            if self.waiting >= self.expected:
                self.released.set()
        self.released.wait(self.patience)
        with self._lock:
            self.waiting -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        held = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self._headers()

            def do_GET(self) -> None:
                held._arrive()
                self._headers()
                self.wfile.write(held.image.read_bytes())

            def _headers(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(held.image.stat().st_size))
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the emulator's log tells what happened."""

        return Handler

    def __enter__(self) -> HeldImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def held_image(test_images: dict[str, Path]) -> Iterator[Callable[..., HeldImageServer]]:
    servers: list[HeldImageServer] = []

    def make(expected: int, image: str = "small.qcow2") -> HeldImageServer:
        server = HeldImageServer(test_images[image], expected).__enter__()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.__exit__(None, None, None)
