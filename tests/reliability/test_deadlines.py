"""A reinstall task that never ends: the run fails at `timeout_minutes`, says which task runs and what to do,
and leaves the server alone (no cancel, no second reinstall), however many runs come after it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from ovh_emulator.testing import RunningEmulator
from testkit.provider_process import ProviderCallError, ProviderProcess

from .ledger import Ledger
from .support import REINSTALL, SPEED, create

CANCEL = "POST /1.0/dedicated/server/{serviceName}/task/{taskId}/cancel"
TIMEOUT_MINUTES = 20


def test_a_task_that_never_ends_fails_at_the_deadline_and_the_server_is_left_alone(
    provider: ProviderProcess,
    ovh_api: RunningEmulator,
    new_server: Callable[[], str],
    image_inputs: Callable[..., dict[str, Any]],
    inject: Callable[[dict[str, Any]], None],
    ledger: Ledger,
) -> None:
    server = new_server()
    inject({"rules": [{"task": "neverFinish", "serviceName": server, "times": 1}]})
    inputs = image_inputs(server, preflight="off", timeout_minutes=TIMEOUT_MINUTES)
    other_image = image_inputs(server, "small.raw", preflight="off", timeout_minutes=TIMEOUT_MINUTES)
    before = ovh_api.stats()
    messages: list[str] = []

    # The run, the same install again (the next `pulumi up`), and another install of the same server.
    for attempt in (inputs, inputs, other_image):
        started = time.monotonic()
        with pytest.raises(ProviderCallError) as failure:
            create(provider, attempt)
        assert time.monotonic() - started >= TIMEOUT_MINUTES * 60 / SPEED, "not before the deadline"
        messages.append(failure.value.reason)

    account = ledger.account(ovh_api, server, intended=1, must_end=False)
    assert account.duplicates == 0 and account.lost == 0, account
    [install] = account.history
    assert install["status"] == "doing", "OVH goes on installing"
    for message in messages:
        assert server in message
        assert f"OVH task {install['taskId']}" in message
        assert f"did not end within {TIMEOUT_MINUTES} minutes" in message
        assert "left alone" in message
        assert f"`ovh-byoi status {server}`" in message
    ours, again, other = messages
    assert "Fix: run `pulumi up` again" in ours and "follows this same task" in again
    # Another install must not promise to follow a task that is not its own.
    assert "follows this same task" not in other
    assert "was not started" in other and "Fix: " in other
    after = ovh_api.stats()
    assert after.get(CANCEL, 0) == before.get(CANCEL, 0), "nothing was cancelled"
    assert after[REINSTALL] - before.get(REINSTALL, 0) == 1, "one reinstall request in all"
