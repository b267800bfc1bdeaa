"""pulumi-ovh (OVH's bridged Pulumi provider) under the real Pulumi CLI, as figure 7 (benchmarks/peers.py)
drives it against the emulator.

`scripts/get-ovh-clients` builds its plugin (`pulumi-resource-ovh`, which wraps OVH's Terraform provider) and
a virtualenv with its Python SDK (`pulumi_ovh`) into `.cache/tools/ovh-clients`, given a clone of its
repository (`PULUMI_OVH_GIT`). The CLI finds the plugin on the PATH, as a plugin a user built; the program
runs in that virtualenv, never in the project's. The servers are `ovh.dedicated.ServerReinstallTask`s, one per
server, with the inputs of `bench:image`; the credentials are the stack's `ovh:` config, which pulumi-ovh
reads as ours does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ovh_emulator.testing import RunningEmulator

from .common import pulumi_stack_class
from .peers_tofu import TOOLS, not_built

# Pinned by scripts/get-ovh-clients (tests/benchmarks/test_pins.py holds the two to the same); the plugin
# wraps the terraform-provider-ovh its go.mod requires.
VERSION = "2.13.0"
WRAPS = "2.12.0"
PROGRAM = """\
import pulumi
import pulumi_ovh as ovh

config = pulumi.Config("bench")
image = config.require_object("image")
for name in config.require_object("servers"):
    ovh.dedicated.ServerReinstallTask(
        f"web-{name}",
        service_name=name,
        os="byoi_64",
        customizations=ovh.dedicated.ServerReinstallTaskCustomizationsArgs(
            hostname="pulumi-ovh",
            image_url=image["url"],
            image_type=image["type"],
            image_check_sum=image["checksum"],
            image_check_sum_type="sha512",
            efi_bootloader_path=image["efi"],
        ),
    )
"""


def pulumi_ovh_missing() -> str | None:
    """Why pulumi-ovh cannot run here, or None."""
    reason = not_built("pulumi-resource-ovh", "pulumi-ovh-python")
    return f"pulumi-ovh {VERSION} not run: {reason}" if reason else None


def stack(emulator: RunningEmulator, folder: Path, servers: list[str], image: dict[str, str]) -> Any:
    """A new stack of the program above, its plugin on the PATH, its program in pulumi-ovh's virtualenv."""
    source = folder / "source"
    source.mkdir(parents=True)
    (source / "Pulumi.yaml").write_text("name: bench-pulumi-ovh\nruntime: python\n")
    (source / "__main__.py").write_text(PROGRAM)
    plugin_folder = (TOOLS / "bin" / "pulumi-resource-ovh").resolve().parent
    # The link names the virtualenv's python, itself a link to the interpreter it was made with.
    venv = Path(os.readlink(TOOLS / "bin" / "pulumi-ovh-python")).parent / "venv"
    # The language host scripts/get-pulumi builds (3.78.1) runs the first python3 on the PATH: it takes the
    # `virtualenv` option from flags that today's CLI no longer passes. The project's virtualenv comes after,
    # for the CLI's other plugins.
    path = os.pathsep.join(
        [str(plugin_folder), str(venv / "bin"), str(Path(sys.prefix) / "bin"), os.environ.get("PATH", "")]
    )
    created = pulumi_stack_class().create(
        source,
        folder / "run",
        "bench",
        emulator=emulator,
        config={"bench:servers": servers, "bench:image": image},
        env={"PATH": path},
    )
    # The test kit points the copy's `virtualenv` at the project's; a language host that reads it must find
    # pulumi-ovh's.
    project = created.project / "Pulumi.yaml"
    runtime = f"runtime:\n  name: python\n  options:\n    virtualenv: {venv}\n"
    project.write_text(f"name: bench-pulumi-ovh\n{runtime}")
    return created
