"""What the reliability suite observed, and the report written from it.

Counts come from the emulator's own records (install history, how often each fault fired) and from what the
tests really scanned or generated; nothing here is a constant.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovh_emulator.testing import RunningEmulator

REPORT_ENV = "OVH_BYOI_RELIABILITY_REPORT"


@dataclass(frozen=True)
class InstallAccount:
    """One server's reinstalls compared with what the test meant to happen."""

    service_name: str
    intended: int
    history: list[dict[str, Any]]
    duplicates: int
    lost: int

    def __str__(self) -> str:
        entries = ", ".join(f"{entry['taskId']} {entry['status']}" for entry in self.history) or "none"
        return (
            f"{self.service_name}: {self.intended} install(s) intended, history [{entries}], "
            f"{self.duplicates} duplicate(s), {self.lost} lost"
        )


@dataclass
class Ledger:
    faults_injected: int = 0
    installs_attempted: int = 0
    duplicate_reinstalls: int = 0
    installs_lost: int = 0
    inputs_fuzzed: int = 0
    bodies_fuzzed: int = 0
    secrets_found: int = 0
    secret_checks: int = 0
    provider_kills: int = 0
    emulator_restarts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, init=False)

    def account(
        self, emulator: RunningEmulator, service_name: str, intended: int, *, must_end: bool = True
    ) -> InstallAccount:
        """Compares the server's reinstalls (those asked through the API) with the `intended` count.

        A duplicate is a reinstall beyond the intended ones; a lost install is an intended one that did not
        end `done` (or, with `must_end=False`, that never started).
        """
        history = [entry for entry in emulator.server(service_name)["installs"] if not entry["outOfBand"]]
        duplicates = max(0, len(history) - intended)
        if must_end:
            lost = max(0, intended - sum(1 for entry in history if entry["status"] == "done"))
        else:
            lost = max(0, intended - len(history))
        with self._lock:
            self.installs_attempted += intended
            self.duplicate_reinstalls += duplicates
            self.installs_lost += lost
        return InstallAccount(service_name, intended, history, duplicates, lost)

    def scan(self, places: Mapping[str, str | bytes], secrets: Iterable[str]) -> list[str]:
        """Where any of `secrets` appears among `places` (name -> text); every look is counted."""
        found: list[str] = []
        wanted = [secret for secret in secrets if secret]
        for place, text in places.items():
            haystack = text if isinstance(text, str) else text.decode("utf-8", "replace")
            found.extend(f"{secret!r} in {place}" for secret in wanted if secret in haystack)
        with self._lock:
            self.secret_checks += len(wanted) * len(places)
            self.secrets_found += len(found)
        return found

    def crashed(self, what: str) -> None:
        """A process killed or restarted on purpose: `"provider"` or `"emulator"`; counted as a fault."""
        with self._lock:
            self.faults_injected += 1
            if what == "provider":
                self.provider_kills += 1
            else:
                self.emulator_restarts += 1

    def fuzzed(self, *, inputs: int = 0, bodies: int = 0) -> None:
        with self._lock:
            self.inputs_fuzzed += inputs
            self.bodies_fuzzed += bodies

    def counts(self) -> dict[str, int]:
        """The counts alone, to send from a worker of a parallel run to the one that writes the report."""
        with self._lock:
            return {each.name: getattr(self, each.name) for each in dataclasses.fields(self) if each.init}

    def add(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)

    def rows(self) -> list[tuple[str, int, str]]:
        return [
            (
                "Faults injected",
                self.faults_injected,
                "HTTP 500/503/429, latency, dropped connections and "
                "lost answers that the emulator really applied, plus provider kills and emulator restarts",
            ),
            ("Installs attempted", self.installs_attempted, "reinstalls the tests meant to happen"),
            (
                "Duplicate reinstalls (must be 0)",
                self.duplicate_reinstalls,
                "reinstalls in the emulator's history beyond the intended ones",
            ),
            (
                "Installs lost (must be 0)",
                self.installs_lost,
                "intended installs that never ended done (or never started, for deadline tests)",
            ),
            ("Inputs fuzzed", self.inputs_fuzzed, "generated input sets given to check"),
            (
                "Emulator requests fuzzed",
                self.bodies_fuzzed,
                "generated bodies and query strings sent to the emulator's API and admin routes",
            ),
            (
                "Secrets found (must be 0)",
                self.secrets_found,
                f"out of {self.secret_checks} looks for a secret in a place it must never be",
            ),
        ]


def render_report(ledger: Ledger, *, tests: int) -> str:
    lines = [
        "# Reliability",
        "",
        "Written by the last test run that ran all of `tests/reliability` and passed (here its",
        f"{tests} tests, against the emulator; `scripts/test`, which CI runs, is such a run), from what the",
        "tests observed: the emulator's install history and fault counters, the inputs generated, the places",
        "scanned for secrets. Some counts vary a little from run to run (how often a retried call met a",
        "fault); the rows that must be 0 do not.",
        "",
        "| What | Count | Counted from |",
        "| --- | ---: | --- |",
    ]
    lines.extend(f"| {what} | {count} | {source} |" for what, count, source in ledger.rows())
    lines.extend(
        [
            "",
            f"Of the faults: {ledger.provider_kills} provider processes killed mid-install and "
            f"{ledger.emulator_restarts} emulator restarts mid-install.",
            "",
        ]
    )
    return "\n".join(lines)


def write_report(ledger: Ledger, target: Path, *, tests: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(ledger, tests=tests), encoding="utf-8")
