"""ByoiFleet rollouts under LocalEngine, with real provider processes, checked on the emulator's records."""

from __future__ import annotations

from collections.abc import Callable

from ovh_byoi import ByoiFleet
from ovh_byoi.fleet import rollout_batches
from ovh_byoi_harness.engine import LocalEngine
from ovh_emulator.testing import RunningEmulator

from .conftest import (
    REINSTALL,
    FleetProgram,
    HeldImageServer,
    Timeline,
    server_names,
    writes,
)

SERVERS = server_names(4)  # the emulator fixture's servers
S1, S2, S3, S4 = SERVERS


def child(service_name: str) -> str:
    return f"web-{service_name}"


def provider(service_name: str) -> str:
    return f"web-{service_name}-provider"


def test_the_canary_ends_before_the_first_batch_starts_batches_follow_each_other_and_a_rerun_does_nothing(
    engine: LocalEngine, emulator: RunningEmulator, fleet_program: FleetProgram
) -> None:
    program = fleet_program(SERVERS, canary=1, max_parallel=2)

    result = engine.up(program).raise_for_errors()

    [fleet] = program.fleets  # type: ignore[attr-defined]
    assert fleet.batches == [[S1], [S2, S3], [S4]]
    timeline = Timeline(emulator)
    assert sorted(timeline.servers()) == SERVERS, timeline.show()
    timeline.assert_in_order(fleet.batches)
    # The engine saw the same: no step of a batch began before every step of the one before had ended.
    steps = {name: result.step(child(name)) for name in SERVERS}
    assert steps[S1].ended <= min(steps[S2].started, steps[S3].started)
    assert max(steps[S2].ended, steps[S3].ended) <= steps[S4].started
    assert writes(emulator) == {REINSTALL: 4}

    again = engine.up(program, expect_no_changes=True).raise_for_errors()

    assert set(again.summary()) == {"same"}
    assert writes(emulator) == {REINSTALL: 4}


def test_each_server_has_a_provider_of_its_own_given_the_stack_credentials_which_stay_secret(
    engine: LocalEngine, emulator: RunningEmulator, fleet_program: FleetProgram
) -> None:
    result = engine.up(fleet_program([S1, S2])).raise_for_errors()

    for service_name in (S1, S2):
        installation = engine.resource(child(service_name))
        own = engine.resource(provider(service_name))
        assert installation.provider == f"{own.urn}::{own.id}"
        assert own.inputs["ovh:endpoint"] == emulator.url
        assert own.inputs["ovh:applicationKey"] == emulator.application_key
        assert own.inputs["ovh:applicationSecret"] == emulator.application_secret
        assert {"ovh:applicationSecret", "ovh:consumerKey"} <= own.secret_inputs
        assert "ovh:endpoint" not in own.secret_inputs
    # Explicit providers get no stack config from the engine: the installs worked on what the fleet passed.
    assert {line.provider for line in result.provider_output} == {provider(S1), provider(S2)}
    stored = engine.state_path.read_text()
    assert emulator.application_secret not in stored
    assert emulator.consumer_key not in stored
    assert emulator.application_secret not in result.printed()


def test_a_failing_canary_leaves_every_other_server_untouched_and_the_next_up_goes_on(
    engine: LocalEngine, emulator: RunningEmulator, fleet_program: FleetProgram
) -> None:
    program = fleet_program(SERVERS, canary=1, max_parallel=3)
    emulator.set_faults({"rules": [{"task": "ovhError", "serviceName": S1, "times": 1}]})

    failed = engine.up(program)

    assert not failed.ok
    [(urn, reason)] = failed.errors.items()
    assert urn.endswith(child(S1)) and "ovhError" in reason, reason
    timeline = Timeline(emulator)
    assert [(i.service_name, i.status) for i in timeline.installs] == [(S1, "ovhError")]
    assert writes(emulator) == {REINSTALL: 1}
    installed = {resource.name for resource in engine.resources()}
    assert not installed & {child(S2), child(S3), child(S4)}

    emulator.set_faults({})
    engine.up(program).raise_for_errors()

    timeline = Timeline(emulator)
    assert [i.status for i in timeline.of(S1)] == ["ovhError", "done"]
    timeline.assert_in_order([[S1], [S2, S3, S4]])


