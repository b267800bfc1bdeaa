"""`ovh-byoi verify-image` and `status`, and what the commands do with bad input: a message, no traceback."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ovh_emulator.testing import RunningEmulator
from preflight.conftest import BASIC_AUTH, ImageServer

from .conftest import Outcome, reinstalls_requested

SERVER = "ns1000001.emulator.ovh"
EFI = r"\efi\debian\grubx64.efi"

Run = Callable[..., Outcome]


# --- verify-image -------------------------------------------------------------------------------------------


def test_verify_image_passes_a_good_image(ovh_byoi_offline: Run, image_server: ImageServer) -> None:
    outcome = ovh_byoi_offline("verify-image", image_server.url("debian.qcow2"))
    assert outcome.exit_code == 0, outcome.output
    assert "a qcow2 disk image" in outcome.stdout  # the type comes from the file name


def test_verify_image_full_checks_checksum_and_bootloader(
    ovh_byoi_offline: Run, image_server: ImageServer, images: dict[str, Path]
) -> None:
    checksum = hashlib.sha512(images["debian.raw"].read_bytes()).hexdigest()
    url = image_server.url("debian.raw", prefix="private")
    outcome = ovh_byoi_offline(
        "verify-image", url, "--type", "raw", "--checksum", checksum, "--efi-path", EFI, "--full",
        "-H", f"Authorization: {BASIC_AUTH['Authorization']}",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "checksum matches" in outcome.stdout
    assert rf"{EFI} is in the EFI system partition" in outcome.stdout


def test_verify_image_quick_says_what_it_did_not_check(
    ovh_byoi_offline: Run, image_server: ImageServer
) -> None:
    outcome = ovh_byoi_offline("verify-image", image_server.url("debian.raw"), "--checksum", "0" * 64)
    assert outcome.exit_code == 0
    assert "not checked: the checksum (use --full)" in outcome.stdout


@pytest.mark.parametrize("image_type", ["raw", "qcow2"])
def test_verify_image_full_catches_a_wrong_efi_path(
    ovh_byoi_offline: Run, image_server: ImageServer, image_type: str
) -> None:
    outcome = ovh_byoi_offline(
        "verify-image",
        image_server.url(f"debian.{image_type}"),
        "--efi-path",
        r"\EFI\centos\grubx64.efi",
        "--full",
    )
    assert outcome.exit_code == 1
    assert r"--efi-path: \EFI\centos\grubx64.efi is not in the image's EFI system partition" in outcome.stdout
    assert (
        r"fix: Set efi_bootloader_path to one of the image's bootloaders: \EFI\debian\grubx64.efi"
        in outcome.stdout
    )


def test_verify_image_names_the_option_to_change(ovh_byoi_offline: Run, image_server: ImageServer) -> None:
    outcome = ovh_byoi_offline("verify-image", image_server.url("debian.raw", prefix="private"))
    assert outcome.exit_code == 1
    assert "1 problem" in outcome.stdout
    assert "  -H: downloading" in outcome.stdout and "401" in outcome.stdout


# Each refused by ByoiInstallation's check: verify-image must not pass what `pulumi up` then refuses.
REFUSED_BY_THE_RESOURCE = [
    (["--checksum-type", "md5"], "--checksum-type", "Please provide checkSum AND checkSumType"),
    (["--checksum", "ab" * 20 + "a"], "--checksum", "41 characters"),
    (["--efi-path", "\\\\efi\\\\debian\\\\grubx64.efi"], "--efi-path", "doubled backslashes"),
    (["--efi-path", "/EFI/DEBIAN/GRUBX64.EFI"], "--efi-path", "backslashes"),
    (["--efi-path", "efi\\debian\\grubx64.efi"], "--efi-path", "start with a backslash"),
    (["-H", "Host: images.example.net"], "-H", "'Host' is written by the HTTP client"),
    (["-H", "X-Auth-Token:"], "-H", "empty"),
]


@pytest.mark.parametrize(("extra", "option", "words"), REFUSED_BY_THE_RESOURCE)
def test_verify_image_refuses_what_the_resource_refuses_before_downloading(
    ovh_byoi_offline: Run, unused_port: int, extra: list[str], option: str, words: str
) -> None:
    # Nothing listens there: an attempt to download would fail with exit status 1, not 2.
    outcome = ovh_byoi_offline("verify-image", f"http://127.0.0.1:{unused_port}/debian.raw", *extra)
    assert outcome.exit_code == 2, outcome.output
    assert f"- {option}: " in outcome.stderr and words in outcome.stderr
    assert "Fix: " in outcome.stderr
    assert "Traceback" not in outcome.output


def test_verify_image_refuses_a_link_local_image_url(ovh_byoi_offline: Run) -> None:
    outcome = ovh_byoi_offline("verify-image", "http://169.254.169.254/latest/meta-data/image.raw")
    assert outcome.exit_code == 2
    assert "- URL: " in outcome.stderr and "link-local" in outcome.stderr


def test_verify_image_accepts_the_efi_path_in_any_case_as_the_resource_does(
    ovh_byoi_offline: Run, image_server: ImageServer
) -> None:
    outcome = ovh_byoi_offline(
        "verify-image", image_server.url("debian.raw"), "--efi-path", r"\EFI\DEBIAN\GRUBX64.EFI", "--full"
    )
    assert outcome.exit_code == 0, outcome.output


def test_verify_image_reads_local_files(ovh_byoi_offline: Run, images: dict[str, Path]) -> None:
    assert ovh_byoi_offline("verify-image", str(images["mbr.raw"])).exit_code == 0
    outcome = ovh_byoi_offline("verify-image", str(images["no-table.raw"]))
    assert outcome.exit_code == 1 and "no partition table" in outcome.stdout


def test_a_malformed_header_is_a_usage_error(ovh_byoi_offline: Run, image_server: ImageServer) -> None:
    outcome = ovh_byoi_offline(
        "verify-image", image_server.url("debian.raw"), "-H", "Authorization Basic c2VjcmV0"
    )
    assert outcome.exit_code == 2
    assert "write 'Name: value'" in outcome.stderr
    assert "c2VjcmV0" not in outcome.output, "the text may be the secret, its colon forgotten"
    assert "Traceback" not in outcome.output


# --- install: inputs and confirmation -----------------------------------------------------------------------


def test_install_from_a_spec_file(ovh_byoi: Run, emulator: RunningEmulator, tmp_path: Path) -> None:
    spec = tmp_path / "web-1.yaml"
    spec.write_text(
        f"service_name: {SERVER}\n"
        f"image_url: {emulator.image_url('debian.raw')}\n"
        "image_type: raw\n"
        "efi_bootloader_path: '\\efi\\debian\\grubx64.efi'\n"
        "hostname: web-1\n"
        "config_drive_user_data:\n"
        "  packages: [vim]\n"
        "config_drive_metadata:\n"
        "  role: web\n"
    )
    outcome = ovh_byoi("install", "--spec", str(spec), "--yes")
    assert outcome.exit_code == 0, outcome.output
    server = emulator.server(SERVER)
    assert [entry["status"] for entry in server["installs"]] == ["done"]
    assert "web" in str(server["configDrive"])


def test_install_asks_before_erasing_and_a_no_changes_nothing(
    ovh_byoi: Run, emulator: RunningEmulator
) -> None:
    args = (
        "install",
        SERVER,
        "--image-url",
        emulator.image_url("debian.raw"),
        "--type",
        "raw",
        "--efi-path",
        EFI,
    )
    outcome = ovh_byoi(*args, input="n\n")
    assert outcome.exit_code == 1
    assert f"Reinstall {SERVER} (now running debian12_64)" in outcome.stderr
    assert "Everything on the server will be erased" in outcome.stderr
    assert reinstalls_requested(emulator) == 0
    assert ovh_byoi(*args, input="y\n").exit_code == 0
    assert reinstalls_requested(emulator) == 1


def test_bad_inputs_are_listed_per_option_before_any_call(ovh_byoi: Run, emulator: RunningEmulator) -> None:
    outcome = ovh_byoi(
        "install", SERVER, "--image-url", "ftp://example/x.raw", "--type", "raw",
        "--efi-path", "/efi/debian/grubx64.efi", "--hostname", "web_1", "--yes",
    )  # fmt: skip
    assert outcome.exit_code == 2
    for option in ("--image-url", "--efi-bootloader-path", "--hostname"):
        assert f"- {option}: " in outcome.stderr
    assert "Traceback" not in outcome.output
    assert not [route for route in emulator.stats() if " /1.0/" in route]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("image_url: [unclosed", "is not valid YAML"),
        ("- a list", "must hold a mapping"),
        ("adopt: true\n", "adopt applies to the Pulumi resource"),
        ("colour: blue\n", "colour: is not an input of ByoiInstallation"),
    ],
)
def test_bad_spec_files_are_explained(ovh_byoi: Run, tmp_path: Path, content: str, words: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(content)
    outcome = ovh_byoi("install", SERVER, "--spec", str(spec), "--yes")
    assert outcome.exit_code == 2
    assert words in outcome.stderr
    assert "Traceback" not in outcome.output


def test_an_unknown_server_is_named(ovh_byoi: Run, emulator: RunningEmulator) -> None:
    outcome = ovh_byoi(
        "install", "ns9999999.emulator.ovh", "--image-url", emulator.image_url("debian.raw"), "--type", "raw",
        "--efi-path", EFI, "--yes",
    )  # fmt: skip
    assert outcome.exit_code == 1
    assert "ns9999999.emulator.ovh" in outcome.stderr and "check service_name" in outcome.stderr
    assert "OVH query id" in outcome.stderr


def test_an_unknown_endpoint_is_explained(ovh_byoi: Run) -> None:
    outcome = ovh_byoi("status", SERVER, "--endpoint", "ovh-mars")
    assert outcome.exit_code == 1
    assert "unknown endpoint 'ovh-mars'" in outcome.stderr and "ovh-eu" in outcome.stderr


def test_a_wrong_application_secret_is_explained_without_being_shown(ovh_byoi: Run) -> None:
    outcome = ovh_byoi("status", SERVER, env={"OVH_APPLICATION_SECRET": "not-the-secret"})
    assert outcome.exit_code == 1
    assert "application secret does not match" in outcome.stderr
    assert "not-the-secret" not in outcome.output
    assert "Traceback" not in outcome.output


def test_no_endpoint_at_all_is_explained(
    ovh_byoi_offline: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./ovh.conf
    monkeypatch.setenv("HOME", str(tmp_path))
    outcome = ovh_byoi_offline("status", SERVER)
    assert outcome.exit_code == 1
    assert "no endpoint is configured" in outcome.stderr


# --- status -------------------------------------------------------------------------------------------------


def test_status_of_a_server_never_reinstalled(ovh_byoi: Run) -> None:
    outcome = ovh_byoi("status", SERVER)
    assert outcome.exit_code == 0, outcome.output
    assert "os: debian12_64" in outcome.stdout
    assert "reinstall: none on record" in outcome.stdout


def test_status_follows_a_running_install(ovh_byoi: Run, emulator: RunningEmulator) -> None:
    emulator.set_faults({"rules": [{"task": "neverFinish", "times": 1}]})
    outcome = ovh_byoi(
        "install", SERVER, "--image-url", emulator.image_url("debian.raw"), "--type", "raw",
        "--efi-path", EFI, "--timeout-minutes", "1", "--yes",
    )  # fmt: skip
    assert outcome.exit_code == 1
    assert "did not end within 1 minutes" in outcome.stderr and f"ovh-byoi status {SERVER}" in outcome.stderr
    # The command's deadline may pass before OVH starts working on the task (install/status has no step
    # to show until then): status is asked once the install works.
    deadline = time.monotonic() + 60
    while emulator.server(SERVER)["installs"][-1]["status"] != "doing":
        assert time.monotonic() < deadline, emulator.server(SERVER)["installs"]
        time.sleep(0.02)
    status = ovh_byoi("status", SERVER)
    assert status.exit_code == 0
    assert "running" in status.stdout
    assert "install: step " in status.stdout


def test_status_of_a_failed_install_gives_ovhs_reason_and_the_fix(
    ovh_byoi: Run, emulator: RunningEmulator
) -> None:
    ovh_byoi(
        "install", SERVER, "--image-url", emulator.image_url("no-table.raw"), "--type", "raw",
        "--efi-path", EFI, "--preflight", "off", "--yes",
    )  # fmt: skip
    outcome = ovh_byoi("status", SERVER)
    assert outcome.exit_code == 0
    assert "customerError" in outcome.stdout
    assert (
        "OVH says: image provided format is not of type raw because no partition table was found"
        in outcome.stdout
    )
    assert "Fix: A raw image must contain a partition table" in outcome.stdout


def test_emulator_subcommand_forwards_its_options(ovh_byoi_offline: Run) -> None:
    outcome = ovh_byoi_offline("emulator", "--help")
    assert outcome.exit_code == 0
    assert "--servers" in outcome.stdout and "--speed" in outcome.stdout


@pytest.mark.parametrize("missing", ["ovh_emulator", "aiohttp", "jsonschema"])
def test_the_emulator_names_its_extra_when_it_is_not_installed(missing: str) -> None:
    # A separate interpreter, in which `missing` cannot be imported, as after `pip install ovh-byoi`.
    without = f"import sys; sys.modules[{missing!r}] = None; from ovh_byoi.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", without, "emulator", "--servers", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "the emulator is an optional extra: pip install 'ovh-byoi[emulator]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
