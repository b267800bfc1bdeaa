"""Credentials: stack config, then OVH_* variables, then ovh.conf, as OVH's client reads them; never kept."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dill
import ovh.client
import pytest
from ovh_byoi.errors import CredentialsError
from ovh_byoi.ovh_api import OvhApi, OvhSettings, resolve_endpoint
from ovh_byoi.provider import ByoiProvider
from ovh_emulator.testing import RunningEmulator, start_emulator
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from testkit.provider_process import ProviderCallError, ProviderProcess, pickle_provider

from .inputs import valid_inputs

SERVER = "ns1000001.emulator.ovh"
OVH_VARIABLES = (
    "OVH_ENDPOINT",
    "OVH_APPLICATION_KEY",
    "OVH_APPLICATION_SECRET",
    "OVH_CONSUMER_KEY",
    "OVH_CLIENT_ID",
    "OVH_CLIENT_SECRET",
)


@pytest.fixture(scope="module")
def api_emulator() -> Iterator[RunningEmulator]:
    with start_emulator(servers=1) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No OVH_* variable and no ovh.conf but the test's own (the current folder's comes first)."""
    for name in OVH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def config_of(emulator: RunningEmulator, **overrides: str) -> dict[str, str]:
    config = {
        "ovh:endpoint": emulator.url,
        "ovh:applicationKey": emulator.application_key,
        "ovh:applicationSecret": emulator.application_secret,
        "ovh:consumerKey": emulator.consumer_key,
    }
    config.update(overrides)
    return {key: value for key, value in config.items() if value}


ADOPT = {**valid_inputs(), "adopt": True}


def write_ovh_conf(folder: Path, emulator: RunningEmulator, *, keys_in: str) -> None:
    """`folder`/ovh.conf: the emulator as the default endpoint, its keys in the section `keys_in`."""
    (folder / "ovh.conf").write_text(
        f"[default]\nendpoint={emulator.url}\n\n[{keys_in}]\n"
        f"application_key={emulator.application_key}\n"
        f"application_secret={emulator.application_secret}\n"
        f"consumer_key={emulator.consumer_key}\n"
    )


@contextmanager
def provider_in(folder: Path) -> Iterator[ProviderProcess]:
    """A configured provider process whose folder is `folder`.

    OVH's client resolves ./ovh.conf when it is imported: in the plugin, whose folder is the project's.
    """
    with ProviderProcess(ByoiProvider(), env={"OVH_BYOI_TIME_SCALE": "600"}, cwd=folder) as provider:
        provider.configure({"project:unrelated": "value"})
        yield provider


def test_the_stack_config_keys_of_ovhs_pulumi_provider_are_used(api_emulator: RunningEmulator) -> None:
    settings = OvhSettings.from_config(config_of(api_emulator).get)

    assert OvhApi.connect(settings, SERVER).server().name == SERVER


