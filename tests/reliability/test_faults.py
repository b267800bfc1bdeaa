"""A flaky OVH API, during the reinstall request and during polling: every install happens exactly once.

Each scenario installs one image on a server of its own, through the suite's provider process (or a new one,
where the faults hit what a process does once), while the emulator injects the scenario's faults (restricted
to that server). The emulator's install history is the judge: one reinstall, done, and it is the one the
provider reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testkit.provider_process import ProviderProcess

from .support import REINSTALL, Suite, create, start_provider

TASK_LIST = "GET /1.0/dedicated/server/{serviceName}/task"
TASK = "GET /1.0/dedicated/server/{serviceName}/task/{taskId}"
STATUS = "GET /1.0/dedicated/server/{serviceName}/install/status"
SERVER = "GET /1.0/dedicated/server/{serviceName}"
HARDWARE = "GET /1.0/dedicated/server/{serviceName}/specifications/hardware"
EVERY_SERVER_ROUTE = (REINSTALL, TASK_LIST, TASK, STATUS, SERVER, HARDWARE)


@dataclass(frozen=True)
class Scenario:
    rules: tuple[dict[str, Any], ...]
    # How many reinstall requests reach the emulator: faults that refuse a call make the provider ask again;
    # a lost answer must not.
    reinstall_requests: int
    says: str = ""
    # The faults hit what a provider process does once (learning OVH's clock): the install runs in a new one.
    new_process: bool = False


SCENARIOS = {
    "500 burst on the reinstall request": Scenario(({"route": REINSTALL, "status": 500, "times": 3},), 4),
    "503 burst on the reinstall request": Scenario(({"route": REINSTALL, "status": 503, "times": 2},), 3),
    "429 on the reinstall request": Scenario(({"route": REINSTALL, "status": 429, "times": 2},), 3),
    "reinstall request dropped unanswered": Scenario(({"route": REINSTALL, "drop": True, "times": 2},), 3),
    "latency on the reinstall request": Scenario(({"route": REINSTALL, "latency": 0.4, "times": 1},), 1),
    "accepted reinstall, answer lost": Scenario(
        ({"route": REINSTALL, "dropAnswer": True, "times": 1},), 1, "answer was lost"
    ),
    "answer lost, then the task list fails": Scenario(
        (
            {"route": REINSTALL, "dropAnswer": True, "times": 1},
            {"route": TASK_LIST, "status": 503, "times": 3},
        ),
        1,
        "answer was lost",
    ),
    "answer lost, slowly": Scenario(
        ({"route": REINSTALL, "dropAnswer": True, "latency": 0.3, "times": 1},), 1
    ),
    "OVH's clock route fails first": Scenario(
        (
            {"route": "GET /1.0/auth/time", "status": 503, "times": 2},
            {"route": TASK, "drop": True, "times": 1},
        ),
        1,
        new_process=True,
    ),
    "500 burst while polling the steps": Scenario(({"route": STATUS, "status": 500, "times": 4},), 1),
    "503 burst while polling the task": Scenario(({"route": TASK, "status": 503, "times": 3},), 1),
    "429 while polling": Scenario(
        ({"route": TASK, "status": 429, "times": 2}, {"route": STATUS, "status": 429, "times": 2}), 1
    ),
    "connections dropped while polling": Scenario(
        ({"route": STATUS, "drop": True, "times": 3}, {"route": TASK, "drop": True, "times": 2}), 1
    ),
    "latency while polling": Scenario(
        ({"route": STATUS, "latency": 0.15, "times": 4}, {"route": TASK, "latency": 0.15, "times": 2}), 1
    ),
    "one call in four fails, everywhere": Scenario(
        tuple(
            {"route": route, "rate": 0.25, "status": status}
            for route, status in zip(EVERY_SERVER_ROUTE, (503, 500, 503, 429, 500, 503), strict=True)
        ),
        0,  # random: any number of refused requests, but still one install
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_install_happens_exactly_once_despite_faults(
    name: str, suite: Suite, provider_env: dict[str, str], tmp_path: Path
) -> None:
    scenario = SCENARIOS[name]
    if not scenario.new_process:
        run_scenario(scenario, suite, suite.provider)
        return
    provider = start_provider(suite.ovh_api, provider_env, tmp_path)
    try:
        run_scenario(scenario, suite, provider)
    finally:
        provider.stop()


def run_scenario(scenario: Scenario, suite: Suite, provider: ProviderProcess) -> None:
    server = suite.new_server()
    # Restricted to this test's server, but for routes that name no server (OVH's clock).
    rules = [
        rule | ({"serviceName": server} if "{serviceName}" in rule["route"] else {})
        for rule in scenario.rules
    ]
    suite.inject({"seed": 6, "rules": rules})
    requests_before = suite.ovh_api.stats().get(REINSTALL, 0)
    lines_before = len(provider.lines)

    created = create(provider, suite.image_inputs(server))

    account = suite.assert_installed_once(server, 1)
    [install] = account.history
    assert created.outputs["task_id"] == install["taskId"], "the provider reports the install that happened"
    assert created.id == f"{server}/{install['taskId']}"
    fired = [rule["fired"] for rule in suite.ovh_api.admin("GET", "faults")["rules"]]
    assert all(fired) if scenario.reinstall_requests else any(fired), "the scenario's faults really happened"
    if scenario.reinstall_requests:
        assert suite.ovh_api.stats()[REINSTALL] - requests_before == scenario.reinstall_requests
    printed = "\n".join(line.text for line in provider.lines[lines_before:])
    assert scenario.says in printed
