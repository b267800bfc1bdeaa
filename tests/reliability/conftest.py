"""One emulator and one provider process for the whole reliability suite, and the ledger behind its report.

Every test works on servers of its own (added to the shared emulator), so that its install history is its
alone; faults are injected through `inject`, which counts how often they really fired. At the end of a
run that ran this whole folder and passed (serial or parallel), `docs/reliability.md` is written from the
ledger (`report.py`): what the suite observed, not what it hoped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.spec import MAX_TIMEOUT_MINUTES
from ovh_emulator.testing import RunningEmulator, start_emulator
from testkit.emulator_records import sha256
from testkit.provider_process import ProviderProcess

from . import report
from .ledger import Ledger
from .support import (
    EFI_DEBIAN,
    HEADER_VALUE,
    IMAGES_PASSWORD,
    IMAGES_USER,
    SECRET_ARGS,
    SPEED,
    Suite,
    start_provider,
)


@pytest.fixture(scope="session")
def ledger(request: pytest.FixtureRequest) -> Ledger:
    return request.config.stash.setdefault(report.LEDGER, Ledger())


@pytest.fixture(scope="session")
def journal_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One machine's journal of reinstalls, shared by every provider process of the suite."""
    return tmp_path_factory.mktemp("journal") / "reinstalls.sqlite"


@pytest.fixture(scope="session")
def provider_env(journal_path: Path) -> dict[str, str]:
    """A provider that waits in step with the emulator's speed."""
    return {"OVH_BYOI_TIME_SCALE": str(SPEED), "OVH_BYOI_JOURNAL": str(journal_path)}


@pytest.fixture(scope="session")
def ovh_api(test_images: dict[str, Path]) -> Iterator[RunningEmulator]:
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
    ovh_api: RunningEmulator, provider_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderProcess]:
    process = start_provider(ovh_api, provider_env, tmp_path_factory.mktemp("provider"))
    try:
        yield process
    finally:
        process.stop()


_server_numbers = itertools.count(1)


@pytest.fixture
def new_server(ovh_api: RunningEmulator) -> Callable[[], str]:
    """Adds a server of this test's own to the emulator; returns its service name."""

    def add() -> str:
        name = f"r{next(_server_numbers)}.reliability.ovh"
        ovh_api.add_server(name)
        return name

    return add


@pytest.fixture
def inject(ovh_api: RunningEmulator, ledger: Ledger) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Replaces the emulator's faults; when the test ends, counts the faults that fired and clears them."""

    def collect() -> None:
        fired = sum(rule["fired"] for rule in ovh_api.admin("GET", "faults")["rules"])
        ledger.faults_injected += fired

    def replace(spec: dict[str, Any]) -> None:
        collect()
        ovh_api.set_faults(spec)

    yield replace
    collect()
    ovh_api.set_faults({})


@pytest.fixture(scope="session")
def image_inputs(ovh_api: RunningEmulator, test_images: dict[str, Path]) -> Callable[..., dict[str, Any]]:
    """Inputs installing one of the emulator's images, with its checksum and the header it needs."""

    def make(service_name: str, name: str = "small.qcow2", **changes: Any) -> dict[str, Any]:
        inputs: dict[str, Any] = {
            "service_name": service_name,
            "image_url": ovh_api.image_url(name),
            "image_type": "qcow2" if name.endswith(".qcow2") else "raw",
            "image_checksum": sha256(test_images[name]),
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


@pytest.fixture
def suite(
    ovh_api: RunningEmulator,
    provider: ProviderProcess,
    new_server: Callable[[], str],
    image_inputs: Callable[..., dict[str, Any]],
    inject: Callable[[dict[str, Any]], None],
    ledger: Ledger,
) -> Suite:
    return Suite(ovh_api, provider, new_server, image_inputs, inject, ledger)


# --- the report (tests/reliability/report.py) -------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    report.note_collection(config, items)


def pytest_deselected(items: list[pytest.Item]) -> None:
    report.note_deselected(items)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    report.finish_where_tests_ran(session, exitstatus)
