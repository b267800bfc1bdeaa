"""Runs Pulumi programs without the Pulumi CLI, against real dynamic provider processes.

The program runs under `pulumi.runtime.set_mocks`; the mock monitor forwards each dynamic resource
registration to a real `python -m pulumi.dynamic` process (one per provider resource per run, as the engine
starts one plugin per provider), performs Check and Diff as the engine's step generator does (one registration
at a time), then the step (create, update, replace, same) in the registering thread, and answers only when it
is done.
State (inputs, outputs, which of them are secret, the provider reference) persists in a JSON file.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import runpy
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import yaml
from pulumi.output import Output
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks, set_mocks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import SETTINGS, get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from .properties import secret, unwrap_secrets
from .provider_process import (
    PROVIDER_KEY,
    DiffResult,
    OutputLine,
    ProviderCallError,
    ProviderProcess,
    ProviderStartError,
)
from .state import ResourceState, StateFile

__all__ = [
    "ChangesNotExpectedError",
    "EngineError",
    "LocalEngine",
    "ProviderOutput",
    "RunResult",
    "Step",
    "StepOp",
]

StepOp = Literal["create", "same", "update", "replace", "delete", "read"]
Program = Callable[[], object] | str | Path

DYNAMIC_PACKAGE = "pulumi-python"
PROVIDER_TYPE = f"pulumi:providers:{DYNAMIC_PACKAGE}"
_STACK_TYPE = "pulumi:pulumi:Stack"
_SYMBOLS: dict[str, str] = {
    "create": "+",
    "same": "=",
    "update": "~",
    "replace": "+-",
    "delete": "-",
    "read": "~",
}
# The language host sizes the program's default executor from --parallel; every registration holds one of its
# threads until its step is done, so this bounds how many steps run at once.
DEFAULT_PARALLEL = 64


class EngineError(RuntimeError):
    """An operation could not run, or ended in a way the caller asked to be told about."""


class ChangesNotExpectedError(EngineError):
    """`expect_no_changes=True` and the operation found changes (as `--expect-no-changes` fails the CLI)."""

    def __init__(self, result: RunResult) -> None:
        self.result = result
        changed = ", ".join(f"{step.op} {step.name}" for step in result.changes())
        super().__init__(f"{result.operation}: no changes were expected, found: {changed}")


class _StepFailedError(Exception):
    """Raised into the program for a failed registration, as the engine fails the RegisterResource call."""


@dataclass
class Step:
    op: StepOp
    urn: str
    name: str
    type: str
    provider: str = ""
    replaces: tuple[str, ...] = ()
    diff: DiffResult | None = None
    delete_before_replace: bool = False
    drift: bool = False
    gone: bool = False
    # The deletion, at the end of the run, of the resource a create-before-delete replacement replaced.
    replaced: bool = False
    error: str | None = None
    started: float = 0.0
    ended: float = 0.0

    @property
    def changed(self) -> bool:
        if self.op == "read":
            return self.drift or self.gone
        return self.op != "same"


@dataclass(frozen=True)
class ProviderOutput:
    provider: str
    stream: str
    text: str


@dataclass
class RunResult:
    operation: str
    preview: bool
    steps: list[Step] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    secret_outputs: dict[str, frozenset[str]] = field(default_factory=dict)
    stack_outputs: dict[str, Any] = field(default_factory=dict)
    stack_secret_outputs: frozenset[str] = frozenset()
    errors: dict[str, str] = field(default_factory=dict)
    program_error: str | None = None
    provider_output: list[ProviderOutput] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and self.program_error is None

    def changes(self) -> list[Step]:
        return [step for step in self.steps if step.changed]

    @property
    def changed(self) -> bool:
        return bool(self.changes())

    def _urn(self, name_or_urn: str) -> str:
        if name_or_urn.startswith("urn:pulumi:"):
            return name_or_urn
        urns = {step.urn for step in self.steps if step.name == name_or_urn}
        if len(urns) != 1:
            raise KeyError(f"{len(urns)} resources named {name_or_urn!r} in this run; use the URN")
        return urns.pop()

    def step(self, name_or_urn: str) -> Step:
        """The step of a resource (for a replacement, the `replace`, not the deletion of the old one)."""
        urn = self._urn(name_or_urn)
        return [step for step in self.steps if step.urn == urn and not step.replaced][-1]

    def ops(self) -> dict[str, StepOp]:
        """Resource name to its step, for the custom and component resources of the run."""
        return {step.name: step.op for step in self.steps if not step.replaced}

    def outputs_of(self, name_or_urn: str) -> dict[str, Any]:
        return self.outputs[self._urn(name_or_urn)]

    def secret_outputs_of(self, name_or_urn: str) -> frozenset[str]:
        return self.secret_outputs.get(self._urn(name_or_urn), frozenset())

    def printed(self) -> str:
        return "\n".join(line.text for line in self.provider_output)

    def summary(self) -> dict[str, int]:
        """Steps counted by kind; a replacement counts once, as the CLI counts it."""
        counts: dict[str, int] = {}
        for step in self.steps:
            if not step.replaced:
                counts[step.op] = counts.get(step.op, 0) + 1
        return counts

    def raise_for_errors(self) -> RunResult:
        if self.ok:
            return self
        details = [f"{urn.rsplit('::', 1)[-1]}: {reason}" for urn, reason in self.errors.items()]
        if self.program_error is not None and not self.errors:
            details.append(self.program_error)
        raise EngineError(f"{self.operation} failed:\n" + "\n".join(details))


class _PassThroughMocks(Mocks):
    """What the monitor does not forward (reads of existing resources, invokes) echoes its inputs."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        return args.resource_id or args.name, dict(args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


