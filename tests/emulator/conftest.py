"""Fixtures of the emulator's own tests."""

from __future__ import annotations

from pathlib import Path

import ovh
import pytest
from ovh_emulator.testing import RunningEmulator

from .api import ovh_client


@pytest.fixture
def client(emulator: RunningEmulator) -> ovh.Client:
    return ovh_client(emulator)


@pytest.fixture
def images_dir(test_images: dict[str, Path]) -> Path:
    return next(iter(test_images.values())).parent
