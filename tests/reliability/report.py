"""When `docs/reliability.md` is written: at the end of every run that ran the whole reliability suite and
passed, serial or parallel.

A parallel run (pytest-xdist) spreads the suite over workers, each with a ledger of the tests it ran; each
worker hands its counts to the controller, which adds them up and writes the report. The hooks are imported
by `tests/conftest.py` (the controller of a parallel run never loads the conftest of a test folder) and by
`tests/reliability/conftest.py` (where the tests run).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from .ledger import REPORT_ENV, Ledger, write_report

LEDGER = pytest.StashKey[Ledger]()
_SUITE = Path(__file__).parent
_SUITE_ITEMS = pytest.StashKey[int]()
_SUITE_COMPLETE = pytest.StashKey[bool]()
_WORKER_OUTPUT = "reliability"
_WORKERS_LEDGER = pytest.StashKey[Ledger]()


def _in_suite(item: pytest.Item) -> bool:
    return _SUITE in Path(str(item.path)).parents


def note_collection(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Notes whether this run holds every test file of the suite (the report is written only then)."""
    ours = [item for item in items if _in_suite(item)]
    files = {Path(str(item.path)).name for item in ours}
    config.stash[_SUITE_ITEMS] = len(ours)
    config.stash[_SUITE_COMPLETE] = files == {path.name for path in _SUITE.glob("test_*.py")}


def note_deselected(items: list[pytest.Item]) -> None:
    ours = [item for item in items if _in_suite(item)]
    if ours:
        ours[0].config.stash[_SUITE_COMPLETE] = False


def _passed(session: pytest.Session, exitstatus: int) -> bool:
    return session.testsfailed == 0 and exitstatus == 0


def finish_where_tests_ran(session: pytest.Session, exitstatus: int) -> None:
    """A worker hands its counts on; a serial run writes the report itself."""
    config = session.config
    complete = config.stash.get(_SUITE_COMPLETE, False)
    ledger = config.stash.get(LEDGER, None) or Ledger()
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        tests = config.stash.get(_SUITE_ITEMS, 0)
        workeroutput[_WORKER_OUTPUT] = {"complete": complete, "tests": tests, "counts": ledger.counts()}
    elif complete and _passed(session, exitstatus):
        _write(ledger, tests=config.stash[_SUITE_ITEMS])


def add_worker_counts(node: Any) -> None:
    """On the controller of a parallel run: one worker's counts, added to the run's."""
    sent = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT)
    if sent is None:
        return
    config: pytest.Config = node.config
    config.stash.setdefault(_WORKERS_LEDGER, Ledger()).add(sent["counts"])
    # Every worker collects the whole run; any that saw the suite incomplete makes it so.
    config.stash[_SUITE_COMPLETE] = config.stash.get(_SUITE_COMPLETE, True) and sent["complete"]
    config.stash[_SUITE_ITEMS] = sent["tests"]


def finish_on_the_controller(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    ledger = config.stash.get(_WORKERS_LEDGER, None)
    if ledger is not None and config.stash.get(_SUITE_COMPLETE, False) and _passed(session, exitstatus):
        _write(ledger, tests=config.stash[_SUITE_ITEMS])


def _write(ledger: Ledger, *, tests: int) -> None:
    target = Path(os.environ.get(REPORT_ENV) or _SUITE.parents[1] / "docs" / "reliability.md")
    if ledger.installs_attempted == 0:
        # The whole suite always installs: its counts were lost on the way (a worker that sent none), and a
        # table of zeros would replace the last true one.
        print(f"reliability: no install counted, {target} left as it was", file=sys.stderr)
        return
    write_report(ledger, target, tests=tests)
