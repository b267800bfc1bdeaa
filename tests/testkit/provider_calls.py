"""What travels between the engine and a provider process: the pickled provider it sends, and the results
and errors of its calls as the tests see them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import grpc
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime._serialization import _serialize

from testkit.properties import unwrap_secrets

Stream = Literal["stdout", "stderr"]


def pickle_provider(provider: ResourceProvider) -> str:
    """The `__provider` payload, produced exactly as `pulumi.dynamic.Resource.__init__` produces it."""
    serialized, _contains_secrets = _serialize(True, serialize_provider, provider)
    return cast(str, serialized)


@dataclass(frozen=True)
class OutputLine:
    stream: Stream
    text: str


@dataclass(frozen=True)
class CheckFailure:
    property: str
    reason: str


@dataclass(frozen=True)
class CheckResult:
    inputs: dict[str, Any]
    failures: list[CheckFailure]
    secret_names: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class DiffResult:
    """What the server forwards of `ResourceProvider.diff`: `changes=None` means the provider did not say."""

    changes: bool | None
    replaces: list[str] = field(default_factory=list)
    delete_before_replace: bool = False


@dataclass(frozen=True)
class CreateResult:
    id: str
    outputs: dict[str, Any]
    secret_names: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ReadResult:
    """`id` is None when the provider reports the resource gone; `inputs` only when read rewrote them."""

    id: str | None
    outputs: dict[str, Any]
    inputs: dict[str, Any] | None = None
    secret_names: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UpdateResult:
    outputs: dict[str, Any]
    secret_names: frozenset[str] = frozenset()


class ProviderStartError(RuntimeError):
    """The provider server did not come up; carries what it printed."""


class ProviderCallError(Exception):
    """A gRPC call to the provider failed: the provider raised, or its process is gone.

    `details` is the server's text (for an exception raised by the provider, the full traceback, as the CLI
    shows it); `reason` is its last line(s), the exception itself.
    """

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        self.method = method
        self.code = code
        self.details = details
        self.reason = _exception_text(details)
        super().__init__(f"{method} failed ({code.name}): {self.reason}")


def _exception_text(details: str) -> str:
    """The exception line(s) at the end of a Python traceback, or the whole text when it is no traceback."""
    if "Traceback (most recent call last)" not in details:
        return details.strip()
    lines = details.rstrip().splitlines()
    last_frame = max(i for i, line in enumerate(lines) if line.startswith("  File ") or i == 0)
    rest = lines[last_frame + 1 :]
    # Source lines and caret markers under the frame are indented by four; the exception starts unindented.
    while rest and rest[0].startswith("    "):
        rest = rest[1:]
    return "\n".join(rest).strip() or details.strip()


def engine_variables(config: Mapping[str, Any], package: str) -> dict[str, str]:
    # The engine's older spelling of the config: `<package>:config:<key>`, plain strings, structured values
    # JSON-encoded, secrets unwrapped, `version` left out.
    plain, _ = unwrap_secrets(config)
    return {
        f"{package}:config:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in plain.items()
        if key != "version"
    }


def python_path_env(*paths: str | Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`PYTHONPATH` with `paths` first, so a provider process can import classes pickled by reference."""
    existing = (base if base is not None else os.environ).get("PYTHONPATH", "")
    parts: Sequence[str] = [str(p) for p in paths] + ([existing] if existing else [])
    return {"PYTHONPATH": os.pathsep.join(parts)}
