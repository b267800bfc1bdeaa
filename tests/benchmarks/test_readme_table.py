"""README.md's comparison with the peers is generated from the measured data (`python -m
benchmarks.readme_table`, from benchmarks/peers.json): the committed README says what the data says."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    # By path: this folder is not a package, so that it never shadows the top-level `benchmarks` package.
    spec = importlib.util.spec_from_file_location("readme_table", ROOT / "benchmarks" / "readme_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


readme_table = _generator()


def committed_data() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(readme_table.DATA.read_text(encoding="utf-8"))
    return document


def test_the_generator_rewrites_only_the_block_and_is_stable(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\nBefore.\n\n<!-- benchmarks:begin -->\nstale table\n<!-- benchmarks:end -->\n\nAfter.\n"
    )
    data = tmp_path / "peers.json"
    data.write_text(json.dumps(committed_data()))

    assert readme_table.main(["--readme", str(readme), "--data", str(data)]) == 0

    written = readme.read_text()
    assert written.startswith("# Title\n\nBefore.\n\n<!-- benchmarks:begin -->\n")
    assert written.endswith("<!-- benchmarks:end -->\n\nAfter.\n")
    assert "stale table" not in written
    for tool in committed_data()["tools"]:
        assert f"| {tool['tool']} |" in written
    assert readme_table.main(["--readme", str(readme), "--data", str(data), "--check"]) == 0
    assert readme_table.main(["--readme", str(readme), "--data", str(data)]) == 0
    assert readme.read_text() == written


def test_without_markers_the_generator_changes_nothing_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nNo block here.\n")

    assert readme_table.main(["--readme", str(readme)]) == 1

    assert readme.read_text() == "# Title\n\nNo block here.\n"
    error = capsys.readouterr().err
    assert "<!-- benchmarks:begin -->" in error and "<!-- benchmarks:end -->" in error, error


def test_a_stale_block_fails_the_check(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- benchmarks:begin -->\nold numbers\n<!-- benchmarks:end -->\n")

    assert readme_table.main(["--readme", str(readme), "--check"]) == 1
    assert "old numbers" in readme.read_text()


def test_the_readme_block_is_what_the_committed_data_gives() -> None:
    readme = readme_table.README.read_text(encoding="utf-8")
    if readme_table.BEGIN not in readme:
        pytest.skip("README.md has no benchmarks block yet")
    assert readme_table.rewrite(readme, committed_data()) == readme, (
        "README.md's benchmarks block differs from benchmarks/peers.json: run "
        "`.venv/bin/python -m benchmarks.readme_table`"
    )
