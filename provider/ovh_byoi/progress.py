"""What `pulumi up` shows of a dynamic provider while it works: lines on stderr, prefixed with the server."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from .redaction import redact

if TYPE_CHECKING:
    from .ovh_api import InstallStatus

__all__ = ["Progress"]


class Progress:
    """What `pulumi up` shows of a dynamic provider: lines on stderr, prefixed with the server."""

    def __init__(self, service_name: str, write: Callable[[str], None] | None = None) -> None:
        self.service_name = service_name
        self._write = write or _write_stderr
        self._last_step: tuple[int, str, str] | None = None
        # Values of the install at hand that no line may show (header values): set by whoever knows them.
        self.secrets: tuple[str, ...] = ()

    def say(self, text: str) -> None:
        self._write(redact(f"[{self.service_name}] {text}", self.secrets))

    def show(self, status: InstallStatus) -> None:
        """One line per change of OVH's install step (`5/21 Downloading OS image`)."""
        current = status.current
        if current is None:
            return
        position, step = current
        key = (position, step.comment, step.status)
        if key == self._last_step:
            return
        self._last_step = key
        line = f"{position}/{len(status.progress)} {step.comment}"
        if step.status == "error":
            line += f": failed: {step.error or 'no detail'}"
        self.say(line)


def _write_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
