"""Crashes: a provider process killed while it waits, an OVH API that restarts or goes away mid-install.

A killed `pulumi up` (a second Ctrl-C, a dead CI runner) leaves its create pending: the create never answered,
so the state holds no id for it. `pulumi refresh` has nothing to read for a pending create and drops it (or,
for an interrupted replacement, reads the old resource); the next `pulumi up` creates again with the same
inputs. That create must find the install the killed run started, finished or still running, and never start
another.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.retrying import RetryPolicy
from ovh_emulator.testing import START_TIMEOUT_SECONDS, RunningEmulator
from testkit.provider_process import ProviderCallError, ProviderProcess

from .ledger import Ledger
from .support import REINSTALL, create, install_status, start_provider, wait_until

IMAGE_DOWNLOAD = "GET /images/{name}"
TASK = "GET /1.0/dedicated/server/{serviceName}/task/{taskId}"
# What the next run says when it finds the install an interrupted run started (its answer recorded or not).
RESUMED = "following it instead of reinstalling again"
# How long an outage the provider waits out before reporting it, in OVH seconds.
OUTAGE_RIDDEN_OUT = RetryPolicy.give_up_after

Inputs = Callable[..., dict[str, Any]]
Processes = Callable[..., ProviderProcess]


@pytest.fixture
def processes(ovh: RunningEmulator, provider_env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    """Starts configured provider processes (each a run of `pulumi up`); stops those alive at the end."""
    started: list[ProviderProcess] = []

    def start(**env: str) -> ProviderProcess:
        process = start_provider(ovh, {**provider_env, **env}, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


class Background:
    """A provider call running in a thread, as the engine's registration thread runs it."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.error: BaseException | None = None
        self.result: Any = None

        def run() -> None:
            try:
                self.result = call()
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the call never ended"


def running_install(ovh: RunningEmulator, server: str) -> dict[str, Any] | None:
    history = ovh.server(server)["installs"]
    return history[-1] if history and history[-1]["status"] == "doing" else None


def test_a_run_killed_while_waiting_is_followed_not_repeated_by_the_next_run(
    ovh: RunningEmulator,
    provider: ProviderProcess,
    processes: Processes,
    new_server: Callable[[], str],
    image_inputs: Inputs,
    inject: Callable[[dict[str, Any]], None],
    ledger: Ledger,
) -> None:
    server = new_server()
    inputs = image_inputs(server, preflight="off")
    # A held download keeps the install running until the next run has found it.
    inject({"rules": [{"route": IMAGE_DOWNLOAD, "hold": True, "times": 1}]})
    killed_run = processes()
    checked = killed_run.check({}, inputs).inputs

    waiting = Background(lambda: killed_run.create(checked))
    ovh.wait_until_held(1)
    install = running_install(ovh, server)
    assert install is not None
    killed_run.kill()
    ledger.crashed("provider")
    waiting.join()
    assert isinstance(waiting.error, ProviderCallError), "the killed run's create never answered"

    lines_before = len(provider.lines)
    # The next `pulumi up`: another provider process on the same machine.
    next_run = Background(lambda: create(provider, inputs))
    wait_until(
        lambda: RESUMED in "\n".join(line.text for line in provider.lines[lines_before:]), what="resumed"
    )
    assert install_status(ovh, server) == "doing", "the install still runs when the next run finds it"
    ovh.release()
    next_run.join()
    assert next_run.error is None, next_run.error
    created = next_run.result

    account = ledger.account(ovh, server, intended=1)
    assert account.duplicates == 0 and account.lost == 0, account
    assert created.outputs["task_id"] == install["taskId"]
    assert RESUMED in "\n".join(line.text for line in provider.lines[lines_before:])


