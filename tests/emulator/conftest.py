"""Fixtures of the emulator's own tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import ovh
import pytest
from ovh_emulator.testing import RunningEmulator, start_emulator

from .api import ovh_client

_server_numbers = itertools.count(2_000_001)
# Fast enough that a whole install takes about a third of a second.
SHARED_SPEED = 2000.0


@pytest.fixture
def client(emulator: RunningEmulator) -> ovh.Client:
    return ovh_client(emulator)


@pytest.fixture
def images_dir(test_images: dict[str, Path]) -> Path:
    return next(iter(test_images.values())).parent


@pytest.fixture(scope="module")
def shared_emulator(test_images: dict[str, Path]) -> Iterator[RunningEmulator]:
    """One emulator for the tests of a module; each test installs on servers of its own (`server`)."""
    folder = next(iter(test_images.values())).parent
    with start_emulator(servers=4, speed=SHARED_SPEED, images=folder) as running:
        yield running


@pytest.fixture
def shared_client(shared_emulator: RunningEmulator) -> ovh.Client:
    return ovh_client(shared_emulator)


@pytest.fixture
def new_server(shared_emulator: RunningEmulator) -> Iterator[str]:
    """A server of the test's own in the module's emulator, with OVH-like defaults."""
    name = f"ns{next(_server_numbers)}.emulator.ovh"
    shared_emulator.add_server(name)
    yield name


@pytest.fixture
def faulty(shared_emulator: RunningEmulator) -> Iterator[RunningEmulator]:
    """The module's emulator, its faults cleared after the test."""
    yield shared_emulator
    shared_emulator.set_faults({})
