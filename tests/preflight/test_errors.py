"""The catalog of OVH failure texts, and the errors built from OVH's answers."""

from __future__ import annotations

import json

import ovh.exceptions
import pytest
import requests
from ovh_byoi.errors import (
    ApiRefusedError,
    ByoiError,
    CredentialsError,
    InstallAlreadyRunningError,
    PermissionDeniedError,
    PreflightFailedError,
    ServerNotFoundError,
    TaskFailedError,
    fix_for,
)
from ovh_byoi.preflight import Finding

# Every failure text of the catalog in ovh_byoi.errors, and the older ones, as OVH writes them (placeholders
# filled), with words the fix must contain.
GUIDE_TEXTS = [
    (
        "Please provide checkSum AND checkSumType or none of them",
        "both image_checksum and image_checksum_type",
    ),
    ("image provided format is raw which does not match expected qcow2 format", "set image_type to raw"),
    ("image provided format is qcow2 which does not match expected raw format", "set image_type to qcow2"),
    (
        "image provided has a size of 21474836480 bytes which is larger than device of 10737418240 bytes",
        "at most 10737418240 bytes",
    ),
    ("Can't write qcow2 on disk", 'qemu-img convert -f "<image_type>" -O raw'),
    ("Could not download, raw image is too big to download in memory.", "RAM minus 3 GiB"),
    ("Could not download image located: https://images.example.net/debian.qcow2", "curl"),
    ("Could not download image: 404 Not Found", "http_headers"),
    (
        "image provided format is not of type raw because no partition table was found. It seems to contain: "
        "Linux rev 1.0 ext4 filesystem data",
        "partition table (MBR or GPT)",
    ),
    (
        "Bad checkSumType for downloaded file, got: 9f86d08188 while expecting 2cbd3dd560.",
        "image_checksum is the checksum of this very image",
    ),
    ("Bad format image, expected: qcow2, raw.", "qemu-img convert -O qcow2"),
    ("Can not move backup GPT data structures to the end of disk.", "sgdisk"),
    ("Could not create configdrive on disk.", "config-drive partition"),
]


@pytest.mark.parametrize(("text", "words"), GUIDE_TEXTS)
def test_every_known_text_has_the_guides_fix(text: str, words: str) -> None:
    fix = fix_for(text)
    assert fix is not None
    assert words in fix


@pytest.mark.parametrize(("text", "words"), GUIDE_TEXTS[:3])
def test_texts_are_found_inside_longer_messages(text: str, words: str) -> None:
    fix = fix_for(f"Step 'Downloading OS image' failed: {text} (code 7)")
    assert fix is not None and words in fix


@pytest.mark.parametrize("text", ["", "Something nobody has seen before", "Task 42 is done"])
def test_unknown_texts_have_no_fix(text: str) -> None:
    assert fix_for(text) is None


def test_a_failed_task_states_server_task_ovh_words_and_fix() -> None:
    error = TaskFailedError(
        "ns1000001.emulator.ovh",
        4242,
        "customerError",
        [
            "image provided format is raw which does not match expected qcow2 format",
            "image provided format is raw which does not match expected qcow2 format",  # comment and step
            "",
        ],
        "EU.ext-3.abc",
    )
    message = str(error)
    assert isinstance(error, ByoiError)
    assert "ns1000001.emulator.ovh" in message and "4242" in message and "customerError" in message
    assert (
        message.count("OVH says: image provided format is raw which does not match expected qcow2 format")
        == 1
    )
    assert (
        "Fix: " + str(fix_for("image provided format is raw which does not match expected qcow2 format"))
        in message
    )
    assert "EU.ext-3.abc" in message


def test_an_unknown_task_failure_passes_through_verbatim() -> None:
    error = TaskFailedError("ns1", 7, "ovhError", ["Disk controller on fire"], None)
    assert "OVH says: Disk controller on fire" in str(error)
    assert error.fixes == []


def test_credentials_in_urls_are_masked_in_task_failures() -> None:
    error = TaskFailedError(
        "ns1", 7, "customerError", ["Could not download image located: https://bob:hunter2@x/i"]
    )
    assert "hunter2" not in str(error)
    assert "https://***@x/i" in str(error)


def ovh_error(
    klass: type[ovh.exceptions.APIError], status: int, body: dict[str, str], query_id: str | None = "EU.q1"
) -> ovh.exceptions.APIError:
    """An exception exactly as OVH's client raises it from an HTTP answer."""
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    if query_id:
        response.headers["X-OVH-QUERYID"] = query_id
    return klass(body.get("message"), response=response)


