"""OVH's Terraform provider (terraform-provider-ovh) run by OpenTofu against the emulator, with no registry:
the CLI configuration's `dev_overrides` points `ovh/ovh` at the binary `scripts/get-ovh-clients` built.

The provider waits 10 s before it first reads a task (its own waits are real seconds, whatever the emulator's
speed): each apply here takes at least that long, so there are few of them.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovh_emulator.testing import RunningEmulator

from .tools import tool

EFI = "\\\\efi\\\\debian\\\\grubx64.efi"  # as HCL writes \efi\debian\grubx64.efi


@dataclass
class Tofu:
    folder: Path
    env: dict[str, str]

    @classmethod
    def project(cls, tmp_path: Path, emulator: RunningEmulator, resources: str) -> Tofu:
        provider = tool("terraform-provider-ovh")
        tool("tofu")
        folder = tmp_path / "project"
        folder.mkdir()
        cli_config = tmp_path / "tofu.rc"
        cli_config.write_text(
            "provider_installation {\n"
            f'  dev_overrides {{ "ovh/ovh" = "{provider.parent}" }}\n'
            "  direct {}\n"
            "}\n"
        )
        (folder / "main.tf").write_text(
            'terraform {\n  required_providers {\n    ovh = { source = "ovh/ovh" }\n  }\n}\n'
            'provider "ovh" {\n'
            f'  endpoint           = "{emulator.url}"\n'
            f'  application_key    = "{emulator.application_key}"\n'
            f'  application_secret = "{emulator.application_secret}"\n'
            f'  consumer_key       = "{emulator.consumer_key}"\n'
            "}\n" + resources
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
        }
        return cls(folder, env)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(tool("tofu")), *args, "-no-color", "-input=false"],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"tofu {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done

    def state(self, address: str) -> dict[str, Any]:
        state = json.loads((self.folder / "terraform.tfstate").read_text())
        for resource in state["resources"]:
            if f"{resource['type']}.{resource['name']}" == address:
                attributes: dict[str, Any] = resource["instances"][0]["attributes"]
                return attributes
        raise AssertionError(f"{address} is not in the state")


def reinstall_task(name: str, server: str, image_url: str, image_type: str, extra: str = "") -> str:
    return f"""
