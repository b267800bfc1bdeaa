"""`ovh-byoi status`: a server's operating system, its current or last reinstall, and the install's steps."""

from __future__ import annotations

import click
from rich.markup import escape

from ..errors import TaskFailedError
from .app import STEP_MARKS, endpoint_option, main, out

__all__ = ["status"]


@main.command()
@click.argument("service")
@endpoint_option
def status(service: str, endpoint: str | None) -> None:
    """Show SERVICE's operating system, its current or last reinstall, and the install's progress."""
    from ..installing import Session
    from ..ovh_api import OvhSettings

    session = Session.open(OvhSettings(endpoint=endpoint), service, timeout_minutes=5)
    server = session.call("read the server", session.api.server)
    ids = session.reinstall_task_ids()
    task = session.task(max(ids)) if ids else None
    steps = session.call("read the install steps", session.api.install_status)
    out.print(f"[bold]{escape(service)}[/]")
    out.print(f"  os: {escape(str(server.os))}   state: {escape(str(server.state))}")
    if task is None:
        out.print("  reinstall: none on record")
    else:
        when = f"started {task.start_date}" + (f", ended {task.done_date}" if task.done_date else "")
        verb = "running" if task.running else task.status
        out.print(f"  reinstall: OVH task {task.task_id}, {escape(verb)} ({escape(when)})")
    if steps is not None and steps.progress:
        current = steps.current
        total = len(steps.progress)
        where = f"step {current[0]}/{total} {current[1].comment}" if current else f"all {total} steps done"
        out.print(
            f"  install: {escape(where)}, elapsed {steps.elapsed_time // 60}m{steps.elapsed_time % 60:02d}s"
        )
        for position, step in enumerate(steps.progress, start=1):
            mark = STEP_MARKS.get(step.status, "[dim]·[/]")
            detail = f": {escape(step.error)}" if step.error else ""
            out.print(f"    {mark} {position:>2}/{total} {escape(step.comment)}{detail}")
    if task is not None and task.failed:
        failed_step = steps.failed_step if steps is not None else None
        reasons = [
            text for text in (failed_step.error if failed_step else None, task.comment, task.note) if text
        ]
        failure = TaskFailedError(service, task.task_id, task.status, reasons)
        out.print(escape("  " + str(failure).replace("\n", "\n  ")))
