"""Figure 7 names the versions of the peers it ran; scripts/get-ovh-clients decides what is built. A bump of
one without the other would print a version that was never run."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import peers_pulumi_ovh, peers_tofu  # noqa: E402


def script_pins() -> dict[str, str]:
    text = (ROOT / "scripts" / "get-ovh-clients").read_text()
    return dict(re.findall(r"^([A-Z_]+_VERSION)=(\S+)", text, flags=re.MULTILINE))


def test_the_benchmark_names_the_versions_the_script_builds() -> None:
    pins = script_pins()
    assert pins["TERRAFORM_PROVIDER_OVH_VERSION"] == peers_tofu.TERRAFORM_PROVIDER_OVH_VERSION
    assert pins["PULUMI_OVH_VERSION"] == peers_pulumi_ovh.VERSION
