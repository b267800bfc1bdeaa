"""The runner the demo uses when no Pulumi CLI is installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from ovh_byoi_harness.runner import LABEL, main


def test_the_runner_applies_a_project_and_says_it_is_the_local_harness(
    tmp_path: Path, world: Path, toy_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", toy_env["PYTHONPATH"])
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: runnerproject\nruntime: python\n")
    (project / "Pulumi.demo.yaml").write_text(f"config:\n  runnerproject:world: {world}\n")
    (project / "__main__.py").write_text(
        "import pulumi\nfrom toy_provider import Toy\nToy('web-1', world=pulumi.Config().require('world'))\n"
    )
    state = tmp_path / "state.json"
    arguments = [
        str(project),
        "--stack",
        "demo",
        "--state",
        str(state),
        "-c",
        "toy:endpoint=http://cli.example",
    ]

    first = CliRunner().invoke(main, ["up", *arguments])
    assert first.exit_code == 0, first.output
    assert f"[{LABEL}] up runnerproject/demo" in first.output
    assert "+ create web-1" in first.output
    assert "[web-1] created toy-" in first.output

    second = CliRunner().invoke(main, ["up", *arguments, "--expect-no-changes"])
    assert second.exit_code == 0, second.output
    assert "= same web-1" in second.output

    bad = CliRunner().invoke(main, ["up", *arguments, "-c", "no-equals-sign"])
    assert bad.exit_code == 2
    assert "write KEY=VALUE" in bad.output
