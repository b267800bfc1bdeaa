"""OVH's own `ovh` client pointed at the emulator, and checks of its answers against OVH's OpenAPI file."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ovh
from ovh_emulator import openapi
from ovh_emulator.testing import RunningEmulator

SERVER = "ns1000001.emulator.ovh"


def ovh_client(emulator: RunningEmulator, **overrides: str) -> ovh.Client:
    """The real `ovh` client, signing real requests to the emulator (its URL registered as an endpoint)."""
    endpoint = f"emulator-{emulator.port}"
    ovh.client.ENDPOINTS[endpoint] = emulator.url
    credentials = {
        "application_key": emulator.application_key,
        "application_secret": emulator.application_secret,
        "consumer_key": emulator.consumer_key,
        **overrides,
    }
    return ovh.Client(endpoint=endpoint, **credentials)


def assert_schema(schema_name: str, answer: Any) -> None:
    """The answer matches OVH's schema, with no property the schema does not describe."""
    errors = [error.message for error in openapi.validator_for(schema_name, strict=True).iter_errors(answer)]
    assert errors == [], f"{schema_name}: {errors}"


def wait_until(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Polls `condition` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for_task(client: ovh.Client, server: str, task_id: int, *, timeout: float = 30.0) -> dict[str, Any]:
    """Polls the task through the API until it has ended; returns it."""

    def ended() -> dict[str, Any] | None:
        task: dict[str, Any] = client.get(f"/dedicated/server/{server}/task/{task_id}")
        return task if task["status"] not in ("init", "todo", "doing") else None

    result: dict[str, Any] = wait_until(ended, timeout=timeout, what=f"task {task_id} to end")
    return result


def byoi_body(url: str, image_type: str = "raw", **customizations: Any) -> dict[str, Any]:
    return {
        "operatingSystem": "byoi_64",
        "customizations": {
            "imageURL": url,
            "imageType": image_type,
            "efiBootloaderPath": "\\efi\\debian\\grubx64.efi",
            **customizations,
        },
    }
