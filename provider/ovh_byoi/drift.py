"""Drift: why a server no longer runs what the stack recorded, as a refresh finds it. Reads only."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .installing import Session
    from .ovh_api import Server

__all__ = ["find_drift"]


def find_drift(session: Session, server: Server, *, task_id: int | None, expected_os: str) -> str:
    """Why the server no longer runs what the stack recorded, or "" when it still does. Reads only."""
    reasons: list[str] = []
    newer = [other for other in session.reinstall_task_ids() if task_id is None or other > task_id]
    if newer:
        other = session.task(max(newer))
        verb = "is being reinstalled" if other.running else "was reinstalled"
        reasons.append(
            f"{session.service_name} {verb} outside this stack (OVH task {other.task_id}, {other.status}, "
            f"started {other.start_date})"
        )
    if server.os != expected_os:
        reasons.append(f"OVH reports os {server.os!r} where this stack installed {expected_os!r}")
    if server.state not in (None, "ok"):
        reasons.append(f"OVH reports the server's state as {server.state!r}")
    return "; ".join(reasons)
