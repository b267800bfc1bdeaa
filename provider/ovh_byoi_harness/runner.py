"""Apply a Pulumi project directory with the local harness, printing progress as `pulumi up` would.

For demos and examples on machines without the Pulumi CLI:
`python -m ovh_byoi_harness.runner up PROJECT_DIR --stack demo --state state.json [-c ovh:endpoint=URL]`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import click

from .engine import ChangesNotExpectedError, EngineError, LocalEngine, RunResult
from .state import StateError

__all__ = ["LABEL", "apply_project", "main"]

LABEL = "local harness (no Pulumi CLI found)"
Operation = Literal["up", "preview", "refresh", "refresh-preview", "destroy"]


def apply_project(
    project_dir: str | Path,
    *,
    stack: str,
    state_path: str | Path,
    operation: Operation = "up",
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    expect_no_changes: bool = False,
    echo: Callable[[str], None] | None = None,
) -> RunResult:
    """Run one operation on a project directory with the local engine; every line goes to `echo` (stdout)."""
    say = echo if echo is not None else _print
    engine = LocalEngine.for_project(
        project_dir, state_path, stack=stack, config=config, env=env, progress=say
    )
    say(f"[{LABEL}] {operation} {engine.project}/{stack}: real provider processes, state in {state_path}")
    if operation == "up":
        return engine.up(expect_no_changes=expect_no_changes)
    if operation == "preview":
        return engine.preview(expect_no_changes=expect_no_changes)
    if operation == "refresh":
        return engine.refresh(expect_no_changes=expect_no_changes)
    if operation == "refresh-preview":
        return engine.refresh(preview_only=True, expect_no_changes=expect_no_changes)
    return engine.destroy()


def _print(line: str) -> None:
    print(line, flush=True)


def _parse_config(pairs: tuple[str, ...]) -> dict[str, str]:
    config: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise click.BadParameter(
                f"{pair!r}: write KEY=VALUE, e.g. ovh:endpoint=http://127.0.0.1:8080/1.0"
            )
        config[key] = value
    return config


@click.command(help=f"Apply a Pulumi project with the {LABEL}.")
@click.argument("operation", type=click.Choice(["up", "preview", "refresh", "refresh-preview", "destroy"]))
@click.argument("project_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--stack", "-s", required=True, help="Stack name: config comes from Pulumi.<stack>.yaml.")
@click.option("--state", "state_path", required=True, type=click.Path(path_type=Path), help="State file.")
@click.option("--config", "-c", "config_pairs", multiple=True, help="KEY=VALUE, overrides the stack config.")
@click.option("--expect-no-changes", is_flag=True, help="Fail when the operation finds changes.")
def main(
    operation: Operation,
    project_dir: Path,
    stack: str,
    state_path: Path,
    config_pairs: tuple[str, ...],
    expect_no_changes: bool,
) -> None:
    try:
        result = apply_project(
            project_dir,
            stack=stack,
            state_path=state_path,
            operation=operation,
            config=_parse_config(config_pairs),
            expect_no_changes=expect_no_changes,
        )
    except ChangesNotExpectedError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except (EngineError, StateError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    if not result.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
