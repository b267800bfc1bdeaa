"""What the command shows of secrets: a signed URL's token, header values and spec files never, anywhere.

Images are commonly served by pre-signed object-storage URLs, whose query string is a bearer token: every
line the command prints (verify-image's verdict, findings, the confirmation prompt, progress, failures,
`status`) shows the URL with its parameter names and masked values.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from ovh_emulator.testing import RunningEmulator
from preflight.conftest import ImageServer

from .conftest import Outcome, reinstalls_requested

SERVER = "ns1000001.emulator.ovh"
EFI = r"\efi\debian\grubx64.efi"
SIGNATURE = "5f3c9a1e7b2d4c6f8a0e1b3d5c7f9a2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a"
CREDENTIAL = "AKIAEXAMPLE7Q2%2F20260101%2Feu-west-par%2Fs3%2Faws4_request"
SWIFT_SIGNATURE = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SIGNED = f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={CREDENTIAL}&X-Amz-Signature={SIGNATURE}"
TOKENS = (SIGNATURE, CREDENTIAL, "AKIAEXAMPLE7Q2", SWIFT_SIGNATURE)

Run = Callable[..., Outcome]


def assert_no_token(outcome: Outcome) -> None:
    for token in TOKENS:
        assert token not in outcome.output, f"{token} shown in:\n{outcome.output}"


def test_verify_image_shows_a_signed_url_without_its_token(
    ovh_byoi_offline: Run, image_server: ImageServer
) -> None:
    passed = ovh_byoi_offline("verify-image", image_server.url("debian.raw") + SIGNED)
    failed = ovh_byoi_offline(
        "verify-image",
        image_server.url("no-table.raw") + f"?temp_url_sig={SWIFT_SIGNATURE}&temp_url_expires=1",
    )

    assert passed.exit_code == 0, passed.output
    assert "debian.raw?X-Amz-Algorithm=***&X-Amz-Credential=***&X-Amz-Signature=***" in passed.stdout
    assert failed.exit_code == 1
    assert "no-table.raw?temp_url_sig=***&temp_url_expires=*** has no partition table" in failed.stdout
    assert_no_token(passed)
    assert_no_token(failed)


def test_a_download_failure_shows_neither_token_nor_header_value(
    ovh_byoi_offline: Run, image_server: ImageServer, unused_port: int
) -> None:
    refused = ovh_byoi_offline(
        "verify-image",
        image_server.url("debian.raw", prefix="private") + SIGNED,
        "-H",
        "X-Auth-Token: tok-9d8e7f6a5b",
    )
    unreachable = ovh_byoi_offline("verify-image", f"http://127.0.0.1:{unused_port}/debian.raw{SIGNED}")

    assert refused.exit_code == 1 and "401" in refused.stdout
    assert unreachable.exit_code == 1 and "connection" in unreachable.stdout
    for outcome in (refused, unreachable):
        assert_no_token(outcome)
        assert "tok-9d8e7f6a5b" not in outcome.output


def test_the_confirmation_prompt_shows_a_signed_url_without_its_token(
    ovh_byoi: Run, emulator: RunningEmulator
) -> None:
    outcome = ovh_byoi(
        "install", SERVER, "--image-url", emulator.image_url("debian.raw") + SIGNED, "--type", "raw",
        "--efi-path", EFI, input="n\n",
    )  # fmt: skip

    assert outcome.exit_code == 1
    assert (
        "debian.raw?X-Amz-Algorithm=***&X-Amz-Credential=***&X-Amz-Signature=***? Everything"
        in outcome.stderr
    )
    assert_no_token(outcome)
    assert reinstalls_requested(emulator) == 0


def test_progress_failure_and_status_show_a_signed_url_without_its_token(
    ovh_byoi: Run, emulator: RunningEmulator
) -> None:
    # Nothing at this URL: OVH's task fails quoting the URL it could not download.
    installed = ovh_byoi(
        "install", SERVER, "--image-url", emulator.image_url("missing.raw") + SIGNED, "--type", "raw",
        "--efi-path", EFI, "--preflight", "off", "--yes",
        "-H", "X-Auth-Token: tok-9d8e7f6a5b",
    )  # fmt: skip
    status = ovh_byoi("status", SERVER)

    assert installed.exit_code == 1
    assert "customerError" in installed.stderr and "Could not download image" in installed.stderr
    assert "customerError" in status.stdout
    for outcome in (installed, status):
        assert_no_token(outcome)
        assert "tok-9d8e7f6a5b" not in outcome.output


# --- files given to the command -----------------------------------------------------------------------------


def test_a_spec_files_yaml_error_does_not_quote_the_file(ovh_byoi: Run, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f'service_name: {SERVER}\nhttp_headers:\n  Authorization: "Basic S3CRET-a8f1\n')

    outcome = ovh_byoi("install", "--spec", str(spec), "--yes")

    assert outcome.exit_code == 2
    assert f"--spec: {spec} is not valid YAML at line" in outcome.stderr
    assert "S3CRET-a8f1" not in outcome.output
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize("option", ["--user-data", "--ssh-key", "--spec"])
def test_a_binary_file_is_a_clear_error(ovh_byoi: Run, tmp_path: Path, option: str) -> None:
    binary = tmp_path / "binary.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    value = str(binary) if option == "--spec" else f"@{binary}"

    outcome = ovh_byoi("install", SERVER, option, value, "--yes")

    assert outcome.exit_code == 2, outcome.output
    assert f"{binary} is not UTF-8 text" in outcome.stderr and "Fix: " in outcome.stderr
    assert "Traceback" not in outcome.output and "UnicodeDecodeError" not in outcome.output


def test_user_data_in_base64_from_a_file_installs_its_document(
    ovh_byoi: Run, emulator: RunningEmulator, tmp_path: Path
) -> None:
    # What OVH's BYOI guide has users write: `base64 -w0 < user-data.yaml > user-data.b64`.
    encoded = tmp_path / "user-data.b64"
    encoded.write_text("I2Nsb3VkLWNvbmZpZwpwYWNrYWdlczogW3ZpbV0K")

    outcome = ovh_byoi(
        "install", SERVER, "--image-url", emulator.image_url("debian.raw"), "--type", "raw",
        "--efi-path", EFI, "--user-data", f"@{encoded}", "--yes",
    )  # fmt: skip

    assert outcome.exit_code == 0, outcome.output
    sent = emulator.server(SERVER)["configDrive"]["userData"]
    assert base64.b64decode(sent) == b"#cloud-config\npackages: [vim]\n", "in base64 once, not twice"
