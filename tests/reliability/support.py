"""Values and steps the reliability tests share."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovh_byoi.provider import ByoiProvider
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import REINSTALL as REINSTALL
from testkit.provider_process import CreateResult, ProviderProcess
from testkit.pulumi_cli import emulator_credentials as stack_config

from .ledger import InstallAccount, Ledger

# Distinctive values, so that finding one anywhere is never a coincidence.
APPLICATION_SECRET = "appsecret-Zq81vK3nW0"
CONSUMER_KEY = "consumerkey-Hy62pL9dX4"
IMAGES_USER = "mirror"
IMAGES_PASSWORD = "imagespw-Rt57mQ2sE8"
HEADER_VALUE = "Basic " + base64.b64encode(f"{IMAGES_USER}:{IMAGES_PASSWORD}".encode()).decode()
EFI_DEBIAN = "\\efi\\debian\\grubx64.efi"
SPEED = 1500
SECRET_ARGS = ("--application-secret", APPLICATION_SECRET, "--consumer-key", CONSUMER_KEY)


def start_provider(emulator: RunningEmulator, env: dict[str, str], cwd: Path) -> ProviderProcess:
    """A configured provider process, as `pulumi up` starts one."""
    process = ProviderProcess(ByoiProvider(), env=env, cwd=cwd).start()
    process.configure(stack_config(emulator))
    return process


def create(provider: ProviderProcess, inputs: Mapping[str, Any]) -> CreateResult:
    """What `pulumi up` does for a new resource: check, then create with the checked inputs."""
    checked = provider.check({}, inputs)
    assert checked.ok, checked.failures
    return provider.create(checked.inputs)


def install_status(emulator: RunningEmulator, service_name: str) -> str | None:
    """The status of the server's latest install, as the emulator records it."""
    history = emulator.server(service_name)["installs"]
    return str(history[-1]["status"]) if history else None


@dataclass(frozen=True)
class Suite:
    """The suite's shared emulator and provider process, with what a test needs to work on them: servers of
    its own, inputs, faults, and the ledger that accounts for its installs."""

    ovh_api: RunningEmulator
    provider: ProviderProcess
    new_server: Callable[[], str]
    image_inputs: Callable[..., dict[str, Any]]
    inject: Callable[[dict[str, Any]], None]
    ledger: Ledger

    def assert_installed_once(
        self, server: str, intended: int = 1, *, must_end: bool = True
    ) -> InstallAccount:
        """The server's installs are the `intended` ones: none repeated, none lost."""
        account = self.ledger.account(self.ovh_api, server, intended=intended, must_end=must_end)
        assert account.duplicates == 0 and account.lost == 0, account
        return account

    @staticmethod
    def printed_since(process: ProviderProcess, lines_before: int) -> str:
        return "\n".join(line.text for line in process.lines[lines_before:])
