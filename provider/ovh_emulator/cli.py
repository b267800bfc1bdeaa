"""`python -m ovh_emulator` / `ovh-byoi emulator`: run the local OVH API emulator."""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
import sys
from pathlib import Path

import click

from .app import EmulatorConfig, serve
from .auth import DEFAULT_APPLICATION_KEY, DEFAULT_APPLICATION_SECRET, DEFAULT_CONSUMER_KEY, Credentials
from .store import Store

__all__ = ["main"]


def _images_auth(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user:
        raise click.BadParameter("expected USER:PASSWORD, e.g. --images-auth demo:secret")
    return user, password


def _check_state_file(state: Path) -> None:
    if not state.parent.is_dir():
        raise click.BadParameter(f"the folder {state.parent} does not exist", param_hint="--state")
    try:
        Store(state).close()
    except sqlite3.DatabaseError as error:
        raise click.BadParameter(
            f"{state} is not a state file of this emulator ({error}); give a new file name",
            param_hint="--state",
        ) from error


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option(
    "--host", default="127.0.0.1", help="Address to listen on (the admin routes answer only on loopback)."
)
@click.option(
    "--port", default=0, type=click.IntRange(0, 65535), help="Port to listen on; 0 picks a free one."
)
@click.option(
    "--servers", default=0, type=click.IntRange(0), help="Create servers ns1000001.emulator.ovh ... (N)."
)
@click.option(
    "--speed",
    default=1.0,
    type=click.FloatRange(min=0.001),
    help="Divide every duration by this factor: an install takes ~600 s at 1, ~1 s at 600.",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file keeping servers, tasks and installs across restarts (default: in memory).",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder served under /images/<name>.",
)
@click.option(
    "--images-auth",
    metavar="USER:PASSWORD",
    callback=_images_auth,
    help="Require this Basic-auth credential to download from /images/.",
)
@click.option(
    "--realistic",
    is_flag=True,
    help="Behave as OVH does rather than as it documents: 404 on a task and its server for the first "
    "seconds of a reinstall, elapsedTime negative across reboots, 60 requests a minute per consumer key.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(0),
    help="Requests per emulated minute per consumer key, answered 429 beyond (0: none) [default: 60 with "
    "--realistic, else 0].",
)
@click.option(
    "--not-found-seconds",
    type=click.FloatRange(min=0),
    help="Emulated seconds after a reinstall during which its task and server answer 404 [default: 30 with "
    "--realistic, else 0].",
)
@click.option(
    "--purge-tasks-after",
    type=click.FloatRange(min=0),
    help="Emulated seconds after a task ends before it is purged (404, no longer listed) [default: never].",
)
@click.option("--application-key", default=DEFAULT_APPLICATION_KEY, help="Application key accepted.")
@click.option("--application-secret", default=DEFAULT_APPLICATION_SECRET, help="Application secret accepted.")
@click.option("--consumer-key", default=DEFAULT_CONSUMER_KEY, help="Consumer key accepted.")
def main(
    host: str,
    port: int,
    servers: int,
    speed: float,
    state: Path | None,
    images: Path | None,
    images_auth: tuple[str, str] | None,
    realistic: bool,
    rate_limit: int | None,
    not_found_seconds: float | None,
    purge_tasks_after: float | None,
    application_key: str,
    application_secret: str,
    consumer_key: str,
) -> None:
    """Run a local emulator of OVH's API for dedicated-server reinstalls (Bring Your Own Image).

    The first line printed is `OVH emulator listening on http://HOST:PORT/1.0`; then one line per request.
    """
    # Long only by its parameters: click passes one per command-line option.
    if state is not None:
        _check_state_file(state)
    config = EmulatorConfig(
        host=host,
        port=port,
        servers=servers,
        speed=speed,
        state=state.resolve() if state is not None else None,
        images=images.resolve() if images is not None else None,
        images_auth=images_auth,
        credentials=Credentials(application_key, application_secret, consumer_key),
        realistic=realistic,
        rate_limit=rate_limit,
        not_found_seconds=not_found_seconds,
        purge_tasks_after=purge_tasks_after,
    )
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Scripts read the first line as soon as it is printed, even through a pipe.
        sys.stdout.reconfigure(line_buffering=True)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logger = logging.getLogger("ovh_emulator")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def announce(url: str) -> None:
        click.echo(f"OVH emulator listening on {url}")
        sys.stdout.flush()

    try:
        asyncio.run(serve(config, announce=announce))
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
