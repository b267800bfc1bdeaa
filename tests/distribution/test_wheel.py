"""What `pip install ovh-byoi` brings: the resource and its CLI; the emulator's web stack only on request."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EMULATOR_ONLY = {"aiohttp", "jsonschema"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from a copy of the checkout (a build writes beside its sources)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "provider", source / "provider", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(source), "--wheel-dir", str(out)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = out.glob("ovh_byoi-*.whl")
    return found


def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [entry for entry in archive.namelist() if entry.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode())


def requirement_name(requirement: str) -> str:
    name = requirement.split(";")[0]
    for stop in "<>=!~[ ":
        name = name.split(stop)[0]
    return name.strip().lower()


def test_the_emulators_dependencies_are_an_extra_not_requirements(wheel: Path) -> None:
    requirements = metadata(wheel).get_all("Requires-Dist") or []
    hard = {requirement_name(line) for line in requirements if ";" not in line}
    emulator_extra = {requirement_name(line) for line in requirements if line.endswith('extra == "emulator"')}
    assert "emulator" in (metadata(wheel).get_all("Provides-Extra") or [])
    assert emulator_extra == EMULATOR_ONLY
    assert hard & EMULATOR_ONLY == set(), f"every install would pull in the emulator's web stack: {hard}"
    assert {"pulumi", "ovh", "click"} <= hard


def test_the_emulator_ships_with_its_copy_of_ovhs_api_description(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
    assert "ovh_emulator/dedicated-server.openapi.json" in files
    assert "ovh_emulator/py.typed" in files and "ovh_byoi/py.typed" in files
