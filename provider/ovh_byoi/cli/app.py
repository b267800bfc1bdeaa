"""What every command of `ovh-byoi` shares: its consoles, exit statuses, errors, and common options.

Exit statuses: 0 when all is well, 1 when the image has problems or OVH failed (`Failure`), 2 for bad input
(`BadInput`), 130 when interrupted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as ProgressBar

from ..errors import ByoiError
from ..preflight import Finding, ProgressCallback
from ..redaction import redact

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_PROBLEM",
    "STEP_MARKS",
    "BadInput",
    "Failure",
    "Interrupted",
    "download_bar",
    "endpoint_option",
    "err",
    "main",
    "out",
    "parse_headers",
    "parse_pairs",
    "print_findings",
    "validated",
]


class _RedactingConsole(Console):
    """A console that masks URL credentials and query strings in whatever it prints (see `redact`).

    Every line of the command goes through one of the two consoles below, so that no message, finding, OVH
    text or URL can show a signed URL's token, whoever wrote it.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(redact(item) if isinstance(item, str) else item for item in objects), **kwargs)


out = _RedactingConsole(highlight=False, soft_wrap=True)
err = _RedactingConsole(stderr=True, highlight=False, soft_wrap=True)

EXIT_PROBLEM = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class Failure(click.ClickException):
    """A failure the user can act on: its message (which holds OVH's words and the fix), no traceback."""

    exit_code = EXIT_PROBLEM

    def show(self, file: Any = None) -> None:
        err.print(f"[bold red]Error:[/] {escape(self.message)}")


class BadInput(Failure):
    exit_code = EXIT_BAD_INPUT


class Interrupted(Failure):
    exit_code = EXIT_INTERRUPTED


class _Group(click.Group):
    """Turns the project's errors into messages: a user never sees a traceback for a failure we foresaw."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ByoiError as exc:
            raise Failure(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ovh-byoi")
def main() -> None:
    """Install your own OS image on OVHcloud dedicated servers (OVH's Bring Your Own Image)."""
    # The format inspector logs each failed safety check as a warning; findings already say it better.
    logging.getLogger("oslo_utils").setLevel(logging.ERROR)


# The emulator and its web stack (aiohttp, jsonschema) are an optional extra of the package.
_EMULATOR_MODULES = frozenset({"ovh_emulator", "aiohttp", "jsonschema"})


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
)
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Run a local emulator of the OVH API (options: `ovh-byoi emulator --help`)."""
    # Imported here so that the rest of the command does not pay for the emulator's web stack.
    try:
        from ovh_emulator.cli import main as emulator_main
    except ModuleNotFoundError as missing:
        if (missing.name or "").split(".")[0] not in _EMULATOR_MODULES:
            raise
        raise BadInput("the emulator is an optional extra: pip install 'ovh-byoi[emulator]'") from None
    emulator_main.main(args=ctx.args, prog_name="ovh-byoi emulator")


# --- shared options -----------------------------------------------------------------------------------------


def parse_headers(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            # Not quoted: the text may well be the secret, with its colon forgotten.
            raise click.BadParameter(
                "a header is missing its colon: write 'Name: value', e.g. 'Authorization: Basic ...'"
            )
        headers[name.strip()] = content.strip()
    return headers


def parse_pairs(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, content = value.partition("=")
        if not sep or not key:
            # Not quoted: metadata values are secrets.
            raise click.BadParameter("a value is not in the form KEY=VALUE: write it as e.g. role=web")
        pairs[key] = content
    return pairs


def endpoint_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--endpoint",
        metavar="REGION|URL",
        help="OVH API to call: ovh-eu, ovh-ca, ovh-us, ... or an http(s) URL "
        "(default: OVH_ENDPOINT, then ovh.conf).",
    )(function)


@contextmanager
def download_bar(enabled: bool, description: str) -> Iterator[ProgressCallback | None]:
    """A progress bar (bytes, rate, time left) fed by the full check's progress callback."""
    if not enabled:
        yield None
        return
    with ProgressBar(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def print_findings(findings: Sequence[Finding], option_names: Mapping[str, str], subject: str) -> None:
    count = len(findings)
    out.print(f"[bold red]✗[/] {escape(subject)}: {count} problem{'s' if count != 1 else ''}")
    for finding in findings:
        where = option_names.get(finding.field, finding.field)
        out.print(f"  [bold]{escape(where)}[/]: {escape(finding.message)}")
        out.print(f"    [green]fix:[/] {escape(finding.fix)}")


def validated(
    inputs: Mapping[str, Any], option_names: Mapping[str, str], *, partial: bool = False
) -> dict[str, Any]:
    """The inputs as the resource's check normalizes them, or every problem, each with its option and fix."""
    from ..spec import check_inputs

    normalized, problems = check_inputs(inputs, partial=partial)
    if problems:
        lines = [
            f"{len(problems)} input problem{'s' if len(problems) != 1 else ''}; nothing was sent to OVH."
        ]
        for problem in problems:
            lines.append(f"- {option_names.get(problem.field, problem.field)}: {problem.message}")
            lines.append(f"  Fix: {problem.fix}")
        raise BadInput("\n".join(lines))
    return normalized


STEP_MARKS = {"done": "[green]✓[/]", "doing": "[yellow]▶[/]", "error": "[red]✗[/]"}
