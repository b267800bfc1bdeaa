"""The examples and the root stack, run with the real Pulumi CLI as a user runs them, on a fresh emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ovh_emulator.testing import RunningEmulator
from testkit.pulumi_cli import PulumiStack
from testkit.pulumi_cli import documented_stack as testkit_documented_stack

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def documented_stack(
    project: Path, emulator: RunningEmulator, tmp_path: Path, stack: str, **config: Any
) -> PulumiStack:
    return testkit_documented_stack(project, tmp_path, stack, emulator=emulator, **config)


def assert_no_secret_in(state: str, *secrets: str) -> None:
    """None of `secrets` is in `state`, the raw checkpoint anyone with read access to the backend sees."""
    found = [secret for secret in secrets if secret in state]
    assert found == [], f"in clear text in the state: {found}"
