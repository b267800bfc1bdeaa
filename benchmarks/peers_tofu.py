"""OVH's Terraform provider under OpenTofu, as figure 7 (benchmarks/peers.py) drives it against the emulator.

The provider and OpenTofu are built by `scripts/get-ovh-clients` into `.cache/tools/ovh-clients/bin`; the
CLI configuration's `dev_overrides` points `ovh/ovh` at that build, so no registry is asked. The servers are
one `for_each` resource, the credentials and the image in `terraform.tfvars.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ovh_emulator.testing import RunningEmulator

from .common import ROOT

TOOLS = ROOT / ".cache" / "tools" / "ovh-clients"
# The versions scripts/get-ovh-clients pins (tests/benchmarks/test_pins.py holds the two to the same).
TERRAFORM_PROVIDER_OVH_VERSION = "2.19.0"
MAIN_TF = """terraform {
  required_providers {
    ovh = { source = "ovh/ovh" }
  }
}
variable "endpoint" { type = string }
variable "application_key" { type = string }
variable "application_secret" { type = string }
variable "consumer_key" { type = string }
variable "servers" { type = list(string) }
variable "image" { type = map(string) }
provider "ovh" {
  endpoint           = var.endpoint
  application_key    = var.application_key
  application_secret = var.application_secret
  consumer_key       = var.consumer_key
}
resource "ovh_dedicated_server_reinstall_task" "byoi" {
  for_each     = toset(var.servers)
  service_name = each.key
  os           = "byoi_64"
  customizations {
    hostname             = "tofu"
    image_url            = var.image["url"]
    image_type           = var.image["type"]
    image_check_sum      = var.image["checksum"]
    image_check_sum_type = "sha512"
    efi_bootloader_path  = var.image["efi"]
  }
}
"""


def not_built(*tools: str) -> str | None:
    """Why the first of `tools` that scripts/get-ovh-clients has not built is missing, or None."""
    for tool in tools:
        if not (TOOLS / "bin" / tool).exists():
            reason = TOOLS / "missing" / tool
            said = reason.read_text().strip() if reason.exists() else "run scripts/get-ovh-clients"
            return f"{tool} is not built: {said}"
    return None


def terraform_missing() -> str | None:
    """Why OVH's Terraform provider cannot run here, or None."""
    return not_built("tofu", "terraform-provider-ovh")


@dataclass
class Said:
    """What one command of a tool did: its exit status and the last lines it wrote, secrets redacted."""

    exit: int
    output: str

    def last_lines(self, emulator: RunningEmulator, count: int = 3) -> str:
        text = self.output
        for secret in (emulator.application_secret, emulator.consumer_key, emulator.application_key):
            text = text.replace(secret, "<redacted>")
        # The CLI's warning that a plugin came from the PATH (pulumi-ovh's, built here), and the resource
        # it was said for, come with every run.
        raw = [
            line
            for line in text.splitlines()
            if line.strip() and "from $PATH" not in line and not line.strip().startswith("[urn=")
        ]
        lines = [" ".join(line.split()) for line in raw]
        # What the tool says of the failure (Terraform's `Error: ...`; under Pulumi, the provider's exception
        # in a resource's diagnostics, else their first error) and the lines after it say more than the source
        # excerpt, traceback or summary around it.
        pulumi = "Diagnostics:" in raw
        told = _resource_diagnostics(raw) if pulumi else range(len(raw))
        raised = [n for n in told if "Error: " in lines[n]]
        if not raised and pulumi:
            raised = [n for n in told if lines[n].startswith("error:")]
        if raised:
            return " / ".join(line[:240] for line in lines[raised[0] : raised[0] + count])
        said = [line for line in lines if "drift" in line.lower() or "error:" in line.lower()]
        return " / ".join(line[:240] for line in (said[:count] or lines[-count:]))


def _resource_diagnostics(raw: list[str]) -> list[int]:
    """The numbers of the lines of Pulumi's diagnostics under a resource's heading (`  type (name):`). The
    program's own (its stack's) tell how the engine stopped it after a failure, not why."""
    told, section = [], ""
    for number, line in enumerate(raw):
        if not line.startswith(" "):  # Diagnostics:, Resources:, Outputs:...
            section = "diagnostics" if line == "Diagnostics:" else ""
        elif section and line.startswith("  ") and line[2] != " " and line.endswith("):"):
            section = "program" if line.startswith("  pulumi:pulumi:Stack ") else "resource"
        elif section == "resource":
            told.append(number)
    return told


@dataclass
class Tofu:
    folder: Path
    emulator: RunningEmulator
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def project(
        cls, folder: Path, emulator: RunningEmulator, servers: list[str], image: dict[str, str]
    ) -> Tofu:
        folder.mkdir(parents=True)
        (folder / "main.tf").write_text(MAIN_TF)
        rc = folder / "tofu.rc"
        provider_dir = (TOOLS / "bin" / "terraform-provider-ovh").resolve().parent
        # dev_overrides: OpenTofu runs the provider built here, with no registry and no `init` download.
        rc.write_text(
            "provider_installation {\n"
            f'  dev_overrides {{ "ovh/ovh" = "{provider_dir}" }}\n'
            "  direct {}\n}\n"
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(folder),
            "TF_CLI_CONFIG_FILE": str(rc),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
        }
        tofu = cls(folder, emulator, env)
        tofu.configure(servers, image)
        return tofu

    def configure(self, servers: list[str], image: dict[str, str]) -> None:
        emulator = self.emulator
        variables = {
            "endpoint": emulator.url,
            "application_key": emulator.application_key,
            "application_secret": emulator.application_secret,
            "consumer_key": emulator.consumer_key,
            "servers": servers,
            "image": image,
        }
        (self.folder / "terraform.tfvars.json").write_text(json.dumps(variables))

    def run(self, *args: str) -> Said:
        done = subprocess.run(
            [str(TOOLS / "bin" / "tofu"), *args, "-no-color", "-input=false"],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=3600,
            check=False,
        )
        return Said(done.returncode, done.stdout)

    def apply(self, *args: str) -> Said:
        return self.run("apply", "-auto-approve", *args)


def epoch(stamp: str) -> float:
    """An RFC 3339 time, its fraction cut to microseconds (Pulumi writes nanoseconds)."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction or '0')[:6]:0<6}+00:00").timestamp()
