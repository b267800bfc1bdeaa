"""The examples, the root stack and the demo, run as a user runs them, against a fresh emulator."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ovh_byoi_harness.demo import retarget, stack_config
from ovh_byoi_harness.engine import LocalEngine
from ovh_emulator.testing import RunningEmulator

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
REINSTALL = "POST /1.0/dedicated/server/{serviceName}/reinstall"


def project_engine(
    project: Path, emulator: RunningEmulator | str, state: Path, *, stack: str, **overrides: Any
) -> LocalEngine:
    """The project with its `Pulumi.<stack>.yaml`, pointed at `emulator` (or a base URL); `overrides` are
    config keys."""
    base_url = emulator if isinstance(emulator, str) else emulator.base_url
    config = retarget(stack_config(project, stack), base_url)
    config.update(overrides)
    return LocalEngine.for_project(
        project, state, stack=stack, config=config, env=provider_env(state.parent), passphrase="examples"
    )


def provider_env(folder: Path) -> dict[str, str]:
    """The provider waits in step with the emulator fixture's clock (600 times faster than OVH's), and keeps
    its record of reinstalls in the test's own folder."""
    return {"OVH_BYOI_TIME_SCALE": "600", "OVH_BYOI_JOURNAL": str(folder / "reinstalls.sqlite")}


def reinstall_requests(emulator: RunningEmulator) -> int:
    """How many reinstalls OVH (the emulator) was asked for, by anyone."""
    return emulator.stats().get(REINSTALL, 0)


def writes(emulator: RunningEmulator) -> dict[str, int]:
    """Every call of OVH's API the emulator received that is not a read."""
    return {
        route: count for route, count in emulator.stats().items() if not route.startswith(("GET", "HEAD"))
    }


def sha512(path: Path) -> str:
    return hashlib.sha512(path.read_bytes()).hexdigest()


def installs(emulator: RunningEmulator, service_name: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = emulator.server(service_name)["installs"]
    return history
