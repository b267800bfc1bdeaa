"""OVH's own client pointed at the emulator, what the emulator recorded, and the checksums tests give it:
the same helpers for every test folder."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import ovh
from ovh_emulator.testing import RunningEmulator

REINSTALL = "POST /1.0/dedicated/server/{serviceName}/reinstall"


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


def writes(emulator: RunningEmulator) -> dict[str, int]:
    """Every call of OVH's API the emulator received that is not a read."""
    return {
        route: count for route, count in emulator.stats().items() if not route.startswith(("GET", "HEAD"))
    }


def installs(emulator: RunningEmulator, service_name: str) -> list[dict[str, Any]]:
    """The emulator's install history of a server, oldest first."""
    history: list[dict[str, Any]] = emulator.server(service_name)["installs"]
    return history


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sha512(path: Path) -> str:
    return hashlib.sha512(path.read_bytes()).hexdigest()


def terraform_polls(seconds: float) -> int:
    """How often OVH's Terraform provider reads the task during an install: 3 s backing off to 10 s."""
    waited, wait, polls = 0.0, 3.0, 0
    while waited < seconds:
        waited += wait
        polls += 1
        wait = min(10.0, wait * 2)
    return polls