REFUSALS = [
    (
        ovh.exceptions.BadParametersError,
        400,
        {
            "class": "Client::BadRequest::TaskAlreadyExists",
            "message": "Task 12 of type reinstallServer with status doing is already running on server ns1",
        },
        InstallAlreadyRunningError,
        "wait until it ends",
    ),
    (
        ovh.exceptions.ResourceConflictError,
        409,
        {
            "class": "Client::Conflict::DisturbAlreadyExists",
            "message": "Server resource ns1 is already locked by another process, "
            "blocking any new OS reinstallation",
        },
        InstallAlreadyRunningError,
        "wait until it ends",
    ),
    (
        ovh.exceptions.BadParametersError,
        400,
        {
            "class": "Client::BadRequest::HostnameInvalidFormat",
            "message": "Hostname must contain no more than 63",
        },
        ApiRefusedError,
        "at most 63 characters",
    ),
    (
        ovh.exceptions.ResourceConflictError,
        409,
        {"class": "Client::Conflict::OperatingSystemIncompatible", "message": "byoi_64 is not compatible"},
        ApiRefusedError,
        "byoi_64",
    ),
    (
        ovh.exceptions.InvalidKey,
        403,
        {"errorCode": "INVALID_KEY", "httpCode": "403 Forbidden", "message": "Invalid application key"},
        CredentialsError,
        "application key",
    ),
    (
        ovh.exceptions.InvalidCredential,
        403,
        {
            "errorCode": "INVALID_CREDENTIAL",
            "httpCode": "403 Forbidden",
            "message": "This credential is not valid",
        },
        CredentialsError,
        "consumer key",
    ),
    (
        ovh.exceptions.NotCredential,
        403,
        {
            "errorCode": "NOT_CREDENTIAL",
            "httpCode": "403 Forbidden",
            "message": "This call has not been granted",
        },
        CredentialsError,
        "No consumer key",
    ),
    (
        ovh.exceptions.NotGrantedCall,
        403,
        {
            "errorCode": "NOT_GRANTED_CALL",
            "httpCode": "403 Forbidden",
            "message": "This call has not been granted",
        },
        PermissionDeniedError,
        "POST /dedicated/server/*/reinstall",
    ),
    (
        ovh.exceptions.Forbidden,
        403,
        {"errorCode": "FORBIDDEN", "httpCode": "403 Forbidden", "message": "Forbidden"},
        PermissionDeniedError,
        "account owns ns1",
    ),
    (
        ovh.exceptions.ResourceNotFoundError,
        404,
        {"class": "Client::NotFound", "message": "The requested object (serviceName = ns1) does not exist"},
        ServerNotFoundError,
        "check service_name",
    ),
    (
        ovh.exceptions.BadParametersError,
        400,
        {"errorCode": "INVALID_SIGNATURE", "httpCode": "400 Bad Request", "message": "Invalid signature"},
        CredentialsError,
        "application secret",
    ),
]


@pytest.mark.parametrize(("klass", "status", "body", "expected_type", "words"), REFUSALS)
def test_refusals_keep_ovhs_words_and_query_id_and_give_the_fix(
    klass: type[ovh.exceptions.APIError],
    status: int,
    body: dict[str, str],
    expected_type: type[ApiRefusedError],
    words: str,
) -> None:
    error = ApiRefusedError.from_ovh(
        ovh_error(klass, status, body), service_name="ns1", action="start a reinstall"
    )
    assert type(error) is expected_type
    assert error.query_id == "EU.q1"
    assert error.status_code == status
    assert error.fix is not None and words in error.fix
    message = str(error)
    assert body["message"] in message
    assert "OVH query id: EU.q1" in message
    assert message.startswith("OVH refused to start a reinstall on ns1")


def test_an_already_running_install_is_recognised_by_its_words_alone() -> None:
    exc = ovh_error(
        ovh.exceptions.ResourceConflictError,
        409,
        {"message": "Server resource ns1 is already locked by another"},
    )
    assert isinstance(
        ApiRefusedError.from_ovh(exc, service_name="ns1", action="reinstall"), InstallAlreadyRunningError
    )


def test_network_failures_say_the_api_was_not_reached() -> None:
    exc = ovh.exceptions.HTTPError("Low HTTP request failed error", ConnectionError("Connection refused"))
    error = ApiRefusedError.from_ovh(exc, service_name="ns1", action="read the server")
    assert str(error).startswith("Could not read the server on ns1")
    assert "Connection refused" in str(error)
    assert error.fix is not None and "endpoint" in error.fix


def test_unknown_refusals_pass_through_with_the_query_id() -> None:
    exc = ovh_error(
        ovh.exceptions.BadParametersError, 400, {"class": "Client::BadRequest::Novel", "message": "Hm."}
    )
    error = ApiRefusedError.from_ovh(exc, service_name="ns1", action="start a reinstall")
    assert type(error) is ApiRefusedError
    assert error.fix is None
    assert "OVH says: Hm." in str(error) and "EU.q1" in str(error)


def test_server_errors_suggest_trying_again() -> None:
    exc = ovh_error(
        ovh.exceptions.APIError, 500, {"class": "Server::InternalServerError::TaskCreate", "message": "x"}
    )
    error = ApiRefusedError.from_ovh(exc, service_name="ns1", action="start a reinstall")
    assert error.fix is not None and "try again later" in error.fix


def test_a_failed_preflight_lists_every_finding_and_says_the_server_is_untouched() -> None:
    findings = [
        Finding("image_type", "image_type is qcow2, but the file is really raw", "set image_type to raw"),
        Finding("http_headers", "downloading answers HTTP 401", "give credentials"),
    ]
    message = str(PreflightFailedError("ns1", findings))
    assert "2 problems" in message and "untouched" in message
    assert "- image_type: image_type is qcow2" in message and "Fix: give credentials" in message
