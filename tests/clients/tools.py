"""OVH's own clients, built by `scripts/get-ovh-clients` into `.cache/tools/ovh-clients/bin`.

A test that needs one calls `tool("tofu")`: the path, or a skip that says why the tool could not be built
(the reason the script recorded). `scripts/test` runs the script first: go-ovh is always built; OVH's
Terraform provider only where the Go module proxy serves it or a clone is given
(`TERRAFORM_PROVIDER_OVH_GIT`), and its tests say so when they skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".cache" / "tools" / "ovh-clients"


def tool(name: str) -> Path:
    path = TOOLS / "bin" / name
    if path.exists():
        return path
    reason_file = TOOLS / "missing" / name
    if reason_file.exists():
        reason = reason_file.read_text().strip()
    else:
        reason = f"{name} is not built: run scripts/get-ovh-clients (scripts/test does)"
    pytest.skip(f"OVH's client {name} cannot run here: {reason}")