resource "ovh_dedicated_server_reinstall_task" "{name}" {{
  service_name = "{server}"
  os           = "byoi_64"
  {extra}
  customizations {{
    hostname            = "tofu-{name}"
    image_url           = "{image_url}"
    image_type          = "{image_type}"
    efi_bootloader_path = "{EFI}"
    config_drive_user_data = "I2Nsb3VkLWNvbmZpZwo="
  }}
}}
"""


def assert_every_route_served(emulator: RunningEmulator) -> dict[str, int]:
    stats = emulator.stats()
    assert not [route for route in stats if "(no route)" in route], stats
    return stats


def test_reinstall_task_installs_a_byoi_image_and_ends_done(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    server = "ns1000001.emulator.ovh"
    tofu = Tofu.project(
        tmp_path,
        emulator,
        reinstall_task(
            "byoi", server, emulator.image_url("debian.qcow2"), "qcow2", extra="bootid_on_destroy = 2"
        ),
    )
    tofu.run("apply", "-auto-approve")

    task = tofu.state("ovh_dedicated_server_reinstall_task.byoi")
    assert (task["function"], task["status"]) == ("reinstallServer", "done")
    admin = emulator.server(server)
    install = admin["installs"][-1]
    assert (install["taskId"], install["status"], install["operatingSystem"]) == (
        int(task["id"]),
        "done",
        "byoi_64",
    )
    assert (install["imageURL"], install["imageType"]) == (emulator.image_url("debian.qcow2"), "qcow2")
    assert admin["os"] == "byoi_64"
    assert admin["efiBootloaderPath"] == "\\efi\\debian\\grubx64.efi"
    assert admin["configDrive"]["hostname"] == "tofu-byoi"

    # The provider's Read makes no call, so a plan right after shows no change.
    assert tofu.run("plan", "-detailed-exitcode").returncode == 0

    # Destroying it with `bootid_on_destroy` sets the boot (PUT) and reboots the server, waiting for the task.
    tofu.run("destroy", "-auto-approve")
    assert len(emulator.server(server)["installs"]) == 1  # a reboot, not a reinstall
    stats = assert_every_route_served(emulator)
    assert stats["POST /1.0/dedicated/server/{serviceName}/reinstall"] == 1
    assert stats["PUT /1.0/dedicated/server/{serviceName}"] == 1
    assert stats["POST /1.0/dedicated/server/{serviceName}/reboot"] == 1
    assert stats["GET /1.0/auth/details"] >= 1
    assert stats["GET /1.0/dedicated/server/{serviceName}/task/{taskId}"] >= 2


def test_a_broken_image_ends_in_the_failure_terraform_reports(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    server, image = "ns1000002.emulator.ovh", emulator.image_url("no-table.raw")
    reason = (
        "image provided format is not of type raw because no partition table was found. It seems to contain:"
    )
    tofu = Tofu.project(tmp_path, emulator, reinstall_task("broken", server, image, "raw"))
    done = tofu.run("apply", "-auto-approve", check=False)
    assert done.returncode == 1
    install = emulator.server(server)["installs"][-1]
    assert install["status"] == "customerError"
    assert install["comment"].startswith(reason)
    # What the provider reports (ovh/dedicated_server_task.go): the status, never OVH's reason.
    output = " ".join(done.stderr.split())
    assert (
        f"Error waiting for Dedicated Server task {server}/{install['taskId']} to complete: "
        "unexpected state 'customerError', wanted target 'done'"
    ) in output, done.stderr
    assert reason not in output
    # A failed create leaves nothing in the state: the next apply would reinstall again.
    state = json.loads((tofu.folder / "terraform.tfstate").read_text())
    assert state["resources"] == []
    assert_every_route_served(emulator)


def test_dedicated_server_with_customizations_installs_and_updates_the_server(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    server = "ns1000003.emulator.ovh"
    image_url = emulator.image_url("debian.raw")
    tofu = Tofu.project(
        tmp_path,
        emulator,
        f"""
resource "ovh_dedicated_server" "server" {{
  service_name               = "{server}"
  os                         = "byoi_64"
  keep_service_after_destroy = true
  monitoring                 = false
  rescue_mail                = "ops@example.com"
  customizations = {{
    hostname            = "tofu-server"
    image_url           = "{image_url}"
    image_type          = "raw"
    efi_bootloader_path = "{EFI}"
  }}
}}
""",
    )
    tofu.run("apply", "-auto-approve")
    admin = emulator.server(server)
    assert [(i["status"], i["imageURL"]) for i in admin["installs"]] == [("done", image_url)]
    assert (admin["os"], admin["configDrive"]["hostname"]) == ("byoi_64", "tofu-server")
    state = tofu.state("ovh_dedicated_server.server")
    assert (state["os"], state["monitoring"], state["rescue_mail"]) == ("byoi_64", False, "ops@example.com")
    assert (state["name"], state["state"], state["datacenter"]) == (server, "ok", "gra3")

    # Nothing differs: no second reinstall. (Without a `display_name` in the configuration, the provider's
    # Read copies `iam.displayName` into it and every plan shows it going back to null, against OVH as here;
    # the provider's own switch turns that off.)
    tofu.env["TERRAFORM_OVH_RESTORE_BAREMETAL_DISPLAYNAME_BEHAVIOUR"] = "1"
    plan = tofu.run("plan", "-detailed-exitcode", check=False)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    tofu.run("destroy", "-auto-approve")
    assert len(emulator.server(server)["installs"]) == 1
    stats = assert_every_route_served(emulator)
    assert stats["PUT /1.0/dedicated/server/{serviceName}"] == 1
