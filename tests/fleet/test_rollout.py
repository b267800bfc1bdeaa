"""ByoiFleet rollouts under the real Pulumi CLI, checked on the emulator's records and the stack's state."""

from __future__ import annotations

from collections.abc import Callable

from ovh_byoi.fleet import rollout_batches
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL, writes

from .conftest import FleetStack, HeldImageServer, Timeline, server_names

SERVERS = server_names(4)  # the emulator fixture's servers
S1, S2, S3, S4 = SERVERS


def child(service_name: str) -> str:
    return f"web-{service_name}"


# The one provider every server of the fleet `web` has.
PROVIDER = "web-provider"


def own_provider(service_name: str) -> str:
    """A server's provider in the layout of fleets before they shared one: a provider per server."""
    return f"web-{service_name}-provider"


def test_the_canary_ends_before_the_first_batch_starts_batches_follow_each_other_and_a_rerun_does_nothing(
    fleet: FleetStack, emulator: RunningEmulator
) -> None:
    fleet.declare(SERVERS, canary=1, max_parallel=2)

    fleet.up()

    batches = fleet.stack.outputs()["batches"]
    assert batches == [[S1], [S2, S3], [S4]]
    timeline = Timeline(emulator)
    assert sorted(timeline.servers()) == SERVERS, timeline.show()
    timeline.assert_in_order(batches)
    assert writes(emulator) == {REINSTALL: 4}

    fleet.preview("--expect-no-changes")
    fleet.up("--expect-no-changes")

    assert writes(emulator) == {REINSTALL: 4}


def test_every_server_has_the_fleets_one_provider_given_the_stack_credentials_which_stay_secret(
    fleet: FleetStack, emulator: RunningEmulator
) -> None:
    fleet.declare([S1, S2])
    # What a user keeps in plain config stays plain; what they set with --secret stays secret.
    fleet.stack.run("config", "set", "ovh:applicationKey", emulator.application_key)

    run = fleet.up()

    providers = fleet.providers()
    assert set(providers) == {PROVIDER}
    shared = providers[PROVIDER]
    assert set(fleet.homes().values()) == {f"{shared['urn']}::{shared['id']}"}
    inputs = shared["inputs"]
    assert inputs["ovh:applicationKey"] == emulator.application_key
    # Set with `pulumi config set --secret`: the provider's inputs keep them secret.
    for key, value in (
        ("ovh:applicationSecret", emulator.application_secret),
        ("ovh:consumerKey", emulator.consumer_key),
    ):
        assert isinstance(inputs[key], dict) and inputs[key]["plaintext"] == f'"{value}"', inputs[key]
    stored = fleet.stack.raw_state()
    for secret in (emulator.application_secret, emulator.consumer_key):
        assert secret not in stored
        assert secret not in run.output
    assert writes(emulator) == {REINSTALL: 2}


def test_a_failing_canary_leaves_every_other_server_untouched_and_the_next_up_goes_on(
    fleet: FleetStack, emulator: RunningEmulator
) -> None:
    fleet.declare(SERVERS, canary=1, max_parallel=3)
    emulator.set_faults({"rules": [{"task": "ovhError", "serviceName": S1, "times": 1}]})

    failed = fleet.up(expect=None)

    assert failed.returncode != 0
    assert "ovhError" in failed.output, failed
    timeline = Timeline(emulator)
    assert [(i.service_name, i.status) for i in timeline.installs] == [(S1, "ovhError")]
    assert writes(emulator) == {REINSTALL: 1}
    assert set(fleet.installations()) == set(), "no server of a later batch was even created"

    emulator.set_faults({})
    fleet.up()

    timeline = Timeline(emulator)
    assert [i.status for i in timeline.of(S1)] == ["ovhError", "done"]
    timeline.assert_in_order([[S1], [S2, S3, S4]])


