"""The `ovh-byoi` command: verify an image, install it on a server, follow an install.

OVH credentials are found as OVH's own client finds them: `OVH_ENDPOINT`, `OVH_APPLICATION_KEY`,
`OVH_APPLICATION_SECRET`, `OVH_CONSUMER_KEY` (or `OVH_CLIENT_ID` and `OVH_CLIENT_SECRET`), then `./ovh.conf`,
`~/.ovh.conf`, `/etc/ovh.conf`; `--endpoint` names the API (a region such as `ovh-eu`, or an http(s) URL such
as a local emulator's). Exit status: 0 when all is well, 1 when the image has problems or OVH failed, 2 for
bad input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as ProgressBar
from rich.text import Text

from .errors import ByoiError, PreflightFailedError, TaskFailedError
from .preflight import Finding, ProgressCallback, run_preflight
from .redaction import redact

if TYPE_CHECKING:
    from .installing import Session
    from .ovh_api import InstallStatus

__all__ = ["main"]


class _RedactingConsole(Console):
    """A console that masks URL credentials and query strings in whatever it prints (see `redact`).

    Every line of the command goes through one of the two consoles below, so that no message, finding, OVH
    text or URL can show a signed URL's token, whoever wrote it.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(redact(item) if isinstance(item, str) else item for item in objects), **kwargs)


_out = _RedactingConsole(highlight=False, soft_wrap=True)
_err = _RedactingConsole(stderr=True, highlight=False, soft_wrap=True)

EXIT_PROBLEM = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class _Failure(click.ClickException):
    """A failure the user can act on: its message (which holds OVH's words and the fix), no traceback."""

    exit_code = EXIT_PROBLEM

    def show(self, file: Any = None) -> None:
        _err.print(f"[bold red]Error:[/] {escape(self.message)}")


class _BadInput(_Failure):
    exit_code = EXIT_BAD_INPUT


class _Interrupted(_Failure):
    exit_code = EXIT_INTERRUPTED


