"""Pulumi programs run by LocalEngine against real provider processes of the toy provider."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pulumi
import pytest
from ovh_byoi_harness.engine import ChangesNotExpectedError, LocalEngine
from toy_provider import Toy, read_journal


def _engine(
    tmp_path: Path, toy_env: dict[str, str], program: Callable[[], None], **options: Any
) -> LocalEngine:
    options.setdefault("config", {"toy:endpoint": "http://stack.example/api", "toy:token": "stack-token"})
    return LocalEngine(tmp_path / "state.json", program=program, env=toy_env, **options)


def _calls(world: Path, *calls: str) -> list[tuple[str, str]]:
    return [(record["call"], record["name"]) for record in read_journal(world) if record["call"] in calls]


def _max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def _create_intervals(world: Path) -> list[tuple[float, float]]:
    return [(r["start"], r["end"]) for r in read_journal(world) if r["call"] == "create"]


def test_up_creates_with_the_stack_config_and_a_second_up_changes_nothing(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    def program() -> None:
        first = Toy("first", world=str(world), size=1, label="one")
        Toy("second", world=str(world), size=2, label=first.serial)
        pulumi.export("first_serial", first.serial)

    engine = _engine(tmp_path, toy_env, program)
    created = engine.up().raise_for_errors()

    assert created.ops() == {"first": "create", "second": "create"}
    assert created.outputs_of("first")["endpoint"] == "http://stack.example/api"
    assert created.outputs_of("second")["label"] == created.outputs_of("first")["serial"]
    assert created.stack_outputs == {"first_serial": created.outputs_of("first")["serial"]}
    assert {r["token"] for r in read_journal(world) if r["call"] == "create"} == {"stack-token"}
    assert "[first] created" in created.printed()

    again = engine.up().raise_for_errors()

    assert again.ops() == {"first": "same", "second": "same"}
    assert not again.changed
    assert _calls(world, "create", "update", "delete") == [("create", "first"), ("create", "second")]
    assert engine.resource("second").id == f"toy-{created.outputs_of('second')['serial']}"


def test_preview_checks_and_diffs_but_never_creates_or_updates(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    labels = {"label": "one"}

    def program() -> None:
        first = Toy("first", world=str(world), size=1, **labels)
        Toy("second", world=str(world), label=first.serial)

    engine = _engine(tmp_path, toy_env, program)
    planned = engine.preview()

    assert planned.ops() == {"first": "create", "second": "create"}
    assert not engine.state_path.exists()
    assert _calls(world, "create", "update") == []
    assert [call for call, _ in _calls(world, "check")] == ["check", "check"]
    # The computed output is not known before the create: the dependent sees an unknown value.
    assert isinstance(planned.outputs_of("second")["label"], pulumi.output.Unknown)

    engine.up().raise_for_errors()
    labels["label"] = "two"
    changed = engine.preview()

    assert changed.ops()["first"] == "update"
    # As with the CLI, a preview answers an update with its inputs: computed outputs turn unknown downstream.
    assert isinstance(changed.outputs_of("second")["label"], pulumi.output.Unknown)
    assert engine.resource("first").inputs["label"] == "one"
    assert _calls(world, "create", "update") == [("create", "first"), ("create", "second")]


def test_update_refresh_and_destroy_round_trip(tmp_path: Path, world: Path, toy_env: dict[str, str]) -> None:
    label = ["one"]

    def program() -> None:
        Toy("only", world=str(world), size=1, label=label[0])

    engine = _engine(tmp_path, toy_env, program)
    serial = engine.up().raise_for_errors().outputs_of("only")["serial"]
    label[0] = "two"
    updated = engine.up().raise_for_errors()

    assert updated.ops() == {"only": "update"}
    assert updated.outputs_of("only")["label"] == "two"
    assert updated.outputs_of("only")["serial"] == serial
    assert engine.resource("only").outputs["label"] == "two"

    refreshed = engine.refresh(expect_no_changes=True)
    assert refreshed.ops() == {"only": "read"}
    assert not refreshed.step("only").drift

    destroyed = engine.destroy()
    assert destroyed.ops() == {"only": "delete"}
    assert [r.type for r in engine.resources()] == []
    assert not (world / f"toy-{serial}.json").exists()


def test_check_failures_fail_the_resource_and_leave_nothing_in_state(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    def program() -> None:
        Toy("bad", world=str(world), size=-1)

    engine = _engine(tmp_path, toy_env, program)
    result = engine.up()

    assert not result.ok
    assert result.step("bad").error == "size: size must be a number >= 0, got -1.0; fix the size input"
    assert result.program_error is None
    assert [r.name for r in engine.resources() if r.name == "bad"] == []
    assert _calls(world, "create") == []


def test_a_failing_create_leaves_nothing_in_state_and_stops_its_dependents(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    def program() -> None:
        first = Toy("first", world=str(world), fail="no capacity left in rack B")
        Toy("second", world=str(world), label=first.serial)

    engine = _engine(tmp_path, toy_env, program)
    result = engine.up()

    assert result.errors == {result.step("first").urn: "RuntimeError: no capacity left in rack B"}
    assert "second" not in result.ops()
    assert [
        r.name for r in engine.resources() if r.custom and r.type != "pulumi:providers:pulumi-python"
    ] == []


def test_a_provider_that_dies_during_create_fails_the_step(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    def program() -> None:
        Toy("doomed", world=str(world), crash=True)

    result = _engine(tmp_path, toy_env, program).up()

    assert not result.ok
    assert result.step("doomed").op == "create"
    assert "exited with code -9" in (result.step("doomed").error or "")


def test_a_diff_that_replaces_creates_the_new_one_before_deleting_the_old(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    size = [1]

    def program() -> None:
        Toy("machine", world=str(world), size=size[0])

    engine = _engine(tmp_path, toy_env, program)
    old_id = engine.up().raise_for_errors().outputs_of("machine")["serial"]
    size[0] = 2
    replaced = engine.up().raise_for_errors()

    assert replaced.ops() == {"machine": "replace"}
    assert replaced.step("machine").replaces == ("size",)
    assert [(step.op, step.replaced) for step in replaced.steps] == [("replace", False), ("delete", True)]
    assert replaced.outputs_of("machine")["serial"] != old_id
    assert _calls(world, "create", "delete")[-2:] == [("create", "machine"), ("delete", "machine")]
    assert [r.id for r in engine.resources() if r.name == "machine"] == [
        f"toy-{replaced.outputs_of('machine')['serial']}"
    ]


def test_delete_before_replace_deletes_first(tmp_path: Path, world: Path, toy_env: dict[str, str]) -> None:
    size = [1]

    def program() -> None:
        Toy("machine", world=str(world), size=size[0], delete_before_replace=True)

    engine = _engine(tmp_path, toy_env, program)
    engine.up().raise_for_errors()
    size[0] = 2
    replaced = engine.up().raise_for_errors()

    assert replaced.ops() == {"machine": "replace"}
    assert replaced.steps[0].delete_before_replace
    assert _calls(world, "create", "delete")[-2:] == [("delete", "machine"), ("create", "machine")]


def test_resources_gone_from_the_program_are_deleted_at_the_end_of_up(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    names = ["kept", "dropped"]

    def program() -> None:
        for name in names:
            Toy(name, world=str(world))

    engine = _engine(tmp_path, toy_env, program)
    engine.up().raise_for_errors()
    names.remove("dropped")
    result = engine.up().raise_for_errors()

    assert result.ops() == {"kept": "same", "dropped": "delete"}
    assert [r.name for r in engine.resources() if r.type.startswith("pulumi-python:dynamic")] == ["kept"]


def test_secrets_stay_secret_in_state_and_outputs(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    def program() -> None:
        Toy("plain-derived", world=str(world), password=pulumi.Output.secret("correct horse battery"))
        Toy(
            "all-secret",
            world=str(world),
            password=pulumi.Output.secret("correct horse battery"),
            opts=pulumi.ResourceOptions(additional_secret_outputs=["password_length"]),
        )

    engine = _engine(tmp_path, toy_env, program)
    result = engine.up().raise_for_errors()

    assert "correct horse battery" not in engine.state_path.read_text(encoding="utf-8")
    assert "password" in result.secret_outputs_of("plain-derived")
    # Re-marked by name only: a derived output under another name stays plain...
    assert "password_length" not in result.secret_outputs_of("plain-derived")
    # ...unless the resource lists it.
    assert "password_length" in result.secret_outputs_of("all-secret")
    stored = engine.resource("all-secret")
    assert stored.outputs["password"] == "correct horse battery"
    assert {"password", "password_length", "__provider"} <= stored.secret_outputs
    assert "password" in stored.secret_inputs


def test_refresh_reports_drift_and_gone_resources(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    def program() -> None:
        Toy("drifting", world=str(world), label="as declared")
        Toy("vanishing", world=str(world))

    engine = _engine(tmp_path, toy_env, program)
    created = engine.up().raise_for_errors()
    drifting = world / f"toy-{created.outputs_of('drifting')['serial']}.json"
    drifting.write_text(drifting.read_text().replace("as declared", "changed by hand"))
    (world / f"toy-{created.outputs_of('vanishing')['serial']}.json").unlink()
    before = engine.state_path.read_text()

    with pytest.raises(ChangesNotExpectedError) as raised:
        engine.refresh(preview_only=True, expect_no_changes=True)
    assert raised.value.result.step("drifting").drift
    assert raised.value.result.step("vanishing").gone
    assert engine.state_path.read_text() == before

    refreshed = engine.refresh()
    assert refreshed.step("drifting").drift
    assert engine.resource("drifting").outputs["label"] == "changed by hand"
    assert [r.name for r in engine.resources() if r.name == "vanishing"] == []
    # The stored inputs still say what the program wants: the next up puts it back.
    assert engine.up().ops()["drifting"] == "update"


def test_explicit_providers_get_their_own_process_and_config(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    def program() -> None:
        east = pulumi.ProviderResource("pulumi-python", "east", {"toy:endpoint": "http://east.example"})
        west = pulumi.ProviderResource("pulumi-python", "west", {"toy:endpoint": "http://west.example"})
        Toy("on-east", world=str(world), opts=pulumi.ResourceOptions(provider=east))
        Toy("on-west", world=str(world), opts=pulumi.ResourceOptions(provider=west))
        Toy("on-default", world=str(world))

    engine = _engine(tmp_path, toy_env, program)
    result = engine.up().raise_for_errors()

    assert result.outputs_of("on-east")["endpoint"] == "http://east.example"
    assert result.outputs_of("on-west")["endpoint"] == "http://west.example"
    assert result.outputs_of("on-default")["endpoint"] == "http://stack.example/api"
    creators = {r["name"]: r["pid"] for r in read_journal(world) if r["call"] == "create"}
    assert len(set(creators.values())) == 3
    assert engine.resource("on-east").provider.startswith(result.step("east").urn + "::")

    # Refresh and destroy start the providers from the state, with their stored configuration.
    assert engine.refresh(expect_no_changes=True).ok
    assert engine.destroy().ok


def test_one_provider_process_runs_at_most_four_calls_at_once(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    def program() -> None:
        # Each create waits (one second at most) for all six to have started: only four can.
        for index in range(6):
            Toy(f"slow-{index}", world=str(world), rendezvous=6, sleep=1.0)

    _engine(tmp_path, toy_env, program).up().raise_for_errors()

    assert _max_overlap(_create_intervals(world)) == 4


def test_explicit_providers_run_past_the_four_call_ceiling(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    def program() -> None:
        providers = [pulumi.ProviderResource("pulumi-python", f"p{index}", {}) for index in range(2)]
        for index in range(6):
            on = pulumi.ResourceOptions(provider=providers[index % 2])
            Toy(f"slow-{index}", world=str(world), rendezvous=6, sleep=30.0, opts=on)

    _engine(tmp_path, toy_env, program).up().raise_for_errors()

    assert _max_overlap(_create_intervals(world)) == 6


def test_parallel_bounds_the_steps_in_flight(tmp_path: Path, world: Path, toy_env: dict[str, str]) -> None:
    def program() -> None:
        providers = [pulumi.ProviderResource("pulumi-python", f"p{index}", {}) for index in range(2)]
        for index in range(4):
            on = pulumi.ResourceOptions(provider=providers[index % 2])
            Toy(f"slow-{index}", world=str(world), rendezvous=4, sleep=1.0, opts=on)

    _engine(tmp_path, toy_env, program, parallel=2).up().raise_for_errors()

    assert _max_overlap(_create_intervals(world)) == 2


def test_depends_on_orders_the_creates_in_time(tmp_path: Path, world: Path, toy_env: dict[str, str]) -> None:
    def program() -> None:
        first = Toy("first", world=str(world), sleep=0.5)
        Toy("second", world=str(world), opts=pulumi.ResourceOptions(depends_on=[first]))

    _engine(tmp_path, toy_env, program).up().raise_for_errors()

    created = {r["name"]: r for r in read_journal(world) if r["call"] == "create"}
    assert created["second"]["start"] >= created["first"]["end"]


def test_a_project_directory_runs_with_its_stack_config(
    tmp_path: Path, world: Path, toy_env: dict[str, str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: toyproject\nruntime: python\n")
    (project / "Pulumi.dev.yaml").write_text(
        f"config:\n  toy:endpoint: http://from-stack-file\n  toyproject:world: {world}\n"
    )
    (project / "__main__.py").write_text(
        "import pulumi\nfrom toy_provider import Toy\n"
        "Toy('from-dir', world=pulumi.Config().require('world'))\n"
    )
    lines: list[str] = []
    engine = LocalEngine.for_project(
        project, tmp_path / "state.json", stack="dev", env=toy_env, progress=lines.append
    )
    result = engine.up().raise_for_errors()

    assert engine.project == "toyproject"
    assert result.outputs_of("from-dir")["endpoint"] == "http://from-stack-file"
    assert (
        result.step("from-dir").urn
        == "urn:pulumi:dev::toyproject::pulumi:pulumi:Stack$pulumi-python:dynamic:Resource::from-dir"
    )
    assert "+ create from-dir" in lines
