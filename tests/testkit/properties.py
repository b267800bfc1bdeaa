"""Property bags as the engine exchanges them with a provider: protobuf structs, secrets, unknowns."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar, cast

from google.protobuf import struct_pb2
from pulumi.output import Unknown
from pulumi.runtime import rpc

__all__ = [
    "from_struct",
    "is_secret",
    "secret",
    "to_struct",
    "unwrap_secrets",
]

_T = TypeVar("_T")


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    # rpc.serialize_properties is a coroutine; callers may be executor threads of a Pulumi program (no running
    # loop) or code already inside a running loop, where a nested run_until_complete is refused.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coroutine)
        finally:
            loop.close()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future: concurrent.futures.Future[_T] = pool.submit(_run, coroutine)
        return future.result()


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    """Serialize plain values (and `pulumi.output.Unknown`) the way the SDK does."""
    return cast(struct_pb2.Struct, _run(rpc.serialize_properties(dict(props), {})))


def from_struct(struct: struct_pb2.Struct, *, keep_unknowns: bool = False) -> dict[str, Any]:
    """Deserialize a property struct; secrets come back wrapped (see `unwrap_secrets`)."""
    return cast(dict[str, Any], rpc.deserialize_properties(struct, keep_unknowns))


def is_secret(value: Any) -> bool:
    return bool(rpc.is_rpc_secret(value))


def secret(value: Any) -> Any:
    """Wrap a value in the secret envelope the runtime uses on the wire."""
    return rpc.wrap_rpc_secret(value)


def _unwrap(value: Any) -> tuple[Any, bool]:
    if rpc.is_rpc_secret(value):
        inner, _ = _unwrap(value["value"])
        return inner, True
    if isinstance(value, Unknown):
        return value, False
    if isinstance(value, Mapping):
        found = False
        plain: dict[str, Any] = {}
        for key, item in value.items():
            plain[key], nested = _unwrap(item)
            found = found or nested
        return plain, found
    if isinstance(value, list | tuple):
        found = False
        items: list[Any] = []
        for item in value:
            plain_item, nested = _unwrap(item)
            items.append(plain_item)
            found = found or nested
        return items, found
    return value, False


def unwrap_secrets(props: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """Plain values, plus the names of the top-level properties that held a secret anywhere inside.

    A provider that does not accept secrets (every dynamic provider) gets plain values from the engine; the
    engine remembers secretness per top-level property name.
    """
    plain: dict[str, Any] = {}
    names: set[str] = set()
    for key, value in props.items():
        plain[key], found = _unwrap(value)
        if found:
            names.add(key)
    return plain, frozenset(names)
