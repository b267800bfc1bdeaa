"""One emulator and one provider process for the whole reliability suite, and the ledger behind its report.

Every test works on servers of its own (added to the shared emulator), so that its install history is its
alone; faults are injected through `inject`, which counts how often they really fired. At the end of a
complete, passing run of this folder, `docs/reliability.md` is written from the ledger: what the suite
observed, not what it hoped.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.spec import MAX_TIMEOUT_MINUTES
from ovh_emulator.testing import RunningEmulator, start_emulator
from testkit.provider_process import ProviderProcess

from .ledger import REPORT_ENV, Ledger, write_report
from .support import (
    EFI_DEBIAN,
    HEADER_VALUE,
    IMAGES_PASSWORD,
    IMAGES_USER,
    SECRET_ARGS,
    SPEED,
    start_provider,
)

_LEDGER = pytest.StashKey[Ledger]()
_RELIABILITY = Path(__file__).parent


@pytest.fixture(scope="session")
def ledger(request: pytest.FixtureRequest) -> Ledger:
    return request.config.stash.setdefault(_LEDGER, Ledger())


@pytest.fixture(scope="session")
def journal_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One machine's journal of reinstalls, shared by every provider process of the suite."""
    return tmp_path_factory.mktemp("journal") / "reinstalls.sqlite"


@pytest.fixture(scope="session")
def provider_env(journal_path: Path) -> dict[str, str]:
    """A provider that waits in step with the emulator's speed."""
    return {"OVH_BYOI_TIME_SCALE": str(SPEED), "OVH_BYOI_JOURNAL": str(journal_path)}


@pytest.fixture(scope="session")
def ovh(test_images: dict[str, Path]) -> Iterator[RunningEmulator]:
    """The emulator, its images behind Basic auth, with credentials of the suite's own."""
    folder = next(iter(test_images.values())).parent
    with start_emulator(
        speed=SPEED,
        images=folder,
        images_auth=(IMAGES_USER, IMAGES_PASSWORD),
        extra_args=SECRET_ARGS,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def provider(
    ovh: RunningEmulator, provider_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderProcess]:
    process = start_provider(ovh, provider_env, tmp_path_factory.mktemp("provider"))
    try:
        yield process
    finally:
        process.stop()


_server_numbers = itertools.count(1)


@pytest.fixture
def new_server(ovh: RunningEmulator) -> Callable[[], str]:
    """Adds a server of this test's own to the emulator; returns its service name."""

    def add() -> str:
        name = f"r{next(_server_numbers)}.reliability.ovh"
        ovh.add_server(name)
        return name

    return add


@pytest.fixture
def inject(ovh: RunningEmulator, ledger: Ledger) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Replaces the emulator's faults; when the test ends, counts the faults that fired and clears them."""

    def collect() -> None:
        fired = sum(rule["fired"] for rule in ovh.admin("GET", "faults")["rules"])
        ledger.faults_injected += fired

    def replace(spec: dict[str, Any]) -> None:
        collect()
        ovh.set_faults(spec)

    yield replace
    collect()
    ovh.set_faults({})


@pytest.fixture(scope="session")
def image_inputs(ovh: RunningEmulator, test_images: dict[str, Path]) -> Callable[..., dict[str, Any]]:
    """Inputs installing one of the emulator's images, with its checksum and the header it needs."""

    def make(service_name: str, name: str = "small.qcow2", **changes: Any) -> dict[str, Any]:
        inputs: dict[str, Any] = {
            "service_name": service_name,
            "image_url": ovh.image_url(name),
            "image_type": "qcow2" if name.endswith(".qcow2") else "raw",
            "image_checksum": hashlib.sha256(test_images[name].read_bytes()).hexdigest(),
            "efi_bootloader_path": EFI_DEBIAN,
            "hostname": "web-1",
            "http_headers": {"Authorization": HEADER_VALUE},
            # At the suite's speed the default deadline is under five real seconds, which a loaded machine's
            # downloads and conversions (each real second counts 25 OVH minutes) or a held request would
            # spend: only the deadline tests race it, with a deadline of their own.
            "timeout_minutes": MAX_TIMEOUT_MINUTES,
        }
        inputs.update(changes)
        return {key: value for key, value in inputs.items() if value is not None}

    return make


# --- the report ------------------------------------------------------------------------------------------


def _in_suite(item: pytest.Item) -> bool:
    return _RELIABILITY in Path(str(item.path)).parents


_SUITE_ITEMS = pytest.StashKey[int]()
_SUITE_COMPLETE = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Notes whether this run holds every test file of the suite (the report is written only then)."""
    ours = [item for item in items if _in_suite(item)]
    files = {Path(str(item.path)).name for item in ours}
    config.stash[_SUITE_ITEMS] = len(ours)
    config.stash[_SUITE_COMPLETE] = files == {path.name for path in _RELIABILITY.glob("test_*.py")}


def pytest_deselected(items: list[pytest.Item]) -> None:
    ours = [item for item in items if _in_suite(item)]
    if ours:
        ours[0].config.stash[_SUITE_COMPLETE] = False


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Writes the report after a complete run of the suite in which every test passed."""
    ledger = session.config.stash.get(_LEDGER, None)
    complete = session.config.stash.get(_SUITE_COMPLETE, False)
    if ledger is None or not complete or session.testsfailed or exitstatus != 0:
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # A worker of a parallel run saw only part of the suite: its counts would understate the report.
        return
    target = Path(os.environ.get(REPORT_ENV) or _RELIABILITY.parents[1] / "docs" / "reliability.md")
    write_report(ledger, target, tests=session.config.stash[_SUITE_ITEMS])
