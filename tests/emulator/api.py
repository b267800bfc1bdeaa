"""OVH's own `ovh` client pointed at the emulator, and checks of its answers against OVH's OpenAPI file."""

from __future__ import annotations

import time
from typing import Any

import ovh
import requests
from ovh_emulator import auth, openapi
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import ovh_client as ovh_client
from testkit.polling import wait_until

SERVER = "ns1000001.emulator.ovh"


def assert_answer(method: str, route: str, answer: Any) -> None:
    """The answer is what OVH's file documents for `METHOD route`, with no undescribed property."""
    errors = openapi.answer_errors(method, route, answer, strict=True)
    assert errors == [], f"{method} {route}: {errors}"


def signed_request(
    emulator: RunningEmulator,
    method: str,
    path: str,
    body: str = "",
    *,
    signed_body: str | None = None,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """A request signed like OVH's client signs, with room to get one part wrong on purpose."""
    url = emulator.url + path
    now = str(int(time.time()) if timestamp is None else timestamp)
    signature = auth.signature(
        emulator.application_secret,
        emulator.consumer_key,
        method,
        url,
        body if signed_body is None else signed_body,
        now,
    )
    sent = {
        "X-Ovh-Application": emulator.application_key,
        "X-Ovh-Consumer": emulator.consumer_key,
        "X-Ovh-Timestamp": now,
        "X-Ovh-Signature": signature,
        "Content-Type": "application/json",
        **(headers or {}),
    }
    return requests.request(method, url, data=body.encode(), headers=sent, timeout=30)


def assert_schema(schema_name: str, answer: Any) -> None:
    """The answer matches OVH's schema, with no property the schema does not describe."""
    errors = [error.message for error in openapi.validator_for(schema_name, strict=True).iter_errors(answer)]
    assert errors == [], f"{schema_name}: {errors}"


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


def reinstall(client: ovh.Client, server: str, body: dict[str, Any]) -> dict[str, Any]:
    task: dict[str, Any] = client.post(f"/dedicated/server/{server}/reinstall", **body)
    return task


def install_status(client: ovh.Client, server: str) -> dict[str, Any]:
    status: dict[str, Any] = client.get(f"/dedicated/server/{server}/install/status")
    return status


def current_step(client: ovh.Client, server: str) -> str | None:
    """Comment of the step being done, or None when no install runs."""
    try:
        progress = install_status(client, server)["progress"]
    except ovh.exceptions.ResourceNotFoundError:
        return None
    return next((step["comment"] for step in progress if step["status"] == "doing"), None)