class _Group(click.Group):
    """Turns the project's errors into messages: a user never sees a traceback for a failure we foresaw."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ByoiError as exc:
            raise _Failure(str(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ovh-byoi")
def main() -> None:
    """Install your own OS image on OVHcloud dedicated servers (OVH's Bring Your Own Image)."""
    # The format inspector logs each failed safety check as a warning; findings already say it better.
    logging.getLogger("oslo_utils").setLevel(logging.ERROR)


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
)
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Run a local emulator of the OVH API (options: `ovh-byoi emulator --help`)."""
    # Imported here so that the rest of the command does not pay for the emulator's web stack.
    from ovh_emulator.cli import main as emulator_main

    emulator_main.main(args=ctx.args, prog_name="ovh-byoi emulator")


# --- shared options -----------------------------------------------------------------------------------------


def _parse_headers(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, str]:
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


def _parse_pairs(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, content = value.partition("=")
        if not sep or not key:
            # Not quoted: metadata values are secrets.
            raise click.BadParameter("a value is not in the form KEY=VALUE: write it as e.g. role=web")
        pairs[key] = content
    return pairs


def _endpoint_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--endpoint",
        metavar="REGION|URL",
        help="OVH API to call: ovh-eu, ovh-ca, ovh-us, ... or an http(s) URL "
        "(default: OVH_ENDPOINT, then ovh.conf).",
    )(function)


def _bytes(count: int | None) -> str:
    if count is None:
        return "unknown size"
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


@contextmanager
def _download_bar(enabled: bool, description: str) -> Iterator[ProgressCallback | None]:
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
        console=_err,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _print_findings(findings: Sequence[Finding], option_names: Mapping[str, str], subject: str) -> None:
    count = len(findings)
    _out.print(f"[bold red]✗[/] {escape(subject)}: {count} problem{'s' if count != 1 else ''}")
    for finding in findings:
        where = option_names.get(finding.field, finding.field)
        _out.print(f"  [bold]{escape(where)}[/]: {escape(finding.message)}")
        _out.print(f"    [green]fix:[/] {escape(finding.fix)}")


# --- verify-image -------------------------------------------------------------------------------------------

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
    type=click.Choice(["raw", "qcow2"], case_sensitive=False),
    help="The format OVH is told (imageType). Default: qcow2 for a .qcow2 file name, else raw.",
)
@click.option("--checksum", help="The image's expected hex digest (verified with --full).")
@click.option(
    "--checksum-type",
    type=click.Choice(["md5", "sha1", "sha256", "sha512"], case_sensitive=False),
    help="The digest's algorithm. Default: inferred from its length.",
)
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    callback=_parse_headers,
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
    values = _validated(
        {name: value for name, value in given.items() if value is not None}, _VERIFY_OPTIONS, partial=True
    )
    checksum, checksum_type = values.get("image_checksum"), values.get("image_checksum_type")
    with _download_bar(full, "Downloading") as progress:
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
        _print_findings(findings, _VERIFY_OPTIONS, shown)
        raise SystemExit(EXIT_PROBLEM)
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
    _out.print(f"[bold green]✓[/] {escape(shown)}: {escape(', '.join(checked))}")
    if skipped:
        _out.print(f"  not checked: {escape(', '.join(skipped))}")


# --- install ------------------------------------------------------------------------------------------------

# Every input of ByoiInstallation the command takes, and how the user writes it.
_INSTALL_OPTIONS = {
    "service_name": "SERVICE",
    "image_url": "--image-url",
    "image_type": "--image-type",
    "image_checksum": "--image-checksum",
    "image_checksum_type": "--image-checksum-type",
    "efi_bootloader_path": "--efi-bootloader-path",
    "hostname": "--hostname",
    "ssh_key": "--ssh-key",
    "config_drive_user_data": "--config-drive-user-data",
    "config_drive_metadata": "--config-drive-metadata",
    "http_headers": "--http-header",
    "operating_system": "--operating-system",
    "disk_group_id": "--disk-group-id",
    "timeout_minutes": "--timeout-minutes",
    "preflight": "--preflight",
}


def _read_text(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _BadInput(f"{option}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise _BadInput(
            f"{option}: {path} is not UTF-8 text (byte {exc.start} is not): it looks like a binary file.\n"
            "Fix: give a text file (a #cloud-config document, a #! script, an OpenSSH key line, YAML); "
            "cloud-init can download binary files itself at first boot (write_files with a URL)."
        ) from None


def _file_or_value(value: str | None, option: str) -> str | None:
    """`@path` reads the file (as curl does), anything else is the value itself."""
    if value is None or not value.startswith("@"):
        return value
    return _read_text(Path(value[1:]).expanduser(), option)


def _load_spec(path: Path) -> dict[str, Any]:
    import yaml

    text = _read_text(path, "--spec")
    try:
        loaded = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # YAML's own message quotes the lines around the error, and the file holds secrets (headers, user
        # data): say where and what only.
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _BadInput(
            f"--spec: {path} is not valid YAML{where}: {exc.problem or exc.context or 'syntax error'}"
        ) from None
    except yaml.YAMLError:
        raise _BadInput(f"--spec: {path} is not valid YAML") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise _BadInput(
            f"--spec: {path} must hold a mapping of ByoiInstallation inputs (image_url: ..., image_type: ...)"
        )
    return {str(key): value for key, value in loaded.items()}


def _install_inputs(spec: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    inputs = dict(spec)
    if inputs.pop("adopt", False):
        raise _BadInput(
            "--spec: adopt applies to the Pulumi resource (take over a server without installing); "
            "this command always installs. Remove adopt."
        )
    for name, value in given.items():
        if value is None or value == {}:
            continue
        if name == "service_name" and inputs.get(name) not in (None, value):
            raise _BadInput(
                f"SERVICE is {value} but the spec says service_name: {inputs[name]}; give one of them"
            )
        inputs[name] = value
    return inputs


def _validated(
    inputs: Mapping[str, Any], option_names: Mapping[str, str], *, partial: bool = False
) -> dict[str, Any]:
    """The inputs as the resource's check normalizes them, or every problem, each with its option and fix."""
    from .spec import check_inputs

    normalized, problems = check_inputs(inputs, partial=partial)
    if problems:
        lines = [
            f"{len(problems)} input problem{'s' if len(problems) != 1 else ''}; nothing was sent to OVH."
        ]
        for problem in problems:
            lines.append(f"- {option_names.get(problem.field, problem.field)}: {problem.message}")
            lines.append(f"  Fix: {problem.fix}")
        raise _BadInput("\n".join(lines))
    return normalized


