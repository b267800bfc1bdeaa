"""A real `python -m pulumi.dynamic` server in a subprocess, driven over gRPC as the engine drives it.

What its calls send and return is in `provider_calls.py`; the names tests use are importable from here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import grpc
from google.protobuf import struct_pb2
from pulumi.dynamic import ResourceProvider
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from testkit.properties import from_struct, to_struct, unwrap_secrets
from testkit.provider_calls import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    OutputLine,
    ProviderCallError,
    ProviderStartError,
    ReadResult,
    Stream,
    UpdateResult,
    engine_variables,
    pickle_provider,
)
from testkit.provider_calls import (
    python_path_env as python_path_env,
)

PROVIDER_KEY = "__provider"
# What the engine waits for before declaring a plugin broken; a cold start on a loaded machine takes seconds.
_START_TIMEOUT_S = 60.0
# The engine's grace period between SIGINT and SIGKILL when it tears a plugin down.
_STOP_GRACE_S = 5.0
_DEFAULT_URN = "urn:pulumi:stack::project::pulumi-python:dynamic:Resource::resource"
Props = Mapping[str, Any]


class ProviderProcess:
    """One provider process, as the engine runs one per provider resource.

    Inputs are plain dicts. `__provider` is added from `provider` (pickled as `Resource.__init__` pickles it)
    unless the bag already holds one. Secrets given wrapped (`properties.secret`) are sent in plain text,
    since the dynamic provider does not accept secrets; results are plain dicts.

    `env` is added to the inherited environment (the plugin inherits the CLI's); `echo` receives every line
    the provider prints, which are also kept in `lines`.
    """

    def __init__(
        self,
        provider: ResourceProvider | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        python: str | None = None,
        echo: Callable[[OutputLine], None] | None = None,
        call_timeout: float | None = None,
        start_timeout: float = _START_TIMEOUT_S,
    ) -> None:
        self.pickled_provider: str | None = pickle_provider(provider) if provider is not None else None
        self._env = {**os.environ, **(env or {})}
        self._cwd = str(cwd) if cwd is not None else None
        self._python = python or sys.executable
        self._echo = echo
        self._call_timeout = call_timeout
        self._start_timeout = start_timeout
        self._lines: list[OutputLine] = []
        self._lines_changed = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._channel: grpc.Channel | None = None
        self._stub: Any = None
        self._readers: list[threading.Thread] = []
        self._configured = False
        self.port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._process is not None:
            raise RuntimeError("provider process already started")
        # -u: the port line must not sit in a buffer. A new session gives the process its own group, which
        # stop() and kill() signal as the engine does.
        self._process = subprocess.Popen(
            [self._python, "-u", "-m", "pulumi.dynamic"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=self._env,
            cwd=self._cwd,
            start_new_session=True,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        port_line: list[str] = []
        port_ready = threading.Event()
        self._readers = [
            threading.Thread(
                target=self._drain,
                args=(self._process.stdout, "stdout", port_line, port_ready),
                name=f"provider-{self._process.pid}-stdout",
                daemon=True,
            ),
            threading.Thread(
                target=self._drain,
                args=(self._process.stderr, "stderr", None, None),
                name=f"provider-{self._process.pid}-stderr",
                daemon=True,
            ),
        ]
        for reader in self._readers:
            reader.start()
        if not port_ready.wait(self._start_timeout) or not port_line or not port_line[0].strip().isdigit():
            printed = "\n".join(line.text for line in self.lines) or "(nothing)"
            self.kill()
            raise ProviderStartError(
                f"`{self._python} -m pulumi.dynamic` did not print its port within "
                f"{self._start_timeout:.0f} s; it printed:\n{printed}"
            )
        self.port = int(port_line[0])
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=_GRPC_CHANNEL_OPTIONS)
        self._stub = provider_pb2_grpc.ResourceProviderStub(self._channel)
        return self

    def _drain(
        self,
        stream: Any,
        name: Stream,
        port_line: list[str] | None,
        port_ready: threading.Event | None,
    ) -> None:
        try:
            for raw in stream:
                text = raw.rstrip("\n")
                if port_line is not None and port_ready is not None and not port_ready.is_set():
                    port_line.append(text)
                    port_ready.set()
                    continue
                line = OutputLine(name, text)
                with self._lines_changed:
                    self._lines.append(line)
                    self._lines_changed.notify_all()
                if self._echo is not None:
                    self._echo(line)
        finally:
            if port_ready is not None:
                port_ready.set()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """End the process as the engine ends a plugin: SIGINT to its group, SIGKILL after 5 s."""
        # Closing our side first spares the client the server's GOAWAY (logged by gRPC's C core).
        if self._channel is not None:
            self._channel.close()
            self._channel = None
            self._stub = None
        self._terminate(signal.SIGINT, grace=_STOP_GRACE_S)

    def kill(self) -> None:
        """SIGKILL the process group at once, as a crash would; later calls fail as they would on a crash."""
        self._terminate(signal.SIGKILL, grace=0.0)

    def _terminate(self, first_signal: signal.Signals, *, grace: float) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            self._signal_group(process, first_signal)
            try:
                process.wait(timeout=grace if grace > 0 else 10.0)
            except subprocess.TimeoutExpired:
                self._signal_group(process, signal.SIGKILL)
                process.wait()
        for reader in self._readers:
            reader.join(timeout=5.0)

    @staticmethod
    def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    def __enter__(self) -> Self:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what the provider printed ---------------------------------------------------------------------------

    @property
    def lines(self) -> list[OutputLine]:
        with self._lines_changed:
            return list(self._lines)

    @property
    def output(self) -> str:
        """Everything printed after the port line, stdout and stderr interleaved as read."""
        return "\n".join(line.text for line in self.lines)

    def wait_for_line(self, predicate: Callable[[str], bool] | str, timeout: float = 10.0) -> str:
        """The first printed line matching `predicate` (callable or substring), waiting up to `timeout`."""
        matches = predicate if callable(predicate) else (lambda text: predicate in text)
        deadline = time.monotonic() + timeout
        with self._lines_changed:
            while True:
                for line in self._lines:
                    if matches(line.text):
                        return line.text
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no line matching {predicate!r} within {timeout} s")
                self._lines_changed.wait(remaining)

    # -- gRPC ------------------------------------------------------------------------------------------------

    def _call(self, method: str, request: Any) -> Any:
        if self._stub is None:
            raise RuntimeError("provider process not running: use start() or a with block")
        if method != "Configure" and not self._configured:
            raise RuntimeError("call configure() first: the engine configures every provider before using it")
        try:
            return getattr(self._stub, method)(request, timeout=self._call_timeout)
        except grpc.RpcError as error:
            call = cast(grpc.Call, error)
            details = call.details() or ""
            if call.code() == grpc.StatusCode.UNAVAILABLE and self._process is not None:
                # A dying process closes its socket a moment before it can be reaped: wait for the exit code.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=2.0)
            if not self.running:
                # Give the reader threads a moment to collect the last words of a dying process.
                for reader in self._readers:
                    reader.join(timeout=1.0)
                tail = "\n".join(line.text for line in self.lines[-20:])
                details = (
                    f"provider process exited with code {self.returncode}: {details}"
                    + (f"\nlast output:\n{tail}" if tail else "")
                ).strip()
            raise ProviderCallError(method, call.code(), details) from None

    def _with_provider(self, props: Mapping[str, Any]) -> dict[str, Any]:
        bag = dict(props)
        if PROVIDER_KEY not in bag:
            if self.pickled_provider is None:
                raise ValueError(f"no {PROVIDER_KEY} in the properties and no provider to pickle")
            bag[PROVIDER_KEY] = self.pickled_provider
        plain, _secret_names = unwrap_secrets(bag)
        return plain

    @staticmethod
    def _result(struct: struct_pb2.Struct) -> tuple[dict[str, Any], frozenset[str]]:
        return unwrap_secrets(from_struct(struct))

    def configure(
        self,
        config: Mapping[str, Any],
        *,
        urn: str = "",
        name: str = "",
        type_: str = "",
    ) -> None:
        """`Configure`, with `variables` and `args` as the engine sends them (stack config keys namespaced)"""
        request = provider_pb2.ConfigureRequest(
            variables=engine_variables(config, "pulumi-python"),
            args=to_struct(config),
            acceptSecrets=True,
            acceptResources=True,
            sends_old_inputs=True,
            sends_old_inputs_to_delete=True,
            urn=urn,
            name=name,
            type=type_,
        )
        self._call("Configure", request)
        self._configured = True

    def check(
        self, olds: Mapping[str, Any], news: Mapping[str, Any], *, urn: str = _DEFAULT_URN
    ) -> CheckResult:
        request = provider_pb2.CheckRequest(
            urn=urn,
            olds=to_struct(self._with_provider(olds) if olds else {}),
            news=to_struct(self._with_provider(news)),
        )
        response = cast(provider_pb2.CheckResponse, self._call("Check", request))
        inputs, secret_names = unwrap_secrets(from_struct(response.inputs, keep_unknowns=True))
        failures = [CheckFailure(f.property, f.reason) for f in response.failures]
        return CheckResult(inputs, failures, secret_names)

    def _change(
        self, id_: str, olds: Props, news: Props, old_inputs: Props | None, urn: str
    ) -> dict[str, Any]:
        """The fields `Diff` and `Update` requests share."""
        return {
            "id": id_,
            "urn": urn,
            "olds": to_struct(self._with_provider(olds)),
            "news": to_struct(self._with_provider(news)),
            "old_inputs": to_struct(self._with_provider(old_inputs) if old_inputs else {}),
        }

    def diff(
        self, id_: str, olds: Props, news: Props, *, old_inputs: Props | None = None, urn: str = _DEFAULT_URN
    ) -> DiffResult:
        request = provider_pb2.DiffRequest(**self._change(id_, olds, news, old_inputs, urn))
        response = cast(provider_pb2.DiffResponse, self._call("Diff", request))
        changes: bool | None = {
            provider_pb2.DiffResponse.DIFF_SOME: True,
            provider_pb2.DiffResponse.DIFF_NONE: False,
        }.get(response.changes)
        return DiffResult(changes, list(response.replaces), bool(response.deleteBeforeReplace))

    def create(self, props: Mapping[str, Any], *, urn: str = _DEFAULT_URN) -> CreateResult:
        request = provider_pb2.CreateRequest(urn=urn, properties=to_struct(self._with_provider(props)))
        response = cast(provider_pb2.CreateResponse, self._call("Create", request))
        outputs, secret_names = self._result(response.properties)
        return CreateResult(response.id, outputs, secret_names)

    def read(
        self,
        id_: str,
        props: Mapping[str, Any],
        *,
        inputs: Mapping[str, Any] | None = None,
        urn: str = _DEFAULT_URN,
    ) -> ReadResult:
        request = provider_pb2.ReadRequest(
            id=id_,
            urn=urn,
            properties=to_struct(self._with_provider(props)),
            inputs=to_struct(self._with_provider(inputs) if inputs else {}),
        )
        response = cast(provider_pb2.ReadResponse, self._call("Read", request))
        outputs, secret_names = self._result(response.properties)
        new_inputs = None
        if response.HasField("inputs") and len(response.inputs.fields) > 0:
            new_inputs, _ = self._result(response.inputs)
        return ReadResult(response.id or None, outputs, new_inputs, secret_names)

    def update(
        self, id_: str, olds: Props, news: Props, *, old_inputs: Props | None = None, urn: str = _DEFAULT_URN
    ) -> UpdateResult:
        request = provider_pb2.UpdateRequest(**self._change(id_, olds, news, old_inputs, urn))
        response = cast(provider_pb2.UpdateResponse, self._call("Update", request))
        outputs, secret_names = self._result(response.properties)
        return UpdateResult(outputs, secret_names)

    def delete(
        self,
        id_: str,
        props: Mapping[str, Any],
        *,
        old_inputs: Mapping[str, Any] | None = None,
        urn: str = _DEFAULT_URN,
    ) -> None:
        request = provider_pb2.DeleteRequest(
            id=id_,
            urn=urn,
            properties=to_struct(self._with_provider(props)),
            old_inputs=to_struct(self._with_provider(old_inputs) if old_inputs else {}),
        )
        self._call("Delete", request)
