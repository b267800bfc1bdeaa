from __future__ import annotations

from pathlib import Path

import pytest
from ovh_byoi_harness.provider_process import python_path_env

HERE = Path(__file__).resolve().parent


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """The toy provider's cloud: a directory its processes write resources and a journal into."""
    path = tmp_path / "world"
    path.mkdir()
    return path


@pytest.fixture
def toy_env() -> dict[str, str]:
    """Lets provider processes import `toy_provider`, which instances are pickled by reference to."""
    return python_path_env(HERE)
