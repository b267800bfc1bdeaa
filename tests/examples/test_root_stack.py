"""The root stack (`Pulumi.yaml`, `__main__.py`) with its demo stack config as documented, under the real
Pulumi CLI."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, writes
from testkit.pulumi_cli import PulumiStack

from .conftest import ROOT, documented_stack

SERVERS = ("ns1000001.emulator.ovh", "ns1000002.emulator.ovh")
NOWHERE = "http://127.0.0.1:9"


def demo_stack(emulator: RunningEmulator | None, tmp_path: Path, **config: Any) -> PulumiStack:
    if emulator is None:
        return PulumiStack.create(
            ROOT, tmp_path, "demo", config=config, secrets={"ovh:endpoint": f"{NOWHERE}/1.0"}
        )
    return documented_stack(ROOT, emulator, tmp_path, "demo", **config)


def test_the_demo_stack_installs_each_server_with_its_overrides_and_protect_forbids_a_reinstall(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    stack = demo_stack(emulator, tmp_path)
    servers = stack.config()["ovh-byoi:servers"]
    servers[SERVERS[0]]["protect"] = True
    stack.set_config({"ovh-byoi:servers": servers})

    stack.up()

    assert writes(emulator) == {REINSTALL: 2}
    web_1, web_2 = (emulator.server(name)["configDrive"] for name in SERVERS)
    assert (web_1["hostname"], web_2["hostname"]) == ("web-1", "web-2")
    assert web_2["metadata"] == {"role": "web"} and not web_1["metadata"]
    user_data = base64.b64decode(web_1["userData"]).decode()
    assert user_data.startswith("#cloud-config\n")
    assert yaml.safe_load(user_data) == {"packages": ["htop", "vim"], "timezone": "Europe/Paris"}
    assert web_1["sshKey"] == web_2["sshKey"] == stack.config()["ovh-byoi:defaults"]["ssh_key"]
    exported = stack.outputs()["servers"]
    assert {name: exported[name]["os"] for name in SERVERS} == {name: "byoi_64" for name in SERVERS}
    assert all(exported[name]["drift"] == "" for name in SERVERS)

    stack.preview("--diff", "--expect-no-changes")
    stack.up("--expect-no-changes")
    assert writes(emulator) == {REINSTALL: 2}

    # A new image for every server: the one marked `protect: true` refuses its reinstall.
    defaults = stack.config()["ovh-byoi:defaults"]
    defaults.update(image_url=emulator.image_url("debian.raw"), image_type="raw")
    stack.set_config({"ovh-byoi:defaults": defaults})
    refused = stack.up(expect=None)

    assert refused.returncode != 0
    assert "unable to replace resource" in refused.output, str(refused)
    assert "currently marked for protection" in refused.output
    assert [entry["status"] for entry in emulator.server(SERVERS[0])["installs"]] == ["done"]


def test_a_typo_in_the_config_names_the_server_and_the_key_and_nothing_runs(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    stack = demo_stack(emulator, tmp_path)
    defaults = stack.config()["ovh-byoi:defaults"]
    stack.set_config(
        {
            "ovh-byoi:servers": {SERVERS[0]: {"hostnme": "web-1"}, SERVERS[1]: {"hostname": "web_2"}},
            "ovh-byoi:defaults": {**defaults, "image_type": "vhd"},
        }
    )

    run = stack.up(expect=None)

    assert run.returncode != 0
    assert "the stack config has 3 problems; nothing was changed" in run.output
    assert f"servers.{SERVERS[0]}.hostnme: not a key of a server (did you mean hostname?)" in run.output
    assert f"servers.{SERVERS[1]}.hostname: OVH requires at most 63 characters" in run.output
    assert f"defaults.image_type (for {SERVERS[0]}, {SERVERS[1]}): " in run.output
    assert "Traceback" not in run.output
    assert emulator.stats() == {}, "nothing was asked of OVH"
    assert stack.resources() == {}


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        ({"ns1000001.emulator.ovh": ["web-1"]}, "servers.ns1000001.emulator.ovh: must be a mapping"),
        ({"ns1000001.emulator.ovh": {"service_name": "x"}}, "remove service_name"),
        (
            {"not a server!": {}},
            "servers.not a server!: 'not a server!' is not a dedicated server service name",
        ),
        (
            {"ns1000001.emulator.ovh": {"protect": "yes"}},
            "servers.ns1000001.emulator.ovh.protect: must be true or false",
        ),
    ],
)
def test_each_config_mistake_is_named(tmp_path: Path, servers: dict[str, Any], expected: str) -> None:
    # Nothing listens there: the program must stop before anything is asked of OVH.
    stack = demo_stack(None, tmp_path, **{"ovh-byoi:servers": servers})

    run = stack.preview(expect=None)

    assert run.returncode != 0
    assert expected in run.output, run
    assert "Traceback" not in run.output


def test_a_sensitive_value_in_plain_config_is_refused_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    # Pulumi would store these in clear text in the state, as the inputs of the provider of every server.
    stack = demo_stack(None, tmp_path)
    servers = stack.config()["ovh-byoi:servers"]
    servers[SERVERS[1]]["http_headers"] = {"Authorization": "Basic c2VjcmV0"}
    defaults = stack.config()["ovh-byoi:defaults"]
    defaults["config_drive_user_data"] = {"packages": ["htop"]}
    stack.set_config(
        {
            "ovh:applicationSecret": "plain-application-secret",
            "ovh-byoi:servers": servers,
            "ovh-byoi:defaults": defaults,
        }
    )

    refused = stack.preview(expect=None)

    assert refused.returncode != 0
    assert "the stack config has 3 problems; nothing was changed" in refused.output, refused
    assert "- ovh:applicationSecret: set in plain config" in refused.output
    assert f"- servers.{SERVERS[1]}.http_headers: sensitive, but read from plain config" in refused.output
    assert "- defaults.config_drive_user_data: sensitive, but read from plain config" in refused.output
    assert "Traceback" not in refused.output

    # The fixes, as printed: once run, the same stack previews.
    fixes = sorted(set(re.findall(r"`?(pulumi config set [^`;\n]*)", refused.output)))
    assert fixes == [
        "pulumi config set --path --secret 'ovh-byoi:defaults.config_drive_user_data' "
        '"$(cat user-data.yaml)"',
        f"pulumi config set --path --secret 'ovh-byoi:servers[\"{SERVERS[1]}\"].http_headers.Authorization' "
        "<value>",
        "pulumi config set --secret ovh:applicationSecret <value>",
    ]
    (stack.project / "user-data.yaml").write_text("#cloud-config\npackages: [htop]\n")
    stack.shell("\n".join(fix.replace("<value>", "a-value") for fix in fixes))

    previewed = stack.preview()
    assert "+ 3 to create" in previewed.output, previewed
    assert "plain-application-secret" not in stack.stack_file.read_text()
