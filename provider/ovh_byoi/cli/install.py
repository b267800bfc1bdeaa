"""`ovh-byoi install`: verify an image, erase the server, and follow OVH until the image is installed."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from ..errors import PreflightFailedError
from ..redaction import redact
from ..spec import INPUTS
from .app import (
    STEP_MARKS,
    BadInput,
    Failure,
    Interrupted,
    download_bar,
    endpoint_option,
    err,
    main,
    out,
    print_findings,
    validated,
)
from .options import INSTALL_OPTION_NAMES, input_options
from .spec_file import file_or_value, load_spec

if TYPE_CHECKING:
    from ..installing import Session
    from ..ovh_api import InstallStatus
    from ..spec import ByoiInstallationArgs, ByoiInstallationState

__all__ = ["install"]


def _install_inputs(spec: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    inputs = dict(spec)
    if inputs.pop("adopt", False):
        raise BadInput(
            "--spec: adopt applies to the Pulumi resource (take over a server without installing); "
            "this command always installs. Remove adopt."
        )
    for name, value in given.items():
        if value is None or value == {}:
            continue
        if name == "service_name" and inputs.get(name) not in (None, value):
            raise BadInput(
                f"SERVICE is {value} but the spec says service_name: {inputs[name]}; give one of them"
            )
        inputs[name] = value
    return inputs


class _InstallView:
    """What the terminal shows while OVH installs: each step with its mark, and the elapsed time."""

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name
        self.status: InstallStatus | None = None
        self.started = time.monotonic()

    def __rich__(self) -> RenderableType:
        elapsed = int(time.monotonic() - self.started)
        header = Text.from_markup(
            f"[bold]{escape(self.service_name)}[/] · installing · "
            f"elapsed {elapsed // 60:02d}:{elapsed % 60:02d}"
        )
        if self.status is None or not self.status.progress:
            return Group(header, Text("  waiting for OVH to start the installation steps"))
        lines: list[RenderableType] = [header]
        total = len(self.status.progress)
        for position, step in enumerate(self.status.progress, start=1):
            mark = STEP_MARKS.get(step.status, "[dim]·[/]")
            detail = f": {escape(redact(step.error))}" if step.error else ""
            lines.append(
                Text.from_markup(f"  {mark} {position:>2}/{total} {escape(redact(step.comment))}{detail}")
            )
        return Group(*lines)


def _live_progress(service_name: str, view: _InstallView) -> Any:
    """The provider's progress reporter, drawing OVH's steps live on a terminal and as lines elsewhere."""
    from ..waiting import Progress

    class LiveProgress(Progress):
        def show(self, status: InstallStatus) -> None:
            view.status = status
            if not err.is_terminal:
                super().show(status)

    return LiveProgress(service_name, write=lambda line: err.print(escape(line)))


def _preflight(session: Session, args: Any) -> None:
    """Session.preflight's checks, with a progress bar for the full download."""
    level = args.preflight
    err.print(f"Checking the image ({level} preflight) before anything is erased...")
    try:
        with download_bar(level == "full", "Verifying the image") as progress:
            session.preflight(args, download_progress=progress)
    except PreflightFailedError as failed:
        print_findings(failed.findings, INSTALL_OPTION_NAMES, f"the image for {args.service_name}")
        raise Failure(str(failed).splitlines()[0]) from None


def _given(service: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """The inputs given as options, `@FILE` values read."""
    given = {"service_name": service, **options}
    for name, meta in INPUTS.items():
        if meta.cli is not None and meta.cli.reads_file:
            given[name] = file_or_value(given.get(name), INSTALL_OPTION_NAMES[name])
    return given


def _confirm(args: ByoiInstallationArgs, server_os: str | None) -> None:
    click.confirm(
        redact(
            f"Reinstall {args.service_name} (now running {server_os}) with {args.image_url}? "
            "Everything on the server will be erased"
        ),
        abort=True,
        err=True,
    )


def _follow(session: Session, args: ByoiInstallationArgs, view: _InstallView) -> ByoiInstallationState:
    """Session.install, drawn live on a terminal; elsewhere (CI logs) each change of step is one line."""
    live = Live(view, console=err, refresh_per_second=4, transient=True) if err.is_terminal else nullcontext()
    try:
        with live:
            return session.install(args.model_copy(update={"preflight": "off"}))
    except KeyboardInterrupt:
        raise Interrupted(
            f"Stopped following {args.service_name}. OVH goes on with any reinstall it started: "
            f"follow it with `ovh-byoi status {args.service_name}`."
        ) from None


@main.command()
@click.argument("service", required=False)
@click.option(
    "--spec", "spec_file", type=click.Path(path_type=Path, dir_okay=False), help="A YAML file of inputs."
)
@input_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation before erasing the server.")
@endpoint_option
def install(
    service: str | None, spec_file: Path | None, yes: bool, endpoint: str | None, **options: Any
) -> None:
    """Install an image on SERVICE: verify it, erase the server, and follow OVH until it is done.

    Inputs are those of the ByoiInstallation resource, from options or from --spec FILE.yaml (options win).
    """
    from ..installing import Session
    from ..ovh_api import OvhSettings
    from ..spec import ByoiInstallationArgs

    inputs = _install_inputs(load_spec(spec_file) if spec_file else {}, _given(service, options))
    args = ByoiInstallationArgs.model_validate(validated(inputs, INSTALL_OPTION_NAMES))
    view = _InstallView(args.service_name)
    session = Session.open(
        OvhSettings(endpoint=endpoint),
        args.service_name,
        timeout_minutes=args.timeout_minutes,
        progress=_live_progress(args.service_name, view),
    )
    server = session.call("read the server", session.api.server)
    if args.preflight != "off":
        _preflight(session, args)
    if not yes:
        _confirm(args, server.os)
    state = _follow(session, args, view)
    out.print(
        f"[bold green]✓[/] {escape(args.service_name)} installed: OVH task {state.task_id} done"
        f"{' at ' + state.installed_at if state.installed_at else ''}, the server reports os {state.os}"
    )
