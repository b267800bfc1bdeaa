"""The order of the checks, from the declared inputs to every problem found (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ovh_byoi.errors import DiskGroups
from ovh_byoi.redaction import redact
from ovh_byoi.spec import Problem, check_inputs

from . import CHECK_LEVELS
from .full import Checksum, FullCheck, full_findings
from .layout import inspect_head
from .sizes import Disk, size_findings
from .sources import Source, source_for


@dataclass(frozen=True)
class Request:
    """The arguments of `run_preflight`."""

    image_url: str
    image_type: str
    image_checksum: str | None
    image_checksum_type: str | None
    http_headers: Mapping[str, str]
    efi_bootloader_path: str | None
    level: str
    disk_bytes: int | None
    memory_bytes: int | None
    progress: Callable[[int, int | None], None] | None
    disk_groups: DiskGroups
    disk_group_id: int | None


def run(request: Request) -> list[Problem]:
    if request.level not in CHECK_LEVELS:
        return [
            Problem(
                "preflight", f"unknown preflight level {request.level!r}", "Use one of: off, quick, full."
            )
        ]
    if request.level == "off":
        return []
    findings, checksum = checksum_plan(request.image_checksum, request.image_checksum_type)
    source = source_for(request.image_url, request.http_headers)
    findings.extend(_image_findings(request, source, checksum))
    # Servers and libraries quote what they were sent: whatever a finding repeats, no secret gets through.
    return [
        Problem(finding.field, redact(finding.message, source.secrets), redact(finding.fix, source.secrets))
        for finding in findings
    ]


def checksum_plan(checksum: str | None, checksum_type: str | None) -> tuple[list[Problem], Checksum | None]:
    """The resource's own rules for the checksum pair (`ovh_byoi.spec`), and the digest to compare with."""
    given: dict[str, Any] = {"image_checksum": checksum, "image_checksum_type": checksum_type}
    values, problems = check_inputs(
        {name: value for name, value in given.items() if value is not None}, partial=True
    )
    if problems or "image_checksum" not in values:
        return problems, None
    return [], Checksum(values["image_checksum_type"], values["image_checksum"])


def _image_findings(request: Request, source: Source, checksum: Checksum | None) -> list[Problem]:
    probe = source.probe()
    if probe.head is None:
        return probe.findings
    disk = Disk(request.disk_bytes, request.disk_groups, request.disk_group_id)
    layout = inspect_head(probe.head, request.image_type, source.display)
    findings = [*probe.findings, *layout.findings]
    findings.extend(size_findings(layout, probe.size, disk, request.memory_bytes))
    if request.level == "full":
        check = FullCheck(
            source, probe, checksum, request.efi_bootloader_path, disk, request.memory_bytes, request.progress
        )
        findings.extend(full_findings(check, layout))
    return findings
