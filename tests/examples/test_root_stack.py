"""The root stack (`Pulumi.yaml`, `__main__.py`) with its demo stack config: servers declared in config."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from ovh_byoi_harness.demo import retarget, stack_config
from ovh_emulator.testing import RunningEmulator

from .conftest import REINSTALL, ROOT, project_engine, writes

SERVERS = ("ns1000001.emulator.ovh", "ns1000002.emulator.ovh")
NOWHERE = "http://127.0.0.1:9"


def demo_config(emulator: RunningEmulator) -> dict[str, Any]:
    return dict(retarget(stack_config(ROOT, "demo"), emulator.base_url))


def test_the_demo_stack_installs_each_server_with_its_overrides_and_protect_forbids_a_reinstall(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = demo_config(emulator)
    config["ovh-byoi:servers"][SERVERS[0]]["protect"] = True
    engine = project_engine(ROOT, emulator, tmp_path / "state.json", stack="demo", **config)

    first = engine.up().raise_for_errors()

    assert first.ops() == {name: "create" for name in SERVERS}
    assert writes(emulator) == {REINSTALL: 2}
    web_1, web_2 = (emulator.server(name)["configDrive"] for name in SERVERS)
    assert (web_1["hostname"], web_2["hostname"]) == ("web-1", "web-2")
    assert web_2["metadata"] == {"role": "web"} and not web_1["metadata"]
    user_data = base64.b64decode(web_1["userData"]).decode()
    assert user_data.startswith("#cloud-config\n")
    assert yaml.safe_load(user_data) == {"packages": ["htop", "vim"], "timezone": "Europe/Paris"}
    exported = first.stack_outputs["servers"]
    assert {name: exported[name]["os"] for name in SERVERS} == {name: "byoi_64" for name in SERVERS}
    assert all(exported[name]["drift"] == "" for name in SERVERS)

    engine.up(expect_no_changes=True).raise_for_errors()
    assert writes(emulator) == {REINSTALL: 2}

    # A new image for every server: the one marked `protect: true` refuses its reinstall.
    config["ovh-byoi:defaults"].update(image_url=emulator.image_url("debian.raw"), image_type="raw")
    new_image = project_engine(ROOT, emulator, tmp_path / "state.json", stack="demo", **config).up()

    assert not new_image.ok
    assert "is protected: it cannot be replaced" in new_image.errors[new_image.step(SERVERS[0]).urn]
    assert [entry["status"] for entry in emulator.server(SERVERS[0])["installs"]] == ["done"]


def test_a_typo_in_the_config_names_the_server_and_the_key_and_nothing_runs(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = demo_config(emulator)
    config["ovh-byoi:servers"] = {
        SERVERS[0]: {"hostnme": "web-1"},
        SERVERS[1]: {"hostname": "web_2"},
    }
    config["ovh-byoi:defaults"] = {**config["ovh-byoi:defaults"], "image_type": "vhd"}
    engine = project_engine(ROOT, emulator, tmp_path / "state.json", stack="demo", **config)

    result = engine.up()

    assert not result.ok and result.steps == []
    message = str(result.program_error)
    assert "the stack config has 3 problems; nothing was changed" in message
    assert f"servers.{SERVERS[0]}.hostnme: not a key of a server (did you mean hostname?)" in message
    assert f"servers.{SERVERS[1]}.hostname: OVH requires at most 63 characters" in message
    assert f"defaults.image_type (for {SERVERS[0]}, {SERVERS[1]}): " in message
    assert emulator.stats() == {}, "nothing was asked of OVH"


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
    engine = project_engine(
        ROOT, NOWHERE, tmp_path / "state.json", stack="demo", **{"ovh-byoi:servers": servers}
    )

    result = engine.up()

    assert expected in str(result.program_error)
    assert result.steps == []
