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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ovh_byoi.retrying import RetryPolicy
from ovh_emulator.testing import START_TIMEOUT_SECONDS, RunningEmulator
from testkit.polling import wait_until
from testkit.provider_process import ProviderCallError, ProviderProcess

from .ledger import Ledger
from .support import REINSTALL, Suite, create, install_status, start_provider

IMAGE_DOWNLOAD = "GET /images/{name}"
TASK = "GET /1.0/dedicated/server/{serviceName}/task/{taskId}"
# What the next run says when it finds the install an interrupted run started (its answer recorded or not).
RESUMED = "following it instead of reinstalling again"
# How long an outage the provider waits out before reporting it, in OVH seconds.
OUTAGE_RIDDEN_OUT = RetryPolicy.give_up_after

Inputs = Callable[..., dict[str, Any]]
Processes = Callable[..., ProviderProcess]


@pytest.fixture
def processes(ovh_api: RunningEmulator, provider_env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    """Starts configured provider processes (each a run of `pulumi up`); stops those alive at the end."""
    started: list[ProviderProcess] = []

    def start(**env: str) -> ProviderProcess:
        process = start_provider(ovh_api, {**provider_env, **env}, tmp_path)
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


def running_install(ovh_api: RunningEmulator, server: str) -> dict[str, Any] | None:
    history = ovh_api.server(server)["installs"]
    return history[-1] if history and history[-1]["status"] == "doing" else None


@dataclass(frozen=True)
class Scene(Suite):
    """A crash test's world: the suite's (its provider process is the run after the crash), runs of the test's
    own to kill, and a server of its own."""

    processes: Processes
    server: str

    def inputs(self, name: str = "small.qcow2") -> dict[str, Any]:
        return self.image_inputs(self.server, name, preflight="off")

    def create_held(self, run: ProviderProcess, checked: dict[str, Any], rule: dict[str, Any]) -> Background:
        """`run`'s create, started while OVH holds the first call matching `rule`; returns once it is held."""
        self.inject({"rules": [{**rule, "hold": True, "times": 1}]})
        waiting = Background(lambda: run.create(checked))
        self.ovh_api.wait_until_held(1)
        return waiting

    def kill(self, run: ProviderProcess, waiting: Background) -> None:
        """Kills `run` (a second Ctrl-C, a dead CI runner) while its create waits."""
        run.kill()
        self.ledger.crashed("provider")
        waiting.join()


@pytest.fixture
def scene(
    ovh_api: RunningEmulator,
    provider: ProviderProcess,
    processes: Processes,
    new_server: Callable[[], str],
    image_inputs: Inputs,
    inject: Callable[[dict[str, Any]], None],
    ledger: Ledger,
) -> Scene:
    return Scene(ovh_api, provider, new_server, image_inputs, inject, ledger, processes, new_server())


def test_a_run_killed_while_waiting_is_followed_not_repeated_by_the_next_run(scene: Scene) -> None:
    inputs = scene.inputs()
    killed_run = scene.processes()
    checked = killed_run.check({}, inputs).inputs
    # A held download keeps the install running until the next run has found it.
    waiting = scene.create_held(killed_run, checked, {"route": IMAGE_DOWNLOAD})
    install = running_install(scene.ovh_api, scene.server)
    assert install is not None
    scene.kill(killed_run, waiting)
    assert isinstance(waiting.error, ProviderCallError), "the killed run's create never answered"

    provider, lines_before = scene.provider, len(scene.provider.lines)
    # The next `pulumi up`: another provider process on the same machine.
    next_run = Background(lambda: create(provider, inputs))
    wait_until(lambda: RESUMED in scene.printed_since(provider, lines_before), what="resumed")
    assert install_status(scene.ovh_api, scene.server) == "doing", "the install still runs when found"
    scene.ovh_api.release()
    next_run.join()
    assert next_run.error is None, next_run.error

    scene.assert_installed_once(scene.server)
    assert next_run.result.outputs["task_id"] == install["taskId"]
    assert RESUMED in scene.printed_since(provider, lines_before)


def test_a_run_killed_after_the_install_ended_is_not_repeated(scene: Scene) -> None:
    inputs = scene.inputs()
    killed_run = scene.processes()
    checked = killed_run.check({}, inputs).inputs
    # The run is killed while OVH holds the answer to its first look at the task, until the install ended.
    waiting = scene.create_held(killed_run, checked, {"route": TASK, "serviceName": scene.server})
    wait_until(lambda: install_status(scene.ovh_api, scene.server) == "done", what="the install ends")
    scene.kill(killed_run, waiting)
    scene.ovh_api.release()
    assert isinstance(waiting.error, ProviderCallError)

    created = create(scene.provider, inputs)

    account = scene.assert_installed_once(scene.server)
    assert created.outputs["task_id"] == account.history[0]["taskId"]


def test_a_run_killed_while_ovh_accepts_the_reinstall_is_not_repeated(scene: Scene) -> None:
    inputs = scene.inputs()
    killed_run = scene.processes()
    checked = killed_run.check({}, inputs).inputs
    # OVH holds the reinstall request; the run dies before the answer comes.
    waiting = scene.create_held(killed_run, checked, {"route": REINSTALL, "serviceName": scene.server})
    scene.kill(killed_run, waiting)
    scene.ovh_api.release()
    wait_until(
        lambda: install_status(scene.ovh_api, scene.server),
        what="OVH processes the request of the killed run",
    )

    created = create(scene.provider, inputs)

    account = scene.assert_installed_once(scene.server)
    assert created.outputs["task_id"] == account.history[0]["taskId"]


def test_an_interrupted_replacement_then_refresh_then_up_reinstalls_once(scene: Scene) -> None:
    ovh_api, next_run = scene.ovh_api, scene.provider
    old_inputs, new_inputs = scene.inputs("small.qcow2"), scene.inputs("small.raw")
    deployed = create(next_run, old_inputs)
    # `pulumi up` of the new image: the replacement's create is killed mid-install.
    killed_run = scene.processes()
    checked = killed_run.check(deployed.outputs, new_inputs).inputs
    waiting = scene.create_held(killed_run, checked, {"route": IMAGE_DOWNLOAD})
    scene.kill(killed_run, waiting)
    requests = ovh_api.stats()[REINSTALL]
    lines_before = len(next_run.lines)

    # `pulumi refresh`: the old resource is read; the pending create is dropped.
    refreshed = next_run.read(deployed.id, deployed.outputs)
    assert refreshed.id == deployed.id
    assert ovh_api.stats()[REINSTALL] == requests, "refresh sends nothing"
    # `pulumi up`: the replacement again, from the refreshed state.
    news = next_run.check(refreshed.outputs, new_inputs).inputs
    diff = next_run.diff(deployed.id, refreshed.outputs, news)
    assert diff.replaces
    ovh_api.release()
    created = next_run.create(news)
    next_run.delete(deployed.id, refreshed.outputs)

    account = scene.assert_installed_once(scene.server, intended=2)
    assert [entry["imageURL"] for entry in account.history] == [
        old_inputs["image_url"],
        new_inputs["image_url"],
    ]
    assert created.outputs["task_id"] == account.history[1]["taskId"]
    assert RESUMED in scene.printed_since(next_run, lines_before)


def test_an_emulator_restart_mid_install_is_ridden_out_and_said(scene: Scene) -> None:
    ovh_api = scene.ovh_api
    # The outage lasts as long as this machine takes to start an emulator: at this pace the ten OVH minutes
    # the provider rides out are twice as long as `start_emulator` itself waits for one.
    patient = scene.processes(OVH_BYOI_TIME_SCALE=str(OUTAGE_RIDDEN_OUT / (2 * START_TIMEOUT_SECONDS)))
    checked = patient.check({}, scene.inputs()).inputs
    # The download is held: the install runs when the emulator crashes (a restarted emulator has no faults).
    waiting = scene.create_held(patient, checked, {"route": IMAGE_DOWNLOAD})
    install = running_install(ovh_api, scene.server)
    assert install is not None
    lines_before = len(patient.lines)

    ovh_api.kill()
    scene.ledger.crashed("emulator")
    wait_until(
        lambda: "OVH's API could not be reached while" in scene.printed_since(patient, lines_before),
        timeout=60,
        what="the provider meets the outage",
    )
    ovh_api.restart()
    waiting.join()

    assert waiting.error is None, waiting.error
    scene.assert_installed_once(scene.server)
    assert waiting.result.outputs["task_id"] == install["taskId"]


def test_an_api_gone_longer_than_the_provider_waits_is_reported_and_the_next_run_resumes(
    scene: Scene,
) -> None:
    ovh_api, provider, server = scene.ovh_api, scene.provider, scene.server
    inputs = scene.inputs()
    checked = provider.check({}, inputs).inputs
    # The download is held: the install runs when the emulator dies (a restarted emulator has no faults).
    waiting = scene.create_held(provider, checked, {"route": IMAGE_DOWNLOAD})
    install = running_install(ovh_api, server)
    assert install is not None

    ovh_api.kill()
    scene.ledger.crashed("emulator")
    waiting.join()
    ovh_api.restart()

    assert isinstance(waiting.error, ProviderCallError)
    message = waiting.error.reason
    assert server in message
    assert str(install["taskId"]) in message
    assert "could not be reached" in message
    assert "Fix: " in message
    created = create(provider, inputs)
    scene.assert_installed_once(scene.server)
    assert created.outputs["task_id"] == install["taskId"]


def test_a_run_killed_before_ovh_got_its_request_never_claims_a_later_reinstall(
    scene: Scene, journal_path: Path
) -> None:
    ovh_api, server = scene.ovh_api, scene.server
    inputs = scene.inputs()
    killed_run = scene.processes()
    checked = killed_run.check({}, inputs).inputs
    # The request never reaches OVH: the run dies while it is on its way.
    waiting = scene.create_held(
        killed_run, checked, {"route": REINSTALL, "serviceName": server, "drop": True}
    )
    scene.kill(killed_run, waiting)
    ovh_api.release()
    # An hour later, someone has reinstalled the server from OVH's control panel.
    with contextlib.closing(sqlite3.connect(journal_path)) as journal, journal:
        journal.execute("UPDATE requests SET asked_at = asked_at - 3600")
    other = ovh_api.reinstall_out_of_band(server)
    ovh_api.wait_for_task(server, other["taskId"])

    created = create(scene.provider, inputs)

    account = scene.assert_installed_once(scene.server)
    assert created.outputs["task_id"] == account.history[0]["taskId"] != other["taskId"]
