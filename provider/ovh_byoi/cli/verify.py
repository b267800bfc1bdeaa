"""`ovh-byoi verify-image`: check an image the way OVH will, before any server is erased."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from ..preflight import run_preflight
from ..redaction import redact
from .app import (
    EXIT_PROBLEM,
    download_bar,
    main,
    out,
    parse_headers,
    print_findings,
    validated,
)
from .options import input_choices

__all__ = ["verify_image"]


_VERIFY_OPTIONS = {
    "image_url": "URL",
    "image_type": "--type",
    "image_checksum": "--checksum",
    "image_checksum_type": "--checksum-type",
    "http_headers": "-H",
    "efi_bootloader_path": "--efi-path",
}


def _type_from_name(url: str) -> str:
    return "qcow2" if url.split("?", 1)[0].lower().endswith((".qcow2", ".qcow", ".qcow2c")) else "raw"


@main.command("verify-image")
@click.argument("url")
@click.option(
    "--type",
    "image_type",
    type=click.Choice(input_choices("image_type"), case_sensitive=False),
    help="The format OVH is told (imageType). Default: qcow2 for a .qcow2 file name, else raw.",
)
@click.option("--checksum", help="The image's expected hex digest (verified with --full).")
@click.option(
    "--checksum-type",
    type=click.Choice(input_choices("image_checksum_type"), case_sensitive=False),
    help="The digest's algorithm. Default: inferred from its length.",
)
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    callback=parse_headers,
    help="An HTTP header the download needs (repeatable), e.g. -H 'Authorization: Basic ...'.",
)
@click.option(
    "--efi-path",
    help=r"The bootloader OVH boots (efiBootloaderPath), e.g. \efi\debian\grubx64.efi; checked with --full.",
)
@click.option(
    "--full", is_flag=True, help="Download the whole image: verify the checksum and the EFI bootloader."
)
def verify_image(
    url: str,
    image_type: str | None,
    checksum: str | None,
    checksum_type: str | None,
    headers: dict[str, str],
    efi_path: str | None,
    full: bool,
) -> None:
    """Check the image at URL (or a local file) the way OVH will, before any server is erased.

    Exits 0 when no problem is found, 1 otherwise.
    """
    declared_type = (image_type or _type_from_name(url)).lower()
    shown = redact(url)
    # The resource's own validator: what passes here passes `pulumi up`, and the other way round. Local files
    # are the one addition (to verify an image before uploading it).
    given: dict[str, Any] = {
        "image_type": declared_type,
        "image_checksum": checksum,
        "image_checksum_type": checksum_type,
        "http_headers": headers or None,
        "efi_bootloader_path": efi_path,
    }
    if "://" in url and not url.lower().startswith("file:"):
        given["image_url"] = url
    values = validated(
        {name: value for name, value in given.items() if value is not None}, _VERIFY_OPTIONS, partial=True
    )
    checksum, checksum_type = values.get("image_checksum"), values.get("image_checksum_type")
    with download_bar(full, "Downloading") as progress:
        findings = run_preflight(
            image_url=url,
            image_type=declared_type,
            image_checksum=checksum,
            image_checksum_type=checksum_type,
            http_headers=headers,
            efi_bootloader_path=efi_path,
            level="full" if full else "quick",
            disk_bytes=None,
            memory_bytes=None,
            progress=progress,
        )
    if findings:
        print_findings(findings, _VERIFY_OPTIONS, shown)
        raise SystemExit(EXIT_PROBLEM)
    _print_verified(url, declared_type, checksum=checksum, efi_path=efi_path, full=full)


def _print_verified(
    url: str, declared_type: str, *, checksum: str | None, efi_path: str | None, full: bool
) -> None:
    """What was checked of an image without a problem, and what was not (left to --full)."""
    checked = ["downloadable" if "://" in url and not url.startswith("file:") else "readable"]
    checked.append(
        f"a {declared_type} disk image" + (" with a partition table" if declared_type == "raw" else "")
    )
    skipped = []
    if full and checksum:
        checked.append("checksum matches")
    elif checksum:
        skipped.append("the checksum (use --full)")
    if full and efi_path:
        checked.append(f"{efi_path} is in the EFI system partition")
    elif efi_path:
        skipped.append("the EFI bootloader (use --full)")
    out.print(f"[bold green]✓[/] {escape(redact(url))}: {escape(', '.join(checked))}")
    if skipped:
        out.print(f"  not checked: {escape(', '.join(skipped))}")
