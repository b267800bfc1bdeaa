"""Secrets audit: credentials, header values, signed-URL tokens and user data never show where they must not.

Places looked at: the pickled provider (`__provider`) and the whole state file, every output not marked
secret, everything the provider processes printed, every error message, what `ovh-byoi status` prints, and
the emulator's log. Credentials in an image URL (`https://user:password@host/...`) are refused by the
resource and the command line alike, with the fix (headers); a pre-signed URL's query string is a token,
kept secret in the state and masked wherever a URL is shown.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dill
import pytest
from click.testing import CliRunner
from ovh_byoi.cli import main
from ovh_byoi.preflight import run_preflight
from ovh_byoi.provider import ByoiProvider
from ovh_byoi.spec import MAX_TIMEOUT_MINUTES
from ovh_emulator.testing import RunningEmulator
from testkit.emulator_records import ovh_client
from testkit.polling import wait_until
from testkit.provider_process import ProviderProcess
from testkit.pulumi_cli import PulumiStack, revealed, secret_in_state

from .ledger import Ledger
from .support import (
    APPLICATION_SECRET,
    CONSUMER_KEY,
    EFI_DEBIAN,
    HEADER_VALUE,
    IMAGES_PASSWORD,
    IMAGES_USER,
)

CLIENT_SECRET = "clientsecret-Vb40nJ7cQ1"
USER_DATA = "#cloud-config\nchpasswd:\n  list: 'root:userdata-Gm93kX5tA6'\n"
METADATA_SECRET = "metadata-Pw28hD6yN3"
URL_PASSWORD = "urlpw-Ke71sZ0fB9"
# A pre-signed object-storage URL's query: the signature and the access key id are what a thief needs.
SIGNATURE = "sig-4e2b9c7d1a8f6e3b5c0d"
ACCESS_KEY = "AKIAREL7W3XM2Q"
SIGNED_QUERY = (
    f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={ACCESS_KEY}%2F20260101%2Fgra%2Fs3%2Faws4_request"
    f"&X-Amz-Signature={SIGNATURE}"
)
TOKEN_HEADER = "xauth-Lp83cV5nQ1"
SECRETS = (
    APPLICATION_SECRET,
    CONSUMER_KEY,
    CLIENT_SECRET,
    IMAGES_PASSWORD,
    HEADER_VALUE,
    HEADER_VALUE.split()[1],
    "userdata-Gm93kX5tA6",
    base64.b64encode(USER_DATA.encode()).decode(),
    METADATA_SECRET,
    URL_PASSWORD,
    SIGNATURE,
    ACCESS_KEY,
    TOKEN_HEADER,
)
SECRET_INPUTS = ("http_headers", "config_drive_user_data", "config_drive_metadata")


@pytest.fixture
def stack(ovh_api: RunningEmulator, provider_env: dict[str, str], tmp_path: Path) -> PulumiStack:
    """A stack run by the real Pulumi CLI, its credentials set with `pulumi config set --secret`."""
    return PulumiStack.of_resources(tmp_path, emulator=ovh_api, env=provider_env)


def declare(
    stack: PulumiStack,
    emulator: RunningEmulator,
    servers: list[str],
    image_inputs: Callable[..., dict[str, Any]],
    *,
    timeout: int = MAX_TIMEOUT_MINUTES - 1,
    wrong_header: bool = False,
) -> None:
    """One resource per server, each input carrying a secret; `wrong_header`: the second one's download
    is refused.

    Deadlines far beyond any run (at the suite's speed 60 minutes are 2.4 real seconds, which two loaded
    installs at once can spend); the second differs only so that the last `up` updates a resource.
    """
    resources = {}
    for number, server in enumerate(servers):
        inputs = image_inputs(
            server,
            image_url=emulator.image_url("small.qcow2") + SIGNED_QUERY,
            timeout_minutes=timeout,
            config_drive_user_data=USER_DATA,
            config_drive_metadata={"token": METADATA_SECRET},
            http_headers={"Authorization": HEADER_VALUE, "X-Auth-Token": TOKEN_HEADER},
        )
        if wrong_header and number == 1:
            # A header OVH's downloader is refused with, and no preflight to catch it first.
            inputs |= {
                "http_headers": {"Authorization": HEADER_VALUE + "x", "X-Auth-Token": TOKEN_HEADER},
                "hostname": "web-2",
                "preflight": "off",
            }
        resources[f"web-{number}"] = inputs
    stack.declare(resources)


def secret_outputs(raw_state: str) -> dict[str, set[str]]:
    """Per resource name in the state file, the outputs Pulumi stores as secrets."""
    resources = json.loads(raw_state)["checkpoint"]["latest"]["resources"]
    return {
        resource["urn"].rsplit("::", 1)[1]: {
            key for key, value in resource.get("outputs", {}).items() if secret_in_state(value)
        }
        for resource in resources
    }


def test_a_stack_lifecycle_keeps_every_secret_out_of_state_outputs_output_and_errors(
    stack: PulumiStack,
    ovh_api: RunningEmulator,
    new_server: Callable[[], str],
    image_inputs: Callable[..., dict[str, Any]],
    ledger: Ledger,
    journal_path: Path,
) -> None:
    servers = [new_server(), new_server()]

    declare(stack, ovh_api, servers, image_inputs)
    runs = [stack.up(), stack.refresh()]
    # An update of one (a new timeout) and a replacement of the other that OVH fails.
    declare(stack, ovh_api, servers, image_inputs, timeout=MAX_TIMEOUT_MINUTES, wrong_header=True)
    failed = stack.up(expect=None)
    runs.append(failed)
    # Someone reinstalls the first server from OVH's control panel: refresh records the drift.
    other = ovh_api.reinstall_out_of_band(servers[0])
    ovh_api.wait_for_task(servers[0], other["taskId"])
    runs.append(stack.refresh())
    resources = stack.resources()
    assert "outside this stack" in resources["web-0"]["outputs"]["drift"], "the drift is recorded"
    status = [
        CliRunner().invoke(main, ["status", server, "--endpoint", ovh_api.url], env=cli_env(ovh_api))
        for server in servers
    ]
    assert "customerError" in status[1].output, status[1].output
    pickled = [
        base64.b64decode(revealed(resource["inputs"]["__provider"])) for resource in resources.values()
    ]

    assert failed.returncode != 0 and "customerError" in failed.output, "the failure is told"
    assert "web-0 updated" in failed.output, str(failed)
    raw_state = stack.raw_state()
    marked = secret_outputs(raw_state)
    for name in ("web-0", "web-1"):
        assert {*SECRET_INPUTS, "image_url"} <= marked[name], name
    assert pickled and all(dill.loads(payload).__dict__ == {} for payload in pickled)
    places: dict[str, str | bytes] = {"state file": raw_state}
    places |= {f"pickled provider {index}": payload for index, payload in enumerate(pickled)}
    places |= {f"pulumi {' '.join(run.args)} (run {index})": run.output for index, run in enumerate(runs)}
    places |= {
        f"ovh-byoi status {server}": outcome.output for server, outcome in zip(servers, status, strict=True)
    }
    places["reinstall journal"] = journal_path.read_bytes()
    assert ledger.scan(places, SECRETS) == []


def cli_env(emulator: RunningEmulator) -> dict[str, str]:
    return {
        "OVH_APPLICATION_KEY": emulator.application_key,
        "OVH_APPLICATION_SECRET": emulator.application_secret,
        "OVH_CONSUMER_KEY": emulator.consumer_key,
    }


def test_a_plain_image_url_stays_readable_in_the_state(
    stack: PulumiStack,
    new_server: Callable[[], str],
    image_inputs: Callable[..., dict[str, Any]],
) -> None:
    # Only a URL that carries a token is secret: a reviewer still reads which image a server runs.
    server = new_server()
    stack.declare({"web": image_inputs(server)})
    stack.up()

    assert stack.checkpoint()["web"]["outputs"]["image_url"].endswith("/images/small.qcow2")


def test_oauth_client_credentials_stay_out_of_errors_state_and_output(
    ovh_api: RunningEmulator,
    provider_env: dict[str, str],
    new_server: Callable[[], str],
    image_inputs: Callable[..., dict[str, Any]],
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    server = new_server()
    # OVH's client refuses OAuth2 on any endpoint but OVH's own: the error must not carry the secret.
    stack = PulumiStack.of_resources(
        tmp_path,
        emulator=ovh_api,
        env=provider_env,
        secrets={
            "ovh:endpoint": ovh_api.url,
            "ovh:clientId": "client-id-1",
            "ovh:clientSecret": CLIENT_SECRET,
        },
    )
    stack.declare({"web": image_inputs(server)})

    run = stack.up(expect=None)

    assert run.returncode != 0
    assert "client" in run.output.lower(), str(run)
    places: dict[str, str | bytes] = {"state file": stack.raw_state(), "pulumi up": run.output}
    assert ledger.scan(places, SECRETS) == []
    assert ovh_api.server(server)["installs"] == []


def test_credentials_in_an_image_url_are_refused_with_the_fix_everywhere(
    provider: ProviderProcess, ovh_api: RunningEmulator, new_server: Callable[[], str], ledger: Ledger
) -> None:
    server = new_server()
    # The right credentials: the URL would work, and is still refused.
    url = ovh_api.image_url("small.qcow2").replace("://", f"://{IMAGES_USER}:{IMAGES_PASSWORD}@")
    inputs = {
        "service_name": server,
        "image_url": url,
        "image_type": "qcow2",
        "efi_bootloader_path": EFI_DEBIAN,
    }

    in_process = ByoiProvider().check({}, inputs)
    over_grpc = provider.check({}, inputs)
    installed = CliRunner().invoke(
        main,
        [
            *("install", server, "--image-url", url, "--image-type", "qcow2"),
            *("--efi-bootloader-path", EFI_DEBIAN, "--endpoint", ovh_api.url, "--yes"),
        ],
        env={"OVH_APPLICATION_KEY": ovh_api.application_key, "OVH_APPLICATION_SECRET": APPLICATION_SECRET},
    )
    verified = CliRunner().invoke(main, ["verify-image", url])

    for failures in (in_process.failures, over_grpc.failures):
        [failure] = failures
        assert failure.property == "image_url"
        assert "http_headers" in failure.reason
    for command in (installed, verified):
        assert command.exit_code != 0
        assert "header" in command.output.lower(), command.output
    assert ovh_api.server(server)["installs"] == [], "nothing was installed"
    places: dict[str, str | bytes] = {
        "check failure": in_process.failures[0].reason,
        "check failure over gRPC": over_grpc.failures[0].reason,
        "ovh-byoi install": installed.output,
        "ovh-byoi verify-image": verified.output,
    }
    assert ledger.scan(places, SECRETS) == []


def test_header_values_never_show_in_what_preflight_reports(ledger: Ledger, ovh_api: RunningEmulator) -> None:
    # requests quotes a header value it refuses to send; OVH's answer quotes nothing of it.
    findings = [
        finding
        for headers in (
            {"Authorization": " " + HEADER_VALUE},
            {"Authorization": HEADER_VALUE + "\u20ac"},
            {"Authorization": HEADER_VALUE + "x"},
        )
        for finding in run_preflight(
            image_url=ovh_api.image_url("small.qcow2"),
            image_type="qcow2",
            image_checksum=None,
            image_checksum_type=None,
            http_headers=headers,
            efi_bootloader_path=EFI_DEBIAN,
            level="quick",
            disk_bytes=None,
            memory_bytes=None,
        )
    ]

    assert len(findings) == 3
    assert ledger.scan({f"finding {n}": str(f) for n, f in enumerate(findings)}, SECRETS) == []


def test_the_emulator_log_masks_url_passwords_and_shows_no_credential(
    ovh_api: RunningEmulator, new_server: Callable[[], str], ledger: Ledger
) -> None:
    server = new_server()
    client = ovh_client(ovh_api)
    url = ovh_api.image_url("small.qcow2").replace("://", f"://{IMAGES_USER}:{URL_PASSWORD}@")
    # Straight to the API (as another tool would): the installer downloads with a refused password.
    task = client.post(
        f"/dedicated/server/{server}/reinstall",
        operatingSystem="byoi_64",
        customizations={"imageURL": url, "imageType": "qcow2", "efiBootloaderPath": EFI_DEBIAN},
    )
    ended = ovh_api.wait_for_task(server, task["taskId"])

    assert ended["status"] == "customerError"
    failure_logged = f"task {task['taskId']}: customerError on {server}: Could not download image"
    assert wait_until(lambda: any(failure_logged in line for line in ovh_api.output))
    assert ledger.scan({"emulator log": "\n".join(ovh_api.output)}, SECRETS) == []


def test_nothing_the_suite_ran_leaked_a_secret(
    provider: ProviderProcess, ovh_api: RunningEmulator, ledger: Ledger
) -> None:
    """Everything the suite's provider process printed and the emulator logged, after all the tests above."""
    places: dict[str, str | bytes] = {
        "suite provider output": provider.output,
        "emulator log": "\n".join(ovh_api.output),
        "pickled provider": base64.b64decode(provider.pickled_provider or ""),
    }

    assert ledger.scan(places, SECRETS) == []
