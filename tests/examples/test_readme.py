"""The documentation agrees with the code and with itself: the error catalog, the inputs, the dependencies,
the commands and snippets it shows, and every link between its Markdown files (no network)."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from ovh_byoi import ByoiInstallationArgs, ovh_errors
from ovh_byoi import errors as errors_module
from ovh_byoi.errors import fix_for
from ovh_byoi.spec import INPUTS, INSTALL_FIELDS
from reliability.ledger import Ledger

from .conftest import ROOT

README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference.md"
ERRORS = ROOT / "docs" / "errors.md"
# The documents the README's front door sends readers to: each of their sections is one click away.
LINKED_DOCUMENTS = ("docs/reference.md", "docs/errors.md", "DESIGN.md", "CONTRIBUTING.md")
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


def _tooling(part: str) -> bool:
    return part.startswith(".") or part.endswith(".egg-info")


def markdown_files() -> list[Path]:
    """The repository's Markdown, not that of tools' caches and virtualenvs (folders starting with a dot)."""
    return sorted(path for path in ROOT.rglob("*.md") if not any(map(_tooling, path.relative_to(ROOT).parts)))


def _prose(text: str) -> str:
    """`text` without fenced code blocks, whose `#` lines and brackets are not Markdown."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def _fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return "".join(ch for ch in heading.lower() if ch.isalnum() or ch in "-_ ").replace(" ", "-")


def headings(path: Path, levels: str = "1,6") -> list[str]:
    return re.findall(rf"^#{{{levels}}} +(.+?) *$", _prose(path.read_text(encoding="utf-8")), re.MULTILINE)


def anchors(path: Path) -> set[str]:
    """The anchors of `path`'s headings, `-1`, `-2` ... after repeated ones."""
    seen: dict[str, int] = {}
    for heading in headings(path):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def links(path: Path) -> list[str]:
    """The targets of `path`'s inline links, outside code blocks and code spans."""
    prose = re.sub(r"`[^`\n]*`", "``", _prose(path.read_text(encoding="utf-8")))
    return re.findall(r"\]\(([^()\s]+)\)", prose)


def _cell(text: str) -> str:
    """Markdown table cell: outside code spans `<...>` would be read as HTML and `*` as emphasis; `|` ends
    a column anywhere."""
    parts = text.split("`")
    for index in range(0, len(parts), 2):
        parts[index] = parts[index].replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")
    return "`".join(parts).replace("|", "\\|")


def error_catalog_section() -> str:
    """The error tables of docs/errors.md, from the catalog of OVH texts and of API refusals."""
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
    for key, refusal in ovh_errors._REFUSALS.items():
        fix = refusal.fix.format(service_name=EXAMPLE_SERVER, action="start a reinstall")
        lines.append(f"| `{key}` | `{refusal.error_type.__name__}` | {_cell(fix)} |")
    return "\n".join(lines)


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def test_every_known_ovh_failure_has_an_example_text() -> None:
    for known in errors_module._CATALOG:
        assert any(known.pattern.search(text) for text in OVH_TEXTS), f"no example text for {known.key}"


def test_the_error_catalog_is_the_code_s() -> None:
    written = _between(ERRORS.read_text(), "<!-- error-catalog:start -->", "<!-- error-catalog:end -->")
    expected = error_catalog_section()
    assert written == expected, f"update the error catalog of docs/errors.md to:\n\n{expected}\n"


def _input_default(name: str) -> str:
    info = ByoiInstallationArgs.model_fields[name]
    if info.is_required():
        return "required"
    return "none" if info.default is None else f"`{json.dumps(info.default)}`"


def inputs_reference_section() -> str:
    """The inputs table of docs/reference.md, from each input's `InputDoc` and the model's defaults."""
    lines = ["| Input | Type | Default | A change | Notes |", "| --- | --- | --- | --- | --- |"]
    for name, meta in INPUTS.items():
        doc = meta.doc
        default = doc.default if doc.default is not None else _input_default(name)
        change = doc.change if doc.change is not None else "**reinstalls**" if meta.reinstalls else "update"
        notes = doc.notes + ("; **secret**" if meta.secret else "")
        cells = [f"`{name}`", doc.type, default, change, notes]
        assert not any("|" in cell for cell in cells), f"{name}: a `|` in its InputDoc would end a cell"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_the_inputs_reference_is_the_model_s() -> None:
    written = _between(REFERENCE.read_text(), "<!-- inputs:start -->", "<!-- inputs:end -->")
    expected = inputs_reference_section()
    assert written == expected, f"update the inputs table of docs/reference.md to:\n\n{expected}\n"


def _reference_rows() -> dict[str, str]:
    inputs = _between(REFERENCE.read_text(), "<!-- inputs:start -->", "<!-- inputs:end -->")
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
    assert f"`{ByoiInstallationArgs.model_fields['timeout_minutes'].default}`" in rows["timeout_minutes"]
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


def test_the_readme_starts_with_the_two_commands_of_a_fresh_machine() -> None:
    first_block = _fenced(README.read_text(encoding="utf-8"), "console")[0]
    commands = [line.split("#", 1)[0].strip() for line in first_block.splitlines()]

    assert commands == ["$ scripts/demo", "$ scripts/test"]


@pytest.mark.parametrize("path", ["scripts/demo", "scripts/test", "examples/03-drift-check/drift-check"])
def test_the_commands_the_readme_shows_exist(path: str) -> None:
    assert path in README.read_text()
    assert (ROOT / path).stat().st_mode & 0o111, f"{path} is not executable"


def test_the_readme_stays_a_short_front_door() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) < 200


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_reaches_a_file_and_heading_that_exist(path: Path) -> None:
    broken = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:: outside the repository, not checked without a network
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file or folder")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with the anchor #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("document", LINKED_DOCUMENTS)
def test_every_section_of_the_documentation_is_one_click_from_the_readme(document: str) -> None:
    targets = set(links(README))
    sections = [f"{document}#{_slug(heading)}" for heading in headings(ROOT / document, levels="2")]

    unlinked = [section for section in sections if section not in targets]
    assert document in targets
    assert not unlinked, "sections the README does not link to: " + ", ".join(unlinked)


def test_the_reliability_figures_have_one_home() -> None:
    """docs/reliability.md is rewritten by the suite; a copy elsewhere would go stale."""
    row = next(
        line
        for line in (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| Duplicate reinstalls")
    )
    copies = [path for path in markdown_files() if path.name != "reliability.md" and row in path.read_text()]
    assert copies == []


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_the_python_and_yaml_snippets_parse(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for snippet in _fenced(text, "python"):
        ast.parse(snippet)
    for snippet in _fenced(text, "yaml"):
        yaml.safe_load(snippet)


def test_the_smallest_program_declares_valid_inputs() -> None:
    """The README's first program, as `check` sees it: every input valid, nothing left out."""
    program = _fenced(README.read_text(encoding="utf-8"), "python")[0]
    call = next(node for node in ast.walk(ast.parse(program)) if isinstance(node, ast.Call))
    inputs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}

    assert getattr(call.func, "id", None) == "ByoiInstallation"
    ByoiInstallationArgs.model_validate(inputs)


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
    # The whole suite always installs and injects faults: zeros there are a report whose counts were lost.
    assert int(rows["Installs attempted"]) > 0 and int(rows["Faults injected"]) > 0, rows
    readme = README.read_text(encoding="utf-8")
    assert "docs/reliability.md" in readme
    copied = [
        line for line in readme.splitlines() if line.startswith("| ") and line.split("|")[1].strip() in rows
    ]
    assert copied == [], "the README repeats counts of docs/reliability.md; link to it instead"
