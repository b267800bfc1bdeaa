"""The command runs in-process (click's runner) against the emulator, with OVH's credentials in the env."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ovh_byoi.cli import main
from ovh_emulator.testing import RunningEmulator
from preflight.conftest import image_server, images, unused_port  # noqa: F401  (shared fixtures)

REINSTALL_ROUTE = "POST /1.0/dedicated/server/{serviceName}/reinstall"


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _invoke(args: list[str], env: dict[str, str], input: str | None = None) -> Outcome:
    result: Result = CliRunner().invoke(main, args, env=env, input=input, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def ovh_byoi(emulator: RunningEmulator, tmp_path: Path) -> Callable[..., Outcome]:
    """Runs `ovh-byoi ARGS...`; commands that talk to OVH get the emulator's endpoint and credentials,
    and a reinstall journal of their own (an emulator's port may be reused by the next test's)."""
    base_env = {
        "OVH_BYOI_JOURNAL": str(tmp_path / "reinstalls.sqlite"),
        "OVH_APPLICATION_KEY": emulator.application_key,
        "OVH_APPLICATION_SECRET": emulator.application_secret,
        "OVH_CONSUMER_KEY": emulator.consumer_key,
        "OVH_ENDPOINT": emulator.url,
        "OVH_BYOI_TIME_SCALE": "600",
    }

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Outcome:
        return _invoke(list(args), {**base_env, **(env or {})}, input)

    return run


@pytest.fixture
def ovh_byoi_offline() -> Callable[..., Outcome]:
    """Runs `ovh-byoi ARGS...` with no OVH configuration at all."""

    def run(*args: str, input: str | None = None) -> Outcome:
        return _invoke(list(args), {"OVH_ENDPOINT": "", "OVH_BYOI_TIME_SCALE": "600"}, input)

    return run


def reinstalls_requested(emulator: RunningEmulator) -> int:
    return emulator.stats().get(REINSTALL_ROUTE, 0)