def test_the_stack_config_wins_over_the_environment(
    api_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVH_CONSUMER_KEY", "a-consumer-key-from-another-account")
    monkeypatch.setenv("OVH_ENDPOINT", "ovh-eu")
    settings = OvhSettings.from_config(config_of(api_emulator).get)

    assert OvhApi.connect(settings, SERVER).server().name == SERVER


def test_missing_keys_come_from_ovh_variables(
    api_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVH_ENDPOINT", api_emulator.url)
    monkeypatch.setenv("OVH_APPLICATION_KEY", api_emulator.application_key)
    monkeypatch.setenv("OVH_APPLICATION_SECRET", api_emulator.application_secret)
    monkeypatch.setenv("OVH_CONSUMER_KEY", api_emulator.consumer_key)

    assert OvhApi.connect(OvhSettings(), SERVER).server().name == SERVER


def test_then_from_ovh_conf_in_the_project_folder(api_emulator: RunningEmulator, tmp_path: Path) -> None:
    write_ovh_conf(tmp_path, api_emulator, keys_in=api_emulator.url)

    with provider_in(tmp_path) as provider:
        adopted = provider.create(provider.check({}, ADOPT).inputs)

    assert adopted.outputs["os"] == "debian12_64", "the server was read with the credentials of ovh.conf"


def test_an_endpoint_is_a_region_name_or_the_url_of_an_api() -> None:
    assert resolve_endpoint("ovh-ca") == "ovh-ca"
    assert resolve_endpoint("http://127.0.0.1:9/1.0/") == "http://127.0.0.1:9/1.0"


def test_an_api_url_is_called_without_changing_ovhs_table_of_regions(api_emulator: RunningEmulator) -> None:
    regions = dict(ovh.client.ENDPOINTS)
    settings = OvhSettings.from_config(config_of(api_emulator).get)

    assert OvhApi.connect(settings, SERVER).server().name == SERVER
    assert regions == ovh.client.ENDPOINTS, "every OVH client of the process shares that table"
    assert api_emulator.url not in ovh.client.ENDPOINTS


def test_oauth2_credentials_are_refused_for_an_api_url(api_emulator: RunningEmulator) -> None:
    settings = OvhSettings(endpoint=api_emulator.url, client_id="a-client-id", client_secret="its-secret")

    with pytest.raises(CredentialsError) as error:
        OvhApi.connect(settings, SERVER)
    assert "OAuth2 authentication is not compatible with endpoint " + api_emulator.url in str(error.value)
    assert "its-secret" not in str(error.value)


def test_a_regions_credentials_in_ovh_conf_never_go_to_an_api_url(
    api_emulator: RunningEmulator, tmp_path: Path
) -> None:
    # Valid keys, but in the section of OVH's EU region: an API URL reads only its own section.
    write_ovh_conf(tmp_path, api_emulator, keys_in="ovh-eu")

    with provider_in(tmp_path) as provider, pytest.raises(ProviderCallError) as refused:
        provider.create(provider.check({}, ADOPT).inputs)

    assert "Missing authentication information" in refused.value.reason
    assert "ovh:applicationKey" in refused.value.reason


@pytest.mark.parametrize(("endpoint", "expected"), [(None, "no endpoint"), ("ovh-mars", "unknown endpoint")])
def test_a_missing_or_unknown_endpoint_says_how_to_set_it(endpoint: str | None, expected: str) -> None:
    with pytest.raises(CredentialsError) as error:
        resolve_endpoint(endpoint)
    assert expected in str(error.value)
    assert "ovh:endpoint" in str(error.value) or "ovh-eu" in str(error.value)


def test_missing_credentials_say_which_keys_to_set(api_emulator: RunningEmulator) -> None:
    settings = OvhSettings.from_config(config_of(api_emulator, **{"ovh:applicationSecret": ""}).get)

    with pytest.raises(CredentialsError) as error:
        OvhApi.connect(settings, SERVER)
    assert "ovh:applicationSecret" in str(error.value)
    assert api_emulator.consumer_key not in str(error.value)


def test_settings_never_show_secrets(api_emulator: RunningEmulator) -> None:
    settings = OvhSettings.from_config(config_of(api_emulator).get)

    assert api_emulator.application_secret not in repr(settings)
    assert api_emulator.consumer_key not in repr(settings)


def test_configure_keeps_nothing_in_the_provider_object(api_emulator: RunningEmulator) -> None:
    provider = ByoiProvider()

    provider.configure(ConfigureRequest(Config(config_of(api_emulator), "project")))

    assert provider.__dict__ == {}, "dill pickles instance attributes into every resource's state"


def test_a_provider_pickled_after_configure_carries_no_credential(api_emulator: RunningEmulator) -> None:
    provider = ByoiProvider()
    provider.configure(ConfigureRequest(Config(config_of(api_emulator), "project")))

    payload = base64.b64decode(pickle_provider(provider))

    for secret in (api_emulator.application_secret, api_emulator.consumer_key, api_emulator.application_key):
        assert secret.encode() not in payload
    assert b"ovh_byoi.provider" in payload and b"ByoiProvider" in payload, "pickled by reference"
    assert dill.loads(payload).__dict__ == {}
