"""Two stacks, or two resources of one stack, pointing at the same server: their reinstalls never overlap.

OVH refuses a reinstall while one runs; the provider must wait for the other one to end and then install
its own, never take the other one's task for its own, and never lose its install.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ovh_emulator.testing import RunningEmulator
from testkit.polling import wait_until
from testkit.provider_process import CreateResult, ProviderProcess
from testkit.pulumi_cli import PulumiStack

from .ledger import Ledger
from .support import REINSTALL, Suite, start_provider

TASK_LIST = "GET /1.0/dedicated/server/{serviceName}/task"
IMAGE_DOWNLOAD = "GET /images/{name}"
Inputs = Callable[..., dict[str, Any]]


@pytest.fixture
def other_stack(
    ovh_api: RunningEmulator, provider_env: dict[str, str], tmp_path: Path
) -> Iterator[ProviderProcess]:
    """The provider process of another stack's `pulumi up`, on the same machine."""
    process = start_provider(ovh_api, provider_env, tmp_path)
    yield process
    process.stop()


def in_parallel(*calls: Callable[[], CreateResult]) -> list[CreateResult | BaseException]:
    results: list[CreateResult | BaseException] = [RuntimeError("never ran")] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def assert_one_after_the_other(account_history: list[dict[str, Any]], results: list[CreateResult]) -> None:
    """Each stack reports its own install, and the second one began once the first one had ended."""
    assert sorted(result.outputs["task_id"] for result in results) == [e["taskId"] for e in account_history]
    first, second = account_history
    assert second["startDate"] >= first["doneDate"]
    by_task = {result.outputs["task_id"]: result for result in results}
    for entry in account_history:
        assert by_task[entry["taskId"]].outputs["image_url"] == entry["imageURL"], "its own image"


@pytest.mark.parametrize("busy_answer", ["conflict", "taskAlreadyExists"])
def test_two_stacks_installing_one_server_at_once_take_turns(
    busy_answer: str,
    other_stack: ProviderProcess,
    suite: Suite,
) -> None:
    server = suite.new_server()
    ours = suite.provider.check({}, suite.image_inputs(server, "small.qcow2", preflight="off")).inputs
    theirs = other_stack.check({}, suite.image_inputs(server, "small.raw", preflight="off")).inputs
    # Both stacks look at the server's tasks and see no reinstall running: both listings are held until
    # both have arrived. The first install's download is held until the other stack has been refused.
    suite.inject(
        {
            "busyAnswer": busy_answer,
            "rules": [
                {"route": TASK_LIST, "serviceName": server, "hold": True, "times": 2},
                {"route": IMAGE_DOWNLOAD, "hold": True, "times": 1},
            ],
        }
    )
    requests = suite.ovh_api.stats().get(REINSTALL, 0)
    lines_before = {id(process): len(process.lines) for process in (suite.provider, other_stack)}

    def refused_once() -> bool:
        printed = [
            line.text for p in (suite.provider, other_stack) for line in p.lines[lines_before[id(p)] :]
        ]
        return any("another operation holds the server" in text for text in printed)

    def release_in_turn() -> None:
        suite.ovh_api.wait_until_held(2, rule=0)
        suite.ovh_api.release(rule=0)
        wait_until(refused_once, timeout=60, what="one stack is refused while the other one installs")
        suite.ovh_api.wait_until_held(1, rule=1)
        suite.ovh_api.release(rule=1)

    releasing = threading.Thread(target=release_in_turn, daemon=True)
    releasing.start()
    results = in_parallel(lambda: suite.provider.create(ours), lambda: other_stack.create(theirs))
    releasing.join(timeout=60)

    done = [result for result in results if isinstance(result, CreateResult)]
    assert len(done) == 2, results
    account = suite.assert_installed_once(server, 2)
    assert_one_after_the_other(account.history, done)
    assert suite.ovh_api.stats()[REINSTALL] - requests == 3, "one request refused while the other install ran"


def test_a_lost_answer_never_makes_another_stacks_reinstall_ours(
    other_stack: ProviderProcess,
    suite: Suite,
) -> None:
    server = suite.new_server()
    # This stack's request is held, then lost on the way; meanwhile the other stack's reinstall starts. When
    # this stack looks for a task its lost request may have started anyway, it finds only theirs.
    suite.inject(
        {"rules": [{"route": REINSTALL, "serviceName": server, "hold": True, "drop": True, "times": 1}]}
    )
    ours = suite.provider.check({}, suite.image_inputs(server, "small.qcow2", preflight="off")).inputs
    theirs = other_stack.check({}, suite.image_inputs(server, "small.raw", preflight="off")).inputs
    their_lines = len(other_stack.lines)

    def other_stack_while_our_request_is_held() -> CreateResult:
        suite.ovh_api.wait_until_held(1)
        creating = threading.Thread(target=lambda: results_of_theirs.append(other_stack.create(theirs)))
        creating.start()
        # Their run has recorded the task as its own (what tells it apart from ours) once it says so.
        wait_until(
            lambda: any("OVH started the reinstall" in line.text for line in other_stack.lines[their_lines:]),
            timeout=60,
            what="the other stack's reinstall starts",
        )
        suite.ovh_api.release()
        creating.join(timeout=120)
        return results_of_theirs[0]

    results_of_theirs: list[CreateResult] = []
    results = in_parallel(lambda: suite.provider.create(ours), other_stack_while_our_request_is_held)

    done = [result for result in results if isinstance(result, CreateResult)]
    assert len(done) == 2, results
    account = suite.assert_installed_once(server, 2)
    assert_one_after_the_other(account.history, done)


def test_two_resources_of_one_stack_on_one_server_take_turns(
    ovh_api: RunningEmulator,
    provider_env: dict[str, str],
    new_server: Callable[[], str],
    image_inputs: Inputs,
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    server = new_server()

    stack = PulumiStack.of_resources(tmp_path, emulator=ovh_api, env=provider_env)
    stack.declare(
        {
            "web": image_inputs(server, "small.qcow2", preflight="off"),
            "web-again": image_inputs(server, "small.raw", preflight="off", hostname="web-2"),
        }
    )
    stack.up()

    account = ledger.account(ovh_api, server, intended=2)
    assert account.duplicates == 0 and account.lost == 0, account
    first, second = account.history
    assert second["startDate"] >= first["doneDate"]
    resources = stack.resources()
    assert set(resources) == {"web", "web-again"}
    recorded = {resources[name]["outputs"]["task_id"] for name in ("web", "web-again")}
    assert recorded == {first["taskId"], second["taskId"]}
