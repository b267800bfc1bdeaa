"""The README agrees with the code: the error catalog, the inputs, the dependencies, the commands it shows."""

from __future__ import annotations

import re
import tomllib

import pytest
from ovh_byoi import ByoiInstallationArgs
from ovh_byoi import errors as errors_module
from ovh_byoi.errors import fix_for
from ovh_byoi.spec import DEFAULT_TIMEOUT_MINUTES, INSTALL_FIELDS
from reliability.ledger import Ledger

from .conftest import ROOT

README = ROOT / "README.md"
EXAMPLE_SERVER = "ns3001234.ip-51-91-2.eu"

# One text OVH writes for each entry of the catalog (task comment, note or failing step's error).
OVH_TEXTS = (
    "Please provide checkSum AND checkSumType or none of them",
    "image provided format is raw which does not match expected qcow2 format",
    "image provided has a size of 536870912000 bytes which is larger than device of 480103981056 bytes",
    "Can't write qcow2 on disk",
    "Could not download, qcow2 image is too big to download in memory.",
    "Could not download image located: https://images.example.net/debian-12.qcow2",
    "image provided format is not of type raw because no partition table was found. "
    "It seems to contain: DOS/MBR boot sector",
    "Bad checkSumType for downloaded file, got: 9b1c0e while expecting 3f2a77.",
    "Bad format image, expected: qcow2, raw",
    "Can not move backup GPT data structures to the end of disk",
    "Could not create configdrive on disk",
)


def _cell(text: str) -> str:
    """Markdown table cell: outside code spans `<...>` would be read as HTML and `*` as emphasis; `|` ends
    a column anywhere."""
    parts = text.split("`")
    for index in range(0, len(parts), 2):
        parts[index] = parts[index].replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")
    return "`".join(parts).replace("|", "\\|")


def error_catalog_section() -> str:
    """The README's error tables, from `errors.py`'s catalog of OVH texts and of API refusals."""
    lines = ["| OVH says (task comment, note or failing step) | Fix given in the error |", "| --- | --- |"]
    for text in OVH_TEXTS:
        fix = fix_for(text)
        assert fix is not None, text
        lines.append(f"| `{text}` | {_cell(fix)} |")
    lines += [
        "",
        "| OVH refuses a call with (`class` or `errorCode`) | Error | Fix given in the error |",
        "| --- | --- | --- |",
    ]
    for key, refusal in errors_module._REFUSALS.items():
        fix = refusal.fix.format(service_name=EXAMPLE_SERVER, action="start a reinstall")
        lines.append(f"| `{key}` | `{refusal.error_type.__name__}` | {_cell(fix)} |")
    return "\n".join(lines)


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def test_every_known_ovh_failure_has_an_example_text() -> None:
    for known in errors_module._CATALOG:
        assert any(known.pattern.search(text) for text in OVH_TEXTS), f"no example text for {known.key}"


def test_the_readme_error_catalog_is_the_code_s() -> None:
    written = _between(README.read_text(), "<!-- error-catalog:start -->", "<!-- error-catalog:end -->")
    expected = error_catalog_section()
    assert written == expected, f"update the README's error catalog to:\n\n{expected}\n"


def _reference_rows() -> dict[str, str]:
    inputs = _between(README.read_text(), "<!-- inputs:start -->", "<!-- inputs:end -->")
    rows = {}
    for line in inputs.splitlines():
        match = re.match(r"\| `(\w+)` \|(.*)", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_the_inputs_reference_lists_every_input_and_marks_each_reinstalling_one() -> None:
    rows = _reference_rows()

    assert set(rows) == set(ByoiInstallationArgs.model_fields)
    reinstalling = {name for name, row in rows.items() if "**reinstalls**" in row}
    assert reinstalling == set(INSTALL_FIELDS) | {"image_url", "image_checksum"}
    assert f"`{DEFAULT_TIMEOUT_MINUTES}`" in rows["timeout_minutes"]
    assert '`"quick"`' in rows["preflight"]


def _names(requirements: list[str]) -> list[str]:
    return [re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0] for requirement in requirements]


def test_the_readme_says_why_each_dependency_is_there() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    section = _between(README.read_text(), "## Dependencies", "\n## ")
    listed = set(re.findall(r"\*\*`([^`]+)`\*\*", section))

    extras = [name for extra in project["optional-dependencies"].values() for name in _names(extra)]
    # `dev` names the project itself, to pull in its `emulator` extra.
    declared = _names(project["dependencies"]) + [name for name in extras if name != project["name"]]
    assert sorted(set(declared) - listed) == [], "dependencies the README does not explain"
    assert sorted(listed - set(declared)) == [], "the README explains dependencies pyproject.toml lacks"


@pytest.mark.parametrize("path", ["scripts/demo", "scripts/test", "examples/03-drift-check/drift-check"])
def test_the_commands_the_readme_shows_exist(path: str) -> None:
    assert path in README.read_text()
    assert (ROOT / path).stat().st_mode & 0o111, f"{path} is not executable"


def test_the_reliability_report_is_pointed_at_never_copied() -> None:
    """Every run that runs all of tests/reliability and passes rewrites docs/reliability.md from what it
    measured (tests/reliability/report.py), so a copy of its counts elsewhere would be out of date by the next
    run; the README links to it instead."""
    written = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in written.splitlines()[2:]
        if line.startswith("| ") and not line.startswith(("| What", "| ---"))
    }
    assert set(rows) == {what for what, _, _ in Ledger().rows()}, (
        "docs/reliability.md holds the suite's table"
    )
    assert all(rows[what] == "0" for what in rows if "must be 0" in what), rows
    readme = README.read_text(encoding="utf-8")
    assert "docs/reliability.md" in readme
    copied = [
        line for line in readme.splitlines() if line.startswith("| ") and line.split("|")[1].strip() in rows
    ]
    assert copied == [], "the README repeats counts of docs/reliability.md; link to it instead"