def test_a_batch_larger_than_the_engines_parallel_is_warned_about_and_runs_parallel_at_a_time(
    fleet: FleetStack,
    emulator: RunningEmulator,
    held_image: Callable[..., HeldImageServer],
) -> None:
    servers = server_names(6)
    for service_name in servers[len(SERVERS) :]:
        emulator.add_server(service_name)
    # OVH's installer downloads the image mid-install: each download is held until `expected` of them are
    # under way at once, so the most held together is how many installs ran together. Preflight, which
    # would read the image first, is off; the deadline (in OVH time, 600 times faster here) leaves room for
    # the provider processes to start on a busy machine.
    options = {"canary": 0, "max_parallel": 6, "preflight": "off", "timeout_minutes": 24 * 60}
    capped = held_image(4)
    fleet.declare(servers, image_url=capped.url, **options)

    run = fleet.up("--parallel", "4")

    assert "batches of up to 6 servers, but this run's --parallel is 4" in run.output, run
    assert "Fix: `pulumi up --parallel 6` (or PULUMI_PARALLEL=6), or max_parallel=4." in run.output
    assert capped.most_at_once == 4
    timeline = Timeline(emulator)
    assert [i.status for i in timeline.installs] == ["done"] * 6, timeline.show()
    assert writes(emulator) == {REINSTALL: 6}

    # With --parallel as large as the batch, the whole batch installs at once, and nothing is said.
    uncapped = held_image(6, "small.raw")
    fleet.declare(servers, image="small.raw", image_url=uncapped.url, **options)

    run = fleet.up("--parallel", "6")

    assert "--parallel is" not in run.output
    assert uncapped.most_at_once == 6
    newest = [Timeline(emulator).last(name) for name in servers]
    assert [i.status for i in newest] == ["done"] * 6
    assert max(i.started for i in newest) < min(i.ended for i in newest if i.ended is not None)
    assert writes(emulator) == {REINSTALL: 12}


def test_adding_removing_servers_and_changing_batches_reinstall_no_other_server_nor_touch_the_provider(
    fleet: FleetStack, emulator: RunningEmulator
) -> None:
    fleet.declare([S2, S3, S4], canary=1, max_parallel=1)
    fleet.up()
    homes = fleet.homes()

    # S1 sorts first: it becomes the canary, every other server moves to a later batch, batches grow to 3.
    fleet.declare(SERVERS, canary=1, max_parallel=3)

    assert fleet.steps() == {child(S1): "create"}
    fleet.up()
    assert {name: home for name, home in fleet.homes().items() if name != S1} == homes
    assert [install.service_name for install in Timeline(emulator).installs] == [S2, S3, S4, S1]
    assert writes(emulator) == {REINSTALL: 4}

    # S3 leaves the fleet: its installation is deleted from the stack, the server is left as it is; the
    # others change batches again.
    fleet.declare([S1, S2, S4], canary=2, max_parallel=1)

    assert fleet.steps() == {child(S3): "delete"}
    fleet.up()
    assert set(fleet.installations()) == {S1, S2, S4}
    assert {name: fleet.homes()[name] for name in (S2, S4)} == {name: homes[name] for name in (S2, S4)}
    assert set(fleet.providers()) == {PROVIDER}
    assert [entry["status"] for entry in emulator.server(S3)["installs"]] == ["done"]
    assert writes(emulator) == {REINSTALL: 4}
    fleet.preview("--expect-no-changes")


def test_new_provider_settings_update_the_provider_and_reinstall_nothing(
    fleet: FleetStack, emulator: RunningEmulator
) -> None:
    fleet.declare([S1, S2])
    fleet.up()
    homes = fleet.homes()

    # Another spelling of the same endpoint stands for rotated credentials: the provider's inputs change.
    moved = emulator.url.replace("127.0.0.1", "localhost")
    fleet.stack.run("config", "set", "--secret", "ovh:endpoint", moved)

    steps = fleet.steps()
    assert steps == {PROVIDER: "update"}, steps
    fleet.up()

    assert {name: installation["provider"] for name, installation in fleet.installations().items()} == homes
    assert all(home for home in homes.values())
    assert {provider["inputs"]["ovh:endpoint"]["plaintext"] for provider in fleet.providers().values()} == {
        f'"{moved}"'
    }
    assert writes(emulator) == {REINSTALL: 2}