def test_a_run_killed_after_the_install_ended_is_not_repeated(
    ovh: RunningEmulator,
    provider: ProviderProcess,
    processes: Processes,
    new_server: Callable[[], str],
    image_inputs: Inputs,
    inject: Callable[[dict[str, Any]], None],
    ledger: Ledger,
) -> None:
    server = new_server()
    inputs = image_inputs(server, preflight="off")
    # The run is killed while OVH holds the answer to its first look at the task, until the install ended.
    killed_run = processes()
    checked = killed_run.check({}, inputs).inputs
    inject({"rules": [{"route": TASK, "serviceName": server, "hold": True, "times": 1}]})
    waiting = Background(lambda: killed_run.create(checked))
    ovh.wait_until_held(1)
    wait_until(lambda: install_status(ovh, server) == "done", what="the install ends")
    killed_run.kill()
    ledger.crashed("provider")
    waiting.join()
    ovh.release()
    assert isinstance(waiting.error, ProviderCallError)

    created = create(provider, inputs)

    account = ledger.account(ovh, server, intended=1)
    assert account.duplicates == 0 and account.lost == 0, account
    assert created.outputs["task_id"] == account.history[0]["taskId"]


def test_a_run_killed_while_ovh_accepts_the_reinstall_is_not_repeated(
    ovh: RunningEmulator,
    provider: ProviderProcess,
    processes: Processes,
    new_server: Callable[[], str],
    image_inputs: Inputs,
    inject: Callable[[dict[str, Any]], None],
    ledger: Ledger,
) -> None:
    server = new_server()
    inputs = image_inputs(server, preflight="off")
    killed_run = processes()
    checked = killed_run.check({}, inputs).inputs
    # OVH holds the reinstall request; the run dies before the answer comes.
    inject({"rules": [{"route": REINSTALL, "serviceName": server, "hold": True, "times": 1}]})
    waiting = Background(lambda: killed_run.create(checked))
    ovh.wait_until_held(1)
    killed_run.kill()
    ledger.crashed("provider")
    waiting.join()
    ovh.release()
    wait_until(lambda: install_status(ovh, server), what="OVH processes the request of the killed run")

    created = create(provider, inputs)

    account = ledger.account(ovh, server, intended=1)
    assert account.duplicates == 0 and account.lost == 0, account
    assert created.outputs["task_id"] == account.history[0]["taskId"]


def test_an_interrupted_replacement_then_refresh_then_up_reinstalls_once(
    ovh: RunningEmulator,
    provider: ProviderProcess,
    processes: Processes,
    new_server: Callable[[], str],
    image_inputs: Inputs,
    inject: Callable[[dict[str, Any]], None],
    ledger: Ledger,
) -> None:
    server = new_server()
    old_inputs = image_inputs(server, "small.qcow2", preflight="off")
    new_inputs = image_inputs(server, "small.raw", preflight="off")
    deployed = create(provider, old_inputs)
    # `pulumi up` of the new image: the replacement's create is killed mid-install.
    inject({"rules": [{"route": IMAGE_DOWNLOAD, "hold": True, "times": 1}]})
    killed_run = processes()
    checked = killed_run.check(deployed.outputs, new_inputs).inputs
    waiting = Background(lambda: killed_run.create(checked))
    ovh.wait_until_held(1)
    killed_run.kill()
    ledger.crashed("provider")
    waiting.join()
    requests = ovh.stats()[REINSTALL]
    next_run, lines_before = provider, len(provider.lines)

    # `pulumi refresh`: the old resource is read; the pending create is dropped.
    refreshed = next_run.read(deployed.id, deployed.outputs)
    assert refreshed.id == deployed.id
    assert ovh.stats()[REINSTALL] == requests, "refresh sends nothing"
    # `pulumi up`: the replacement again, from the refreshed state.
    news = next_run.check(refreshed.outputs, new_inputs).inputs
    diff = next_run.diff(deployed.id, refreshed.outputs, news)
    assert diff.replaces
    ovh.release()
    created = next_run.create(news)
    next_run.delete(deployed.id, refreshed.outputs)

    account = ledger.account(ovh, server, intended=2)
    assert account.duplicates == 0 and account.lost == 0, account
    assert [entry["imageURL"] for entry in account.history] == [
        old_inputs["image_url"],
        new_inputs["image_url"],
    ]
    assert created.outputs["task_id"] == account.history[1]["taskId"]
    assert RESUMED in "\n".join(line.text for line in next_run.lines[lines_before:])