class _Monitor(MockMonitor):
    def __init__(self, run: _Run) -> None:
        super().__init__(_PassThroughMocks())
        self._run = run

    def RegisterResource(self, request: Any) -> Any:
        if request.type == _STACK_TYPE:
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        # Deserializing resource references needs a loop on this executor thread, as in MockMonitor. It is
        # closed here: left to the garbage collector, it fails noisily ("Invalid file descriptor: -1").
        policy = asyncio.get_event_loop_policy()
        try:
            policy.get_event_loop()
            own_loop = False
        except RuntimeError:
            _ensure_event_loop()  # type: ignore[no-untyped-call]
            own_loop = True
        try:
            urn: str = self.make_urn(request.parent, request.type, request.name)
            inputs = cast(dict[str, Any], rpc.deserialize_properties(request.object))
            id_, outputs = self._run.register(urn, request, inputs)
            struct = _sync_await(rpc.serialize_properties(outputs, {}))
        finally:
            if own_loop:
                policy.get_event_loop().close()
                policy.set_event_loop(None)
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, id_, outputs)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=struct)


class _ProviderHandle:
    """A provider resource of this run and, once needed, its process (started and configured once)."""

    def __init__(self, run: _Run, name: str, urn: str, config: Mapping[str, Any]) -> None:
        self.run = run
        self.name = name
        self.urn = urn
        self.config = dict(config)
        self._process: ProviderProcess | None = None
        self._lock = threading.Lock()

    def process(self) -> ProviderProcess:
        with self._lock:
            if self._process is None:
                engine = self.run.engine
                process = ProviderProcess(
                    env=engine._provider_env(),
                    cwd=engine.cwd,
                    python=engine.python,
                    echo=lambda line: self.run.provider_printed(self.name, line),
                )
                process.start()
                self._process = process
                try:
                    process.configure(self.config, urn=self.urn, name=self.name, type_=PROVIDER_TYPE)
                except BaseException:
                    process.kill()
                    raise
            return self._process

    def stop(self) -> None:
        with self._lock:
            if self._process is not None:
                self._process.stop()


def _with_secrets(props: Mapping[str, Any], secret_names: Iterable[str]) -> dict[str, Any]:
    names = set(secret_names)
    return {key: secret(value) if key in names else value for key, value in props.items()}


def _reason(error: BaseException) -> str:
    if isinstance(error, ProviderCallError):
        return error.reason
    return str(error) or type(error).__name__