def test_a_fleet_of_a_provider_per_server_moves_to_the_one_provider_and_no_server_is_reinstalled(
    fleet: FleetStack, emulator: RunningEmulator
) -> None:
    # The stack as fleets left it before their servers shared a provider: the same component and children,
    # each child with an explicit provider of its own (the program's `provider-per-server` layout).
    fleet.declare(SERVERS, canary=1, max_parallel=2)
    fleet.stack.set_config({"fleet-tests:layout": "provider-per-server"})
    fleet.up()
    assert set(fleet.providers()) == {own_provider(name) for name in SERVERS}
    task_ids = fleet.stack.outputs()["task_ids"]
    assert writes(emulator) == {REINSTALL: 4}

    # The same fleet, declared by this ByoiFleet: each server moves to the fleet's provider, which the
    # engine (3.151 and later, pulumi/pulumi#18509) does not count as a replacement.
    fleet.stack.set_config({"fleet-tests:layout": "shared"})

    # The servers are `same` (left out of `steps`): the fleet's provider is created, the old ones deleted.
    steps = fleet.steps()
    assert steps == {PROVIDER: "create", **{own_provider(name): "delete" for name in SERVERS}}, steps
    diff = fleet.preview("--diff")
    assert "replace" not in diff.output.lower(), diff
    assert "+-" not in diff.output, diff
    assert "+ 1 to create" in diff.output and "- 4 to delete" in diff.output, diff
    assert "6 unchanged" in diff.output, diff  # the stack, the fleet and its four servers

    fleet.up()

    assert writes(emulator) == {REINSTALL: 4}
    assert [i.status for i in Timeline(emulator).installs] == ["done"] * 4
    assert fleet.stack.outputs()["task_ids"] == task_ids
    assert set(fleet.providers()) == {PROVIDER}
    shared = fleet.providers()[PROVIDER]
    assert set(fleet.homes().values()) == {f"{shared['urn']}::{shared['id']}"}
    fleet.preview("--expect-no-changes")
    fleet.up("--expect-no-changes")
    assert writes(emulator) == {REINSTALL: 4}


def test_a_new_checksum_previews_as_replacements_then_rolls_through_the_fleet_in_order(
    fleet: FleetStack, emulator: RunningEmulator
) -> None:
    fleet.declare(SERVERS, image="small.qcow2")
    fleet.up()
    fleet.declare(SERVERS, image="small.raw")

    assert fleet.steps() == {child(name): "replace" for name in SERVERS}
    diff = fleet.preview("--diff").output
    assert diff.count("image_checksum") >= len(SERVERS), diff
    assert writes(emulator) == {REINSTALL: 4}

    fleet.up()

    timeline = Timeline(emulator)
    for name in SERVERS:
        assert [i.status for i in timeline.of(name)] == ["done", "done"]
        assert timeline.last(name).task_id > max(i.task_id for i in timeline.installs[:4])
    timeline.assert_in_order([[S1], [S2, S3], [S4]])
    assert emulator.server(S4)["installs"][-1]["imageType"] == "raw"


def test_bad_fleet_settings_are_refused_naming_the_setting_and_the_fix(
    fleet: FleetStack, emulator: RunningEmulator
) -> None:
    settings = fleet.settings([S1])
    settings["servers"] = {S1: {"hostnam": "web-1"}}
    fleet.stack.set_config({"fleet-tests:fleet": settings})

    misspelt = fleet.preview(expect=None)

    assert misspelt.returncode != 0
    assert f"{S1} sets hostnam, which a server cannot set" in misspelt.output, misspelt
    assert "Fix: use only image_url, image_type," in misspelt.output

    fleet.declare([S1], max_parallel=0)
    no_batch = fleet.preview(expect=None)

    assert no_batch.returncode != 0
    assert "max_parallel must be a whole number of at least 1, got 0. Fix:" in no_batch.output, no_batch
    assert emulator.stats() == {}


def test_a_cli_older_than_the_fleet_needs_is_refused_before_anything_runs(
    fleet: FleetStack, emulator: RunningEmulator
) -> None:
    # No CLI older than the minimum is at hand: asking this one for an impossible version takes the path an
    # old CLI takes, through the real engine's answer.
    fleet.declare(SERVERS)
    fleet.stack.set_config({"fleet-tests:requireVersion": "99.0.0"})

    refused = fleet.up(expect=None)

    assert refused.returncode != 0
    assert "ByoiFleet web needs the Pulumi CLI 99.0.0 or later: the engine says" in refused.output, refused
    assert "does not satisfy the version range" in refused.output
    assert "Fix: upgrade the Pulumi CLI to 99.0.0 or later" in refused.output
    assert "Traceback" not in refused.output
    assert emulator.stats() == {}
    assert fleet.installations() == {}


def test_batches_are_the_canary_then_runs_of_max_parallel_by_service_name() -> None:
    names = ["c.example", "a.example", "e.example", "b.example", "d.example"]

    assert rollout_batches(names, canary=1, max_parallel=2) == [
        ["a.example"],
        ["b.example", "c.example"],
        ["d.example", "e.example"],
    ]
    assert rollout_batches(names, canary=0, max_parallel=4) == [
        ["a.example", "b.example", "c.example", "d.example"],
        ["e.example"],
    ]
    assert rollout_batches(names, canary=9, max_parallel=1) == [sorted(names)]
    assert rollout_batches([], canary=1, max_parallel=4) == []