_STEP_MARKS = {"done": "[green]✓[/]", "doing": "[yellow]▶[/]", "error": "[red]✗[/]"}


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
            mark = _STEP_MARKS.get(step.status, "[dim]·[/]")
            detail = f": {escape(redact(step.error))}" if step.error else ""
            lines.append(
                Text.from_markup(f"  {mark} {position:>2}/{total} {escape(redact(step.comment))}{detail}")
            )
        return Group(*lines)


def _live_progress(service_name: str, view: _InstallView) -> Any:
    """The provider's progress reporter, drawing OVH's steps live on a terminal and as lines elsewhere."""
    from .waiting import Progress

    class LiveProgress(Progress):
        def show(self, status: InstallStatus) -> None:
            view.status = status
            if not _err.is_terminal:
                super().show(status)

    return LiveProgress(service_name, write=lambda line: _err.print(escape(line)))


def _preflight(session: Session, args: Any) -> None:
    """Session.preflight's checks, with a progress bar for the full download."""
    level = args.preflight
    _err.print(f"Checking the image ({level} preflight) before anything is erased...")
    try:
        with _download_bar(level == "full", "Verifying the image") as progress:
            session.preflight(args, download_progress=progress)
    except PreflightFailedError as failed:
        _print_findings(failed.findings, _INSTALL_OPTIONS, f"the image for {args.service_name}")
        raise _Failure(str(failed).splitlines()[0]) from None