def test_an_emulator_restart_mid_install_is_ridden_out_and_said(
    ovh: RunningEmulator,
    processes: Processes,
    new_server: Callable[[], str],
    image_inputs: Inputs,
    inject: Callable[[dict[str, Any]], None],
    ledger: Ledger,
) -> None:
    server = new_server()
    inputs = image_inputs(server, preflight="off")
    # The outage lasts as long as this machine takes to start an emulator: at this pace the ten OVH minutes
    # the provider rides out are twice as long as `start_emulator` itself waits for one.
    patient = processes(OVH_BYOI_TIME_SCALE=str(OUTAGE_RIDDEN_OUT / (2 * START_TIMEOUT_SECONDS)))
    checked = patient.check({}, inputs).inputs
    # The download is held: the install runs when the emulator crashes (a restarted emulator has no faults).
    inject({"rules": [{"route": IMAGE_DOWNLOAD, "hold": True, "times": 1}]})
    waiting = Background(lambda: patient.create(checked))
    ovh.wait_until_held(1)
    install = running_install(ovh, server)
    assert install is not None
    lines_before = len(patient.lines)

    ovh.kill()
    ledger.crashed("emulator")
    wait_until(
        lambda: (
            "OVH's API could not be reached while" in "\n".join(p.text for p in patient.lines[lines_before:])
        ),
        timeout=60,
        what="the provider meets the outage",
    )
    ovh.restart()
    waiting.join()

    assert waiting.error is None, waiting.error
    account = ledger.account(ovh, server, intended=1)
    assert account.duplicates == 0 and account.lost == 0, account
    assert waiting.result.outputs["task_id"] == install["taskId"]


def test_an_api_gone_longer_than_the_provider_waits_is_reported_and_the_next_run_resumes(
    ovh: RunningEmulator,
    provider: ProviderProcess,
    new_server: Callable[[], str],
    image_inputs: Inputs,
    inject: Callable[[dict[str, Any]], None],
    ledger: Ledger,
) -> None:
    server = new_server()
    inputs = image_inputs(server, preflight="off")
    checked = provider.check({}, inputs).inputs
    # The download is held: the install runs when the emulator dies (a restarted emulator has no faults).
    inject({"rules": [{"route": IMAGE_DOWNLOAD, "hold": True, "times": 1}]})
    waiting = Background(lambda: provider.create(checked))
    ovh.wait_until_held(1)
    install = running_install(ovh, server)
    assert install is not None

    ovh.kill()
    ledger.crashed("emulator")
    waiting.join()
    ovh.restart()

    assert isinstance(waiting.error, ProviderCallError)
    message = waiting.error.reason
    assert server in message
    assert str(install["taskId"]) in message
    assert "could not be reached" in message
    assert "Fix: " in message
    created = create(provider, inputs)
    account = ledger.account(ovh, server, intended=1)
    assert account.duplicates == 0 and account.lost == 0, account
    assert created.outputs["task_id"] == install["taskId"]


def test_a_run_killed_before_ovh_got_its_request_never_claims_a_later_reinstall(
    ovh: RunningEmulator,
    provider: ProviderProcess,
    processes: Processes,
    journal_path: Path,
    new_server: Callable[[], str],
    image_inputs: Inputs,
    inject: Callable[[dict[str, Any]], None],
    ledger: Ledger,
) -> None:
    server = new_server()
    inputs = image_inputs(server, preflight="off")
    killed_run = processes()
    checked = killed_run.check({}, inputs).inputs
    # The request never reaches OVH: the run dies while it is on its way.
    inject({"rules": [{"route": REINSTALL, "serviceName": server, "hold": True, "drop": True, "times": 1}]})
    waiting = Background(lambda: killed_run.create(checked))
    ovh.wait_until_held(1)
    killed_run.kill()
    ledger.crashed("provider")
    waiting.join()
    ovh.release()
    # An hour later, someone has reinstalled the server from OVH's control panel.
    with contextlib.closing(sqlite3.connect(journal_path)) as journal, journal:
        journal.execute("UPDATE requests SET asked_at = asked_at - 3600")
    other = ovh.reinstall_out_of_band(server)
    ovh.wait_for_task(server, other["taskId"])

    created = create(provider, inputs)

    account = ledger.account(ovh, server, intended=1)
    assert account.duplicates == 0 and account.lost == 0, account
    assert created.outputs["task_id"] == account.history[0]["taskId"] != other["taskId"]
