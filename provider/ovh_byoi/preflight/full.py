"""The full check: one pass over the whole image for its checksum, then a look inside it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ovh_byoi.errors import guide_fix
from ovh_byoi.redaction import redact
from ovh_byoi.spec import Problem

from .efi import efi_findings, qcow2_damage
from .layout import Layout
from .partitions import efi_system_partition
from .sizes import Disk, size_findings
from .sources import Probe, Source
from .streaming import ImagePass, PassResult, Progress, RangeSpool

_WHOLE_FILE = 2**63


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    hexdigest: str


@dataclass(frozen=True)
class FullCheck:
    """What the full check compares the image with."""

    source: Source
    probe: Probe
    checksum: Checksum | None
    efi_path: str | None
    disk: Disk
    memory_bytes: int | None
    progress: Progress | None


def full_findings(check: FullCheck, layout: Layout) -> list[Problem]:
    """The problems only the whole image shows."""
    want_efi = bool(check.efi_path) and layout.real_format is not None
    try:
        scratch_directory = tempfile.TemporaryDirectory(prefix="ovh-byoi-preflight-")
    except OSError as exc:
        return [_no_room(exc)]
    with scratch_directory as scratch_name:
        scratch = Path(scratch_name)
        try:
            spool = _plan_spool(check.source, layout, scratch, want_efi)
        except OSError as exc:
            return [_no_room(exc)]
        image_pass = ImagePass(check.source, _algorithm(check), spool, check.probe.size, check.progress)
        inside = None
        if check.source.local_path is not None:
            # The image is readable where it is: qemu-img and mtools look inside it while it is hashed (they
            # run as other processes, so this thread waits for them without holding the GIL).
            inside = _inside_findings(check, layout, None, scratch, want_efi)
        return _after_pass(check, layout, image_pass, spool, inside, scratch, want_efi)


def _after_pass(
    check: FullCheck,
    layout: Layout,
    image_pass: ImagePass,
    spool: RangeSpool | None,
    inside: list[Problem] | None,
    scratch: Path,
    want_efi: bool,
) -> list[Problem]:
    closing_error: OSError | None = None
    try:
        result = image_pass.finish()
    except check.source.transfer_errors as exc:
        detail = redact(str(exc), check.source.secrets)
        message = f"downloading {check.source.display} failed: {detail}"
        return [Problem("image_url", message, guide_fix("download_failed"))]
    finally:
        if spool is not None:
            closing_error = spool.close()
    findings = _pass_findings(check, layout, result)
    spool_errors = [*result.spool_errors, *([closing_error] if closing_error else [])]
    if spool_errors:
        findings.append(_no_room(spool_errors[0]))
        return findings
    if inside is None:
        inside = _inside_findings(check, layout, spool.path if spool else None, scratch, want_efi)
    return findings + inside


def _algorithm(check: FullCheck) -> str | None:
    return check.checksum.algorithm if check.checksum else None


def _no_room(exc: OSError) -> Problem:
    return Problem(
        "image_url",
        f"could not keep a copy of the image to look inside it: {exc}",
        "Free space in the temporary directory (or point TMPDIR elsewhere) and check again.",
    )


def _pass_findings(check: FullCheck, layout: Layout, result: PassResult) -> list[Problem]:
    findings: list[Problem] = []
    expected = check.probe.size
    if expected is not None and result.received != expected:
        findings.append(
            Problem(
                "image_url",
                f"the download of {check.source.display} stopped after {result.received} of {expected} bytes",
                guide_fix("download_failed"),
            )
        )
    elif expected is None:
        findings.extend(size_findings(layout, result.received, check.disk, check.memory_bytes))
    declared = check.checksum
    if declared is not None and result.hexdigest is not None and result.hexdigest != declared.hexdigest:
        findings.append(
            Problem(
                "image_checksum",
                f"the image's {declared.algorithm} is {result.hexdigest}, "
                f"not the declared {declared.hexdigest}",
                guide_fix("bad_checksum"),
            )
        )
    return findings


def _inside_findings(
    check: FullCheck, layout: Layout, spooled: Path | None, scratch: Path, want_efi: bool
) -> list[Problem]:
    """A damaged qcow2, then the EFI bootloader; ``spooled`` is the qcow2 or the EFI partition kept."""
    is_qcow2 = layout.real_format == "qcow2"
    image = check.source.local_path or (spooled if is_qcow2 else None)
    if is_qcow2:
        damage = qcow2_damage(image)
        if damage:
            # Nothing inside a damaged image can be trusted, the EFI partition included.
            message = f"the qcow2 image is damaged: {damage}"
            return [Problem("image_url", message, guide_fix("cannot_write"))]
    if want_efi and check.efi_path:
        return efi_findings(layout, image, None if is_qcow2 else spooled, scratch, check.efi_path)
    return []


def _plan_spool(source: Source, layout: Layout, scratch: Path, want_efi: bool) -> RangeSpool | None:
    """What to keep on disk while streaming, so that qemu-img and mtools can look inside afterwards."""
    if source.local_path is not None:
        return None
    if layout.real_format == "qcow2":
        # qemu-img checks the whole qcow2, and where the EFI partition lies inside it depends on its cluster
        # tables: keep the whole file.
        return RangeSpool(scratch / "image.qcow2", 0, _WHOLE_FILE)
    esp = efi_system_partition(layout.partitions)
    if esp is None or not want_efi:
        return None
    return RangeSpool(scratch / "esp.img", esp.start, esp.start + esp.size)
