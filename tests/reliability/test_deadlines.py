"""A reinstall task that never ends: the run fails at `timeout_minutes`, says which task runs and what to do,
and leaves the server alone (no cancel, no second reinstall), however many runs come after it."""

from __future__ import annotations

import time

import pytest
from testkit.provider_process import ProviderCallError

from .support import REINSTALL, SPEED, Suite, create

CANCEL = "POST /1.0/dedicated/server/{serviceName}/task/{taskId}/cancel"
TIMEOUT_MINUTES = 20


def test_a_task_that_never_ends_fails_at_the_deadline_and_the_server_is_left_alone(
    suite: Suite,
) -> None:
    server = suite.new_server()
    suite.inject({"rules": [{"task": "neverFinish", "serviceName": server, "times": 1}]})
    inputs = suite.image_inputs(server, preflight="off", timeout_minutes=TIMEOUT_MINUTES)
    other_image = suite.image_inputs(server, "small.raw", preflight="off", timeout_minutes=TIMEOUT_MINUTES)
    before = suite.ovh_api.stats()
    messages: list[str] = []

    # The run, the same install again (the next `pulumi up`), and another install of the same server.
    for attempt in (inputs, inputs, other_image):
        started = time.monotonic()
        with pytest.raises(ProviderCallError) as failure:
            create(suite.provider, attempt)
        assert time.monotonic() - started >= TIMEOUT_MINUTES * 60 / SPEED, "not before the deadline"
        messages.append(failure.value.reason)

    account = suite.assert_installed_once(server, 1, must_end=False)
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
    after = suite.ovh_api.stats()
    assert after.get(CANCEL, 0) == before.get(CANCEL, 0), "nothing was cancelled"
    assert after[REINSTALL] - before.get(REINSTALL, 0) == 1, "one reinstall request in all"