def test_max_parallel_twelve_runs_twelve_installs_at_once(
    engine: LocalEngine,
    emulator: RunningEmulator,
    fleet_program: FleetProgram,
    held_image: Callable[[int], HeldImageServer],
) -> None:
    servers = server_names(12)
    for service_name in servers[len(SERVERS) :]:
        emulator.add_server(service_name)
    # OVH's installer downloads the image mid-install: each download is held until all twelve have begun.
    # Preflight, which would read the image first, is off so that only installs download it; the deadline
    # (in OVH time, 600 times faster here) leaves room for the twelve provider processes to start on a busy
    # machine.
    image = held_image(12)
    program = fleet_program(
        servers, canary=0, max_parallel=12, image_url=image.url, preflight="off", timeout_minutes=24 * 60
    )

    engine.up(program).raise_for_errors()

    assert image.most_at_once == 12
    timeline = Timeline(emulator)
    assert [i.status for i in timeline.installs] == ["done"] * 12, timeline.show()
    last_start = max(install.started for install in timeline.installs)
    first_end = min(install.ended for install in timeline.installs if install.ended is not None)
    assert last_start < first_end, timeline.show()
    assert writes(emulator) == {REINSTALL: 12}


def test_adding_a_server_installs_only_it_and_moves_no_other_server_to_another_provider(
    engine: LocalEngine, emulator: RunningEmulator, fleet_program: FleetProgram
) -> None:
    engine.up(fleet_program([S2, S3, S4], canary=1, max_parallel=1)).raise_for_errors()
    homes = {name: engine.resource(child(name)).provider for name in (S2, S3, S4)}

    # S1 sorts first: it becomes the canary and every other server moves to a later batch.
    program = fleet_program(SERVERS, canary=1, max_parallel=1)
    added = engine.up(program).raise_for_errors()

    [fleet] = program.fleets  # type: ignore[attr-defined]
    assert fleet.batches == [[S1], [S2], [S3], [S4]]
    changed = {step.name: step.op for step in added.changes()}
    assert changed == {child(S1): "create", provider(S1): "create"}
    assert {name: engine.resource(child(name)).provider for name in (S2, S3, S4)} == homes
    assert [install.service_name for install in Timeline(emulator).installs] == [S2, S3, S4, S1]
    assert writes(emulator) == {REINSTALL: 4}


def test_a_new_checksum_previews_as_replacements_then_rolls_through_the_fleet_in_order(
    engine: LocalEngine, emulator: RunningEmulator, fleet_program: FleetProgram
) -> None:
    engine.up(fleet_program(SERVERS, image="small.qcow2")).raise_for_errors()
    new_image = fleet_program(SERVERS, image="small.raw")

    preview = engine.preview(new_image).raise_for_errors()

    assert {step.name: step.op for step in preview.changes()} == {child(name): "replace" for name in SERVERS}
    assert all("image_checksum" in step.replaces for step in preview.changes())
    assert writes(emulator) == {REINSTALL: 4}

    engine.up(new_image).raise_for_errors()

    timeline = Timeline(emulator)
    for name in SERVERS:
        assert [i.status for i in timeline.of(name)] == ["done", "done"]
        assert timeline.last(name).task_id > max(i.task_id for i in timeline.installs[:4])
    timeline.assert_in_order([[S1], [S2, S3], [S4]])
    assert emulator.server(S4)["installs"][-1]["imageType"] == "raw"


def test_bad_fleet_settings_are_refused_naming_the_setting_and_the_fix(
    engine: LocalEngine, emulator: RunningEmulator, fleet_program: FleetProgram
) -> None:
    def typo() -> None:
        ByoiFleet(
            "web",
            servers={S1: {"hostnam": "web-1"}},
            image_url=emulator.image_url("small.qcow2"),
            image_type="qcow2",
            efi_bootloader_path=r"\efi\debian\grubx64.efi",
        )

    misspelt = engine.preview(typo)

    assert misspelt.program_error is not None
    assert f"{S1} sets hostnam, which a server cannot set" in misspelt.program_error
    assert "Fix: use only image_url, image_type," in misspelt.program_error

    no_batch = engine.preview(fleet_program([S1], max_parallel=0))

    assert no_batch.program_error is not None
    assert "max_parallel must be a whole number of at least 1, got 0. Fix:" in no_batch.program_error
    assert emulator.stats() == {}


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