@main.command()
@click.argument("service", required=False)
@click.option(
    "--spec", "spec_file", type=click.Path(path_type=Path, dir_okay=False), help="A YAML file of inputs."
)
@click.option("--image-url", help="Where OVH downloads the image (http or https).")
@click.option(
    "--image-type",
    "--type",
    type=click.Choice(["raw", "qcow2"], case_sensitive=False),
    help="The image's real format.",
)
@click.option("--image-checksum", "--checksum", help="The image's hex digest.")
@click.option(
    "--image-checksum-type",
    "--checksum-type",
    type=click.Choice(["md5", "sha1", "sha256", "sha512"]),
    help="The digest's algorithm (default: inferred from its length).",
)
@click.option(
    "--efi-bootloader-path", "--efi-path", help=r"The bootloader UEFI starts, e.g. \efi\debian\grubx64.efi."
)
@click.option("--hostname", help="The server's new host name.")
@click.option("--ssh-key", help="An OpenSSH public key line, or @FILE.")
@click.option(
    "--config-drive-user-data", "--user-data", help="A #cloud-config document or a script, or @FILE."
)
@click.option(
    "--config-drive-metadata",
    "--metadata",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_pairs,
    help="Cloud-init metadata (repeatable).",
)
@click.option(
    "-H",
    "--http-header",
    "http_headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    callback=_parse_headers,
    help="An HTTP header the download needs (repeatable).",
)
@click.option(
    "--operating-system",
    type=click.Choice(["byoi_64", "byolinux_64"]),
    help="OVH's template (default byoi_64; byolinux_64 needs only --image-url, and a qcow2 image).",
)
@click.option(
    "--disk-group-id",
    type=int,
    help="The disk group the image goes to, on its first disk (default: OVH's automatic choice, group 1).",
)
@click.option("--timeout-minutes", type=int, help="How long to wait for OVH before giving up (default 120).")
@click.option(
    "--preflight", type=click.Choice(["quick", "full", "off"]), help="Image checks first (default quick)."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation before erasing the server.")
@_endpoint_option
def install(
    service: str | None,
    spec_file: Path | None,
    yes: bool,
    endpoint: str | None,
    ssh_key: str | None,
    config_drive_user_data: str | None,
    **options: Any,
) -> None:
    """Install an image on SERVICE: verify it, erase the server, and follow OVH until it is done.

    Inputs are those of the ByoiInstallation resource, from options or from --spec FILE.yaml (options win).
    """
    from .installing import Session
    from .ovh_api import OvhSettings
    from .spec import ByoiInstallationArgs

    given = {
        "service_name": service,
        "ssh_key": _file_or_value(ssh_key, "--ssh-key"),
        "config_drive_user_data": _file_or_value(config_drive_user_data, "--config-drive-user-data"),
        **options,
    }
    inputs = _install_inputs(_load_spec(spec_file) if spec_file else {}, given)
    args = ByoiInstallationArgs.model_validate(_validated(inputs, _INSTALL_OPTIONS))
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
        click.confirm(
            redact(
                f"Reinstall {args.service_name} (now running {server.os}) with {args.image_url}? "
                "Everything on the server will be erased"
            ),
            abort=True,
            err=True,
        )
    # On a terminal the steps are drawn live; elsewhere (CI logs) each change of step is one line.
    live = (
        Live(view, console=_err, refresh_per_second=4, transient=True) if _err.is_terminal else nullcontext()
    )
    try:
        with live:
            state = session.install(args.model_copy(update={"preflight": "off"}))
    except KeyboardInterrupt:
        raise _Interrupted(
            f"Stopped following {args.service_name}. OVH goes on with any reinstall it started: "
            f"follow it with `ovh-byoi status {args.service_name}`."
        ) from None
    _out.print(
        f"[bold green]✓[/] {escape(args.service_name)} installed: OVH task {state.task_id} done"
        f"{' at ' + state.installed_at if state.installed_at else ''}, the server reports os {state.os}"
    )


# --- status -------------------------------------------------------------------------------------------------


@main.command()
@click.argument("service")
@_endpoint_option
def status(service: str, endpoint: str | None) -> None:
    """Show SERVICE's operating system, its current or last reinstall, and the install's progress."""
    from .installing import Session
    from .ovh_api import OvhSettings

    session = Session.open(OvhSettings(endpoint=endpoint), service, timeout_minutes=5)
    server = session.call("read the server", session.api.server)
    ids = session.reinstall_task_ids()
    task = session.task(max(ids)) if ids else None
    steps = session.call("read the install steps", session.api.install_status)
    _out.print(f"[bold]{escape(service)}[/]")
    _out.print(f"  os: {escape(str(server.os))}   state: {escape(str(server.state))}")
    if task is None:
        _out.print("  reinstall: none on record")
    else:
        when = f"started {task.start_date}" + (f", ended {task.done_date}" if task.done_date else "")
        verb = "running" if task.running else task.status
        _out.print(f"  reinstall: OVH task {task.task_id}, {escape(verb)} ({escape(when)})")
    if steps is not None and steps.progress:
        current = steps.current
        total = len(steps.progress)
        where = f"step {current[0]}/{total} {current[1].comment}" if current else f"all {total} steps done"
        _out.print(
            f"  install: {escape(where)}, elapsed {steps.elapsed_time // 60}m{steps.elapsed_time % 60:02d}s"
        )
        for position, step in enumerate(steps.progress, start=1):
            mark = _STEP_MARKS.get(step.status, "[dim]·[/]")
            detail = f": {escape(step.error)}" if step.error else ""
            _out.print(f"    {mark} {position:>2}/{total} {escape(step.comment)}{detail}")
    if task is not None and task.failed:
        failed_step = steps.failed_step if steps is not None else None
        reasons = [
            text for text in (failed_step.error if failed_step else None, task.comment, task.note) if text
        ]
        failure = TaskFailedError(service, task.task_id, task.status, reasons)
        _out.print(escape("  " + str(failure).replace("\n", "\n  ")))


if __name__ == "__main__":
    # `python -m ovh_byoi.cli` works where the console script is not on PATH (benchmarks rely on it).
    main()