class _Run:
    """The state of one operation: provider processes, steps, the new state."""

    def __init__(self, engine: LocalEngine, operation: str, preview: bool) -> None:
        self.engine = engine
        self.operation = operation
        self.preview = preview
        self.result = RunResult(operation=operation, preview=preview, started=time.time())
        self.olds: dict[str, ResourceState] = {}
        self.order: list[str] = []
        self.news: dict[str, ResourceState] = {}
        self.registered: list[str] = []
        self.pending_deletes: list[ResourceState] = []
        self.providers: dict[str, _ProviderHandle] = {}
        self.halted = False
        self.lock = threading.RLock()
        # The engine's step generator handles one registration at a time: Check and Diff run inline, so a
        # provider whose four workers are busy stalls every registration behind it.
        self.step_generator = threading.Lock()
        self.default_provider_urn = engine._urn(PROVIDER_TYPE, "default")

    # -- state ------------------------------------------------------------------------------------------

    def load(self) -> None:
        for resource in self.engine._state.load():
            if resource.pending_delete:
                self.pending_deletes.append(resource)
            else:
                self.olds[resource.urn] = resource
                self.order.append(resource.urn)

    def current_state(self) -> list[ResourceState]:
        with self.lock:
            ordered = [self.news[urn] for urn in self.registered if urn in self.news]
            ordered += [self.olds[urn] for urn in self.order if urn not in self.news and urn in self.olds]
            return ordered + self.pending_deletes

    def checkpoint(self) -> None:
        if not self.preview:
            self.engine._state.save(self.current_state())

    # -- output -----------------------------------------------------------------------------------------

    def provider_printed(self, provider: str, line: OutputLine) -> None:
        with self.lock:
            self.result.provider_output.append(ProviderOutput(provider, line.stream, line.text))
        self.engine._say(f"    {line.text}")

    def begin(self, step: Step, detail: str = "") -> None:
        step.started = time.time()
        if step.op != "same" and step.op != "read":
            self.engine._say(f"{_SYMBOLS[step.op]} {step.op} {step.name}{detail}")

    def finish(self, step: Step, outputs: Mapping[str, Any] | None, secret_names: frozenset[str]) -> None:
        step.ended = time.time()
        with self.lock:
            self.result.steps.append(step)
            if outputs is not None:
                self.result.outputs[step.urn] = dict(outputs)
                self.result.secret_outputs[step.urn] = secret_names
        if step.op == "same":
            self.engine._say(f"= same {step.name}")
        elif step.op == "read":
            status = "gone" if step.gone else "drift" if step.drift else "in sync"
            self.engine._say(f"{'!' if step.changed else '='} read {step.name}: {status}")
        elif not self.preview:
            self.engine._say(
                f"{_SYMBOLS[step.op]} {step.op} {step.name} done ({step.ended - step.started:.1f}s)"
            )

    def fail(self, step: Step, error: BaseException) -> _StepFailedError:
        step.ended = time.time()
        step.error = _reason(error)
        with self.lock:
            self.halted = True
            self.result.steps.append(step)
            self.result.errors[step.urn] = step.error
        self.engine._say(f"! {step.op} {step.name} failed: {step.error}")
        return _StepFailedError(f"{step.op} of {step.name} failed: {step.error}")

    # -- providers --------------------------------------------------------------------------------------

    def default_provider(self) -> _ProviderHandle:
        with self.lock:
            handle = self.providers.get(self.default_provider_urn)
            if handle is None:
                config = _with_secrets(self.engine.config, self.engine.secret_config)
                handle = _ProviderHandle(self, "default", self.default_provider_urn, config)
                self.providers[self.default_provider_urn] = handle
            return handle

    def provider_for(self, reference: str) -> _ProviderHandle:
        """The handle of a provider reference (`urn::id`), from this run's registrations or the state."""
        urn = reference.rsplit("::", 1)[0] if reference else self.default_provider_urn
        if urn == self.default_provider_urn:
            return self.default_provider()
        with self.lock:
            handle = self.providers.get(urn)
            if handle is None:
                stored = self.olds.get(urn)
                if stored is None:
                    raise EngineError(f"unknown provider {reference!r}: not registered and not in the state")
                config = _with_secrets(stored.inputs, stored.secret_inputs)
                handle = _ProviderHandle(self, stored.name, urn, config)
                self.providers[urn] = handle
            return handle

    def default_provider_state(self) -> ResourceState:
        old = self.olds.get(self.default_provider_urn)
        if old is not None:
            return old
        return ResourceState(
            urn=self.default_provider_urn,
            type=PROVIDER_TYPE,
            name="default",
            custom=True,
            id=str(uuid.uuid4()),
            inputs={},
            outputs={},
        )

    def stop_providers(self) -> None:
        handles = list(self.providers.values())
        stoppers = [threading.Thread(target=handle.stop) for handle in handles]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    # -- registrations ----------------------------------------------------------------------------------

    def register(self, urn: str, request: Any, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if request.type == PROVIDER_TYPE:
            return self._register_provider(urn, request, inputs)
        if request.custom and request.type.startswith(f"{DYNAMIC_PACKAGE}:") and PROVIDER_KEY in inputs:
            return self._register_dynamic(urn, request, inputs)
        if not request.custom:
            return self._register_component(urn, request, inputs)
        # Resources of other packages have no provider here: they echo their inputs.
        return request.name, inputs

    def _record(self, urn: str, state: ResourceState) -> None:
        with self.lock:
            self.news[urn] = state
            if urn not in self.registered:
                self.registered.append(urn)
        self.checkpoint()

    def _register_component(
        self, urn: str, request: Any, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        plain, secret_names = unwrap_secrets(inputs)
        old = self.olds.get(urn)
        step = Step(
            "create" if old is None else "same" if old.inputs == plain else "update",
            urn,
            request.name,
            request.type,
        )
        self.begin(step)
        self._record(
            urn,
            ResourceState(
                urn=urn,
                type=request.type,
                name=request.name,
                custom=False,
                id="",
                inputs=plain,
                outputs=plain,
                parent=request.parent,
                dependencies=tuple(request.dependencies),
                secret_inputs=secret_names,
                secret_outputs=secret_names,
            ),
        )
        self.finish(step, plain, secret_names)
        return "", inputs

    def _register_provider(
        self, urn: str, request: Any, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        plain, secret_names = unwrap_secrets(inputs)
        old = self.olds.get(urn)
        op: StepOp = "create" if old is None else "same" if old.inputs == plain else "update"
        step = Step(op, urn, request.name, request.type)
        self.begin(step)
        handle = _ProviderHandle(self, request.name, urn, inputs)
        with self.lock:
            self.providers[urn] = handle
        try:
            with self.step_generator:
                # The engine loads and configures a provider when it registers, even in a preview.
                handle.process()
        except (ProviderStartError, ProviderCallError) as error:
            raise self.fail(step, error) from error
        id_ = old.id if old is not None else "" if self.preview else str(uuid.uuid4())
        state = ResourceState(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=True,
            id=id_,
            inputs=plain,
            outputs=plain,
            parent=request.parent,
            dependencies=tuple(request.dependencies),
            protect=request.protect,
            secret_inputs=secret_names,
            secret_outputs=secret_names,
        )
        self._record(urn, state)
        self.finish(step, plain, secret_names)
        return id_, inputs

    def _register_dynamic(self, urn: str, request: Any, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if self.halted:
            raise _StepFailedError(f"{request.name} not started: an earlier step failed")
        news, secret_inputs = unwrap_secrets(inputs)
        old = self.olds.get(urn)
        provider_urn = request.provider.rsplit("::", 1)[0] if request.provider else self.default_provider_urn
        step = Step("create", urn, request.name, request.type, provider=provider_urn)
        try:
            handle = self.provider_for(request.provider)
            with self.step_generator:
                if self.halted:
                    raise _StepFailedError(f"{request.name} not started: an earlier step failed")
                process = handle.process()
                if old is not None:
                    news = _ignore_changes(news, old.inputs, request.ignoreChanges)
                checked = process.check(old.inputs if old is not None else {}, news, urn=urn)
                if checked.failures:
                    raise EngineError(
                        "; ".join(f"{failure.property}: {failure.reason}" for failure in checked.failures)
                    )
                news = checked.inputs
                secret_inputs = frozenset((secret_inputs | checked.secret_names) & set(news))
                if old is not None:
                    self._plan(
                        step,
                        process.diff(old.id, old.outputs, news, old_inputs=old.inputs, urn=urn),
                        old,
                        news,
                        request,
                    )
        except _StepFailedError:
            raise
        except Exception as error:
            raise self.fail(step, error) from error

        if old is not None and old.protect and step.op == "replace":
            raise self.fail(step, EngineError(f"{request.name} is protected: it cannot be replaced"))
        detail = f" [{', '.join(step.replaces)}]" if step.replaces else ""
        self.begin(step, detail)
        additional = tuple(request.additionalSecretOutputs)
        if self.preview:
            # Without Create or Update, the engine answers a preview with the checked inputs as outputs: the
            # provider's computed outputs stay unknown to the program.
            id_ = old.id if old is not None and step.op != "replace" else ""
            outputs = old.outputs if step.op == "same" and old is not None else news
            reported: frozenset[str] = frozenset()
        else:
            try:
                id_, outputs, reported = self._apply(step, process, old, news, urn)
            except Exception as error:
                raise self.fail(step, error) from error
        secret_outputs = self._secret_outputs(outputs, secret_inputs, additional, reported)
        provider_state = self.providers_state_for(handle)
        self._record(
            urn,
            ResourceState(
                urn=urn,
                type=request.type,
                name=request.name,
                custom=True,
                id=id_,
                inputs=news,
                outputs=outputs,
                provider=f"{provider_state.urn}::{provider_state.id}",
                parent=request.parent,
                dependencies=tuple(request.dependencies),
                protect=request.protect,
                secret_inputs=secret_inputs,
                secret_outputs=secret_outputs,
                additional_secret_outputs=additional,
            ),
        )
        self.finish(step, outputs, secret_outputs)
        return id_, _with_secrets(outputs, secret_outputs)

    def providers_state_for(self, handle: _ProviderHandle) -> ResourceState:
        if handle.urn == self.default_provider_urn:
            with self.lock:
                state = self.news.get(handle.urn)
                if state is None:
                    state = self.default_provider_state()
                    self.news[handle.urn] = state
                    self.registered.insert(0, handle.urn)
                return state
        with self.lock:
            state = self.news.get(handle.urn) or self.olds.get(handle.urn)
        if state is None:
            raise EngineError(f"provider {handle.urn} has no state")
        return state

    @staticmethod
    def _secret_outputs(
        outputs: Mapping[str, Any],
        secret_inputs: frozenset[str],
        additional: tuple[str, ...],
        reported: frozenset[str],
    ) -> frozenset[str]:
        # The dynamic provider does not accept secrets: the engine re-marks outputs by input name, then adds
        # the resource's additional_secret_outputs.
        return frozenset(name for name in outputs if name in secret_inputs or name in additional) | reported

    def _plan(
        self, step: Step, diff: DiffResult, old: ResourceState, news: Mapping[str, Any], request: Any
    ) -> None:
        step.diff = diff
        changes = diff.changes
        changed_keys: list[str] = []
        if changes is None:
            # The server said "unknown": the engine compares the inputs itself, `__provider` included.
            changed_keys = sorted(
                key for key in set(old.inputs) | set(news) if old.inputs.get(key) != news.get(key)
            )
            changes = bool(changed_keys)
        replaces = list(diff.replaces)
        replace_on_changes = list(request.replaceOnChanges)
        # Only keys the engine knows changed can trigger replaceOnChanges; a Python provider reports none.
        for key in changed_keys:
            if ("*" in replace_on_changes or key in replace_on_changes) and key not in replaces:
                replaces.append(key)
        if not changes:
            step.op = "same"
        elif replaces:
            step.op = "replace"
            step.replaces = tuple(replaces)
            step.delete_before_replace = diff.delete_before_replace or bool(request.deleteBeforeReplace)
        else:
            step.op = "update"

    def _apply(
        self,
        step: Step,
        process: ProviderProcess,
        old: ResourceState | None,
        news: dict[str, Any],
        urn: str,
    ) -> tuple[str, dict[str, Any], frozenset[str]]:
        if step.op == "same" and old is not None:
            return old.id, old.outputs, frozenset()
        if step.op == "update" and old is not None:
            updated = process.update(old.id, old.outputs, news, old_inputs=old.inputs, urn=urn)
            return old.id, updated.outputs, updated.secret_names
        if step.op == "replace" and old is not None:
            if step.delete_before_replace:
                process.delete(old.id, old.outputs, old_inputs=old.inputs, urn=urn)
                with self.lock:
                    self.olds.pop(urn, None)
                self.checkpoint()
            else:
                with self.lock:
                    self.pending_deletes.append(old.but(pending_delete=True))
        created = process.create(news, urn=urn)
        return created.id, created.outputs, created.secret_names

    # -- deletions --------------------------------------------------------------------------------------

    def delete(self, resource: ResourceState, *, execute: bool) -> bool:
        """One delete step; False when it failed (the resource stays in the state)."""
        if resource.urn == self.default_provider_urn:
            return True
        step = Step(
            "delete",
            resource.urn,
            resource.name,
            resource.type,
            provider=resource.provider,
            replaced=resource.pending_delete,
        )
        self.begin(step, " (replaced)" if resource.pending_delete else "")
        if resource.protect:
            self.fail(step, EngineError(f"{resource.name} is protected: it cannot be deleted"))
            return False
        if (
            execute
            and resource.custom
            and resource.type != PROVIDER_TYPE
            and resource.type.startswith(f"{DYNAMIC_PACKAGE}:")
        ):
            try:
                self.provider_for(resource.provider).process().delete(
                    resource.id, resource.outputs, old_inputs=resource.inputs, urn=resource.urn
                )
            except Exception as error:
                self.fail(step, error)
                return False
        self.finish(step, None, frozenset())
        return True


def _ignore_changes(
    news: Mapping[str, Any], olds: Mapping[str, Any], ignored: Iterable[str]
) -> dict[str, Any]:
    result = dict(news)
    for key in ignored:
        if key in olds:
            result[key] = olds[key]
        else:
            result.pop(key, None)
    return result


class LocalEngine:
    """`pulumi up`/`preview`/`refresh`/`destroy` for one stack, without the Pulumi CLI.

    `program` is a callable (the program's body) or a project directory whose `__main__.py` runs;
    `config` is the stack config with namespaced keys (`ovh:endpoint`), given to the program and, as the
    engine does, to the default provider's `configure()`. `progress` receives a readable log, line by line.
    """

    def __init__(
        self,
        state_path: str | Path,
        *,
        config: Mapping[str, Any] | None = None,
        program: Program | None = None,
        project: str = "project",
        stack: str = "stack",
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        parallel: int = DEFAULT_PARALLEL,
        secret_config: Iterable[str] = (),
        passphrase: str | None = None,
        progress: Callable[[str], None] | TextIO | None = None,
        python: str | None = None,
    ) -> None:
        if parallel < 1:
            raise ValueError(f"parallel must be at least 1, got {parallel}")
        self.state_path = Path(state_path)
        self.config = dict(config or {})
        self.program = program
        self.project = project
        self.stack = stack
        self.env = dict(env or {})
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self.parallel = parallel
        self.secret_config = frozenset(secret_config)
        self.python = python
        self._progress = _line_writer(progress)
        self._say_lock = threading.Lock()
        self._state = StateFile(self.state_path, passphrase=passphrase)

    @classmethod
    def for_project(
        cls,
        project_dir: str | Path,
        state_path: str | Path,
        *,
        stack: str,
        config: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> LocalEngine:
        """An engine for a project directory: its `Pulumi.yaml` name and `Pulumi.<stack>.yaml` config, which
        `config` overrides key by key."""
        directory = Path(project_dir).resolve()
        project_file = directory / "Pulumi.yaml"
        if not project_file.exists():
            raise EngineError(f"{directory}: no Pulumi.yaml; pass the directory of a Pulumi project")
        project = yaml.safe_load(project_file.read_text(encoding="utf-8")) or {}
        name = str(project.get("name") or "")
        if not name:
            raise EngineError(f"{project_file}: `name` is missing")
        merged = _config_section(project.get("config"), name, project_file)
        stack_file = directory / f"Pulumi.{stack}.yaml"
        if stack_file.exists():
            stack_document = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
            merged.update(_config_section(stack_document.get("config"), name, stack_file))
        merged.update(config or {})
        main = directory / str(project.get("main") or ".")
        options.setdefault("cwd", directory)
        return cls(state_path, config=merged, program=main, project=name, stack=stack, **options)

    # -- operations -------------------------------------------------------------------------------------

    def up(self, program: Program | None = None, *, expect_no_changes: bool = False) -> RunResult:
        return self._update(program, preview=False, expect_no_changes=expect_no_changes)

    def preview(self, program: Program | None = None, *, expect_no_changes: bool = False) -> RunResult:
        return self._update(program, preview=True, expect_no_changes=expect_no_changes)

    def refresh(self, *, preview_only: bool = False, expect_no_changes: bool = False) -> RunResult:
        run = _Run(self, "refresh", preview_only)
        run.load()
        self._say(f"{'Previewing refresh' if preview_only else 'Refreshing'} {self.project}/{self.stack}")
        targets = [
            old
            for old in run.olds.values()
            if old.custom and old.type != PROVIDER_TYPE and old.type.startswith(f"{DYNAMIC_PACKAGE}:")
        ]
        try:
            with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="refresh") as pool:
                list(pool.map(lambda old: self._refresh_one(run, old), targets))
        finally:
            run.stop_providers()
        return self._finish(run, expect_no_changes)

    def destroy(self) -> RunResult:
        run = _Run(self, "destroy", False)
        run.load()
        self._say(f"Destroying {self.project}/{self.stack}")
        try:
            for resource in reversed(run.pending_deletes + [run.olds[urn] for urn in run.order]):
                if not run.delete(resource, execute=True):
                    break
                with run.lock:
                    run.olds.pop(resource.urn, None)
                    if resource in run.pending_deletes:
                        run.pending_deletes.remove(resource)
                run.checkpoint()
        finally:
            run.stop_providers()
        return self._finish(run, False)

    def resources(self) -> list[ResourceState]:
        """The stored state (secrets decrypted), in the order the engine keeps it."""
        return self._state.load()

    def resource(self, name: str) -> ResourceState:
        matches = [r for r in self.resources() if r.name == name and not r.pending_delete]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r} in the state")
        return matches[0]

    # -- internals --------------------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        if self._progress is not None:
            with self._say_lock:
                self._progress(text)

    def _urn(self, type_: str, name: str) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::{type_}::{name}"

    def _provider_env(self) -> dict[str, str]:
        # The CLI hands plugins its environment plus the project name and the whole stack config.
        env = {
            "PULUMI_PROJECT": self.project,
            "PULUMI_CONFIG": json.dumps(self.config),
        }
        env.update(self.env)
        return env

    def _update(self, program: Program | None, *, preview: bool, expect_no_changes: bool) -> RunResult:
        chosen = program if program is not None else self.program
        if chosen is None:
            raise EngineError("no program: pass one to LocalEngine(program=...) or to up()/preview()")
        run = _Run(self, "preview" if preview else "up", preview)
        run.load()
        self._say(f"{'Previewing update' if preview else 'Updating'} {self.project}/{self.stack}")
        try:
            self._run_program(run, chosen)
            vanished = [run.olds[urn] for urn in reversed(run.order) if urn not in run.news]
            if run.result.ok:
                for resource in [*reversed(run.pending_deletes), *vanished]:
                    if not run.delete(resource, execute=not preview):
                        break
                    if not preview:
                        with run.lock:
                            run.olds.pop(resource.urn, None)
                            if resource in run.pending_deletes:
                                run.pending_deletes.remove(resource)
                        run.checkpoint()
        finally:
            run.stop_providers()
        return self._finish(run, expect_no_changes)

    def _finish(self, run: _Run, expect_no_changes: bool) -> RunResult:
        result = run.result
        result.ended = time.time()
        counts = (
            ", ".join(f"{count} {op}" for op, count in sorted(result.summary().items())) or "no resources"
        )
        status = "failed" if not result.ok else "done"
        if result.stack_outputs:
            self._say("Outputs:")
            for key, value in sorted(result.stack_outputs.items()):
                shown = "[secret]" if key in result.stack_secret_outputs else json.dumps(value, default=str)
                self._say(f"    {key}: {shown}")
        self._say(f"{run.operation} {status} in {result.ended - result.started:.1f}s: {counts}")
        if expect_no_changes and result.changed:
            raise ChangesNotExpectedError(result)
        return result

    def _refresh_one(self, run: _Run, old: ResourceState) -> None:
        step = Step("read", old.urn, old.name, old.type, provider=old.provider)
        run.begin(step)
        try:
            process = run.provider_for(old.provider).process()
            read = process.read(old.id, old.outputs, inputs=old.inputs, urn=old.urn)
            if read.id is None:
                step.gone = True
                if not run.preview:
                    with run.lock:
                        run.olds.pop(old.urn, None)
                    run.checkpoint()
                run.finish(step, None, frozenset())
                return
            inputs = read.inputs if read.inputs is not None else old.inputs
            diff = process.diff(read.id, read.outputs, inputs, old_inputs=inputs, urn=old.urn)
            step.diff = diff
            step.drift = diff.changes if diff.changes is not None else read.outputs != old.outputs
        except Exception as error:
            run.fail(step, error)
            return
        secret_outputs = (
            frozenset(
                name
                for name in read.outputs
                if name in old.secret_outputs
                or name in old.secret_inputs
                or name in old.additional_secret_outputs
            )
            | read.secret_names
        )
        if not run.preview:
            with run.lock:
                run.olds[old.urn] = old.but(
                    id=read.id,
                    inputs=inputs,
                    outputs=read.outputs,
                    secret_outputs=secret_outputs,
                    secret_inputs=frozenset(old.secret_inputs & set(inputs)),
                )
            run.checkpoint()
        run.finish(step, read.outputs, secret_outputs)

    def _run_program(self, run: _Run, program: Program) -> None:
        body, directory = _program_body(program)
        thread = threading.Thread(
            target=self._program_thread, args=(run, body, directory), name=f"pulumi-{run.operation}"
        )
        thread.start()
        thread.join()

    def _program_thread(self, run: _Run, body: Callable[[], object], directory: Path | None) -> None:
        # A thread of its own: a fresh context for Pulumi's context variables, and its own event loop whose
        # default executor, sized from `parallel`, runs the registrations as the language host does.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_quiet_step_failures)
        executor = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="registration")
        loop.set_default_executor(executor)
        try:
            with _project_directory(directory):
                set_all_config(
                    {
                        key: value if isinstance(value, str) else json.dumps(value)
                        for key, value in self.config.items()
                    },
                    sorted(self.secret_config),
                )
                set_mocks(
                    _PassThroughMocks(),
                    project=self.project,
                    stack=self.stack,
                    preview=run.preview,
                    monitor=_Monitor(run),
                )
                # MockSettings leaves the pending-outputs set to a default shared by every context: give this
                # run its own, or tasks of an earlier run (on a closed loop) are awaited by this one.
                SETTINGS.outputs = set()
                try:
                    loop.run_until_complete(run_pulumi_func(lambda: _discard(body())))
                    outputs, secret_names = loop.run_until_complete(_stack_outputs())
                    run.result.stack_outputs, run.result.stack_secret_outputs = outputs, secret_names
                except Exception as error:
                    if not _caused_by_step(error):
                        # As the CLI does for a program that raises: the whole traceback.
                        run.result.program_error = "".join(traceback.format_exception(error)).rstrip()
                        self._say(f"! the program failed:\n{run.result.program_error}")
        finally:
            # In-flight steps finish, as the engine lets running steps end after an error.
            executor.shutdown(wait=True)
            for task in asyncio.all_tasks(loop):
                task.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(task)
            loop.close()
            asyncio.set_event_loop(None)
            # Outputs of failed resources hold their exception; collect them here, not at some random point
            # of the caller's thread.
            gc.collect()


def _discard(_value: object) -> None:
    """Programs' bodies return anything (runpy returns the module globals); the runtime wants None."""


def _line_writer(progress: Callable[[str], None] | TextIO | None) -> Callable[[str], None] | None:
    if progress is None or callable(progress):
        return progress
    stream = progress

    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return write


def _quiet_step_failures(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The outputs of a failed resource carry its failure, unread when nothing depends on them; the failure is
    already reported in the result, so only other problems reach asyncio's handler."""
    error = context.get("exception")
    if isinstance(error, BaseException) and _caused_by_step(error):
        return
    loop.default_exception_handler(context)


def _caused_by_step(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _StepFailedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _stack_outputs() -> tuple[dict[str, Any], frozenset[str]]:
    """What the program exported (unknown values, in a preview, as None) and which exports are secret."""
    root = get_root_resource()
    exported: Mapping[str, Any] = getattr(root, "outputs", {}) or {}
    values: dict[str, Any] = {}
    secret_names: set[str] = set()
    for key, value in exported.items():
        output = Output.from_input(value)
        values[key] = await output.future()
        if await output.is_secret():
            secret_names.add(key)
    return values, frozenset(secret_names)


def _program_body(program: Program) -> tuple[Callable[[], object], Path | None]:
    if callable(program):
        return program, None
    path = Path(program).resolve()
    main = path / "__main__.py" if path.is_dir() else path
    if not main.exists():
        raise EngineError(f"{path}: no __main__.py to run")

    def run_main() -> object:
        return runpy.run_path(str(path), run_name="__main__")

    return run_main, path if path.is_dir() else path.parent


@contextlib.contextmanager
def _project_directory(directory: Path | None) -> Iterator[None]:
    """Run in the project directory, as the language host does; forget the project's own modules after."""
    if directory is None:
        yield
        return
    before = set(sys.modules)
    previous = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(previous)
        for name in set(sys.modules) - before:
            if _imported_from(sys.modules.get(name.partition(".")[0])) == directory.resolve():
                del sys.modules[name]


def _imported_from(top_level_module: Any) -> Path | None:
    """The folder a top-level module or package was found in (a project's own modules: the project folder).

    Only those are forgotten: a package installed from a folder inside the project (an editable install of
    the provider, a virtualenv in `.venv`) must stay, or the next run pickles a second copy of its classes.
    """
    module_file = getattr(top_level_module, "__file__", None)
    if not module_file:
        return None
    path = Path(module_file).resolve()
    return path.parent.parent if path.name == "__init__.py" else path.parent


def _config_section(section: Any, project: str, source: Path) -> dict[str, Any]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise EngineError(f"{source}: `config` must be a mapping of keys to values")
    values: dict[str, Any] = {}
    for raw_key, raw_value in section.items():
        key = str(raw_key) if ":" in str(raw_key) else f"{project}:{raw_key}"
        value = raw_value
        if isinstance(value, dict) and "secure" in value:
            raise EngineError(
                f"{source}: {key} is encrypted (`secure:`), which only the Pulumi CLI can decrypt; "
                f"pass its value in `config` instead"
            )
        if (
            isinstance(value, dict)
            and set(value) <= {"value", "default", "type", "description", "secret"}
            and ("value" in value or "default" in value)
        ):
            value = value.get("value", value.get("default"))
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        values[key] = value
    return values
