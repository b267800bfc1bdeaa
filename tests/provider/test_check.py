"""Check: one failure per bad field naming the field and the fix; unknown values left alone; normalization."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ovh_byoi.provider import ByoiProvider
from ovh_byoi.spec import ByoiInstallationArgs, ReinstallRequest
from pulumi.output import Unknown

from .inputs import SHA256, SHA512, SSH_KEY, valid_inputs


def _key(kind: str, *fields: bytes) -> str:
    """An OpenSSH public key line whose data is `kind` followed by `fields`, as SSH strings."""
    blob = b"".join(struct.pack(">I", len(part)) + part for part in (kind.encode(), *fields))
    return f"{kind} {base64.b64encode(blob).decode()} ops@example"


# The example key of OVH's BYOI guide: a 1024-bit RSA key.
GUIDE_RSA_KEY = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC9xPpdqP3sx2H+gcBm65tJEaUbuifQ1uGkgrWtNY0PRKNNPdy+3yoVO"
    "txk6Vjo4YZ0EU/JhmQfnrK7X7Q5vhqYxmozi0LiTRt0BxgqHJ+4hWTWMIOgr+C2jLx7ZsCReRk+fy5AHr6h0PHQEuXVL"
    "XeUy/TDyuY2JPtUZ5jcqvLYgQ== my-nuclear-power-plant"
)

# OVH's OpenAPI export, as the emulator ships it: a clone of the project has everything its tests read.
OPENAPI = Path(__file__).resolve().parents[2] / "provider" / "ovh_emulator" / "dedicated-server.openapi.json"


def check(news: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    result = ByoiProvider().check({}, {**news, "__provider": "pickled"})
    return result.inputs, {failure.property: failure.reason for failure in result.failures}


def test_valid_inputs_pass_and_are_normalized() -> None:
    inputs, failures = check(
        valid_inputs(
            image_type="QCOW2",
            image_checksum=SHA512.upper(),
            config_drive_user_data={"packages": ["vim"], "hostname": "web-1"},
        )
    )

    assert failures == {}
    assert inputs["image_type"] == "qcow2"
    assert inputs["image_checksum"] == SHA512
    assert inputs["image_checksum_type"] == "sha512", "the type is inferred from the digest's length"
    assert inputs["config_drive_user_data"] == "#cloud-config\nhostname: web-1\npackages:\n- vim\n"
    assert inputs["operating_system"] == "byoi_64"
    assert inputs["preflight"] == "quick"
    assert inputs["timeout_minutes"] > 60, "OVH's Terraform users outgrew 60 minutes"


def test_numbers_from_the_wire_are_accepted() -> None:
    # Protobuf carries every number as a double.
    inputs, failures = check(valid_inputs(timeout_minutes=90.0))
    assert failures == {}
    assert inputs["timeout_minutes"] == 90


BAD_FIELDS: list[tuple[str, Any, str]] = [
    ("service_name", "ns1/../../me", "service name"),
    ("image_url", "ftp://images.example.net/debian.qcow2", "http or https"),
    ("image_url", "https://alice:pw@images.example.net/debian.qcow2", "credentials"),
    ("image_type", "iso", "qcow2"),
    ("image_checksum", "xyz", "hexadecimal"),
    ("image_checksum", "ab" * 20 + "a", "41 characters"),
    ("image_checksum_type", "crc32", "sha512"),
    ("efi_bootloader_path", "/efi/debian/grubx64.efi", "backslashes"),
    ("efi_bootloader_path", "\\\\efi\\\\debian\\\\grubx64.efi", "doubled"),
    ("efi_bootloader_path", "efi\\debian\\grubx64.efi", "start with a backslash"),
    ("hostname", "1-web", "start"),
    ("hostname", "web-1.example.net", "letters, digits and hyphens"),
    ("hostname", "w" * 64, "63"),
    ("ssh_key", "not a key", "OpenSSH public key"),
    ("ssh_key", "ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x07ssh-rsa").decode(), "not a ssh-ed25519"),
    ("config_drive_user_data", "packages: [vim]", "#cloud-config"),
    ("config_drive_user_data", "#cloud-config\npackages: [vim", "not valid YAML"),
    ("config_drive_user_data", "#cloud-config\n- a list", "mapping"),
    ("config_drive_metadata", {"": "x"}, "empty"),
    ("config_drive_metadata", {"role\n": "x"}, "control character"),
    ("config_drive_metadata", {"token": "abc\x1b[31m"}, "'token' holds a control character"),
    ("config_drive_metadata", {"token": "line\nbreak"}, "line break"),
    ("http_headers", {"Bad Header": "x"}, "header name"),
    ("http_headers", {"Host": "images.example.net"}, "'Host' is written by the HTTP client"),
    ("http_headers", {"content-length": "12"}, "'content-length' is written by the HTTP client"),
    ("http_headers", {"Transfer-Encoding": "chunked"}, "HTTP client"),
    ("http_headers", {"Connection": "close"}, "HTTP client"),
    ("http_headers", {"Range": "bytes=0-1"}, "HTTP client"),
    ("http_headers", {"X-Auth-Token": ""}, "'X-Auth-Token' is empty"),
    ("http_headers", {"Authorization": "Basic YTpi", "authorization": "Basic YTpj"}, "same header"),
    ("image_url", "http://169.254.169.254/latest/image.raw", "link-local"),
    ("image_url", "http://[fe80::1]/image.raw", "link-local"),
    ("image_url", "http://2852039166/image.raw", "169.254.169.254 (written 2852039166)"),
    ("image_url", "http://[::ffff:169.254.169.254]/image.raw", "link-local"),
    ("image_url", "http://metadata.google.internal/image.raw", "metadata"),
    # Python's own IDNA codec takes "¡"; the encoding a download really uses refuses it.
    ("image_url", "HTTP://\u00a1/image.raw", "neither an IP address nor a host name"),
    ("ssh_key", _key("ssh-ed25519", bytes(31)), "does not hold one"),
    ("ssh_key", _key("ssh-ed25519", bytes(32), b"trailing"), "does not hold one"),
    ("ssh_key", _key("ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xff" * 32), "does not hold one"),
    ("ssh_key", _key("ecdsa-sha2-nistp256", b"nistp384", b"\x04" + bytes(64)), "does not hold one"),
    ("ssh_key", "ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00").decode(), "not a"),
    ("http_headers", {"X-Count": 3}, "string"),
    ("operating_system", "debian12_64", "byoi_64"),
    ("adopt", "maybe", "bool"),
    ("timeout_minutes", 0, "greater than or equal to 1"),
    ("timeout_minutes", 2.5, "integer"),
    ("preflight", "thorough", "quick"),
]


@pytest.mark.parametrize(
    ("field", "value", "expected"), BAD_FIELDS, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD_FIELDS)]
)
def test_a_bad_field_gets_one_failure_naming_it_and_the_fix(field: str, value: Any, expected: str) -> None:
    _, failures = check(valid_inputs(**{field: value}))

    assert list(failures) == [field]
    assert failures[field].startswith(f"{field}: ")
    assert expected in failures[field]
    assert "Fix: " in failures[field]
    assert "Traceback" not in failures[field]


def test_every_bad_field_is_reported_at_once() -> None:
    _, failures = check(
        valid_inputs(image_type="iso", hostname="1bad", preflight="never", surprise=True)
        | {"image_checksum_type": "sha1"}
        | {"image_checksum": None}
    )
    assert set(failures) == {"image_type", "hostname", "preflight", "surprise", "image_checksum_type"}
    assert "remove it" in failures["surprise"]


def test_missing_required_fields_are_named() -> None:
    _, failures = check({"service_name": "ns1000001.emulator.ovh"})
    assert set(failures) == {"image_url", "image_type", "efi_bootloader_path"}
    assert all("required" in reason for reason in failures.values())


def test_checksum_type_without_checksum_quotes_ovh() -> None:
    _, failures = check(valid_inputs(image_checksum=None, image_checksum_type="sha512"))
    assert list(failures) == ["image_checksum_type"]
    assert "Please provide checkSum AND checkSumType" in failures["image_checksum_type"]


def test_checksum_length_must_match_its_type() -> None:
    _, failures = check(valid_inputs(image_checksum=SHA256, image_checksum_type="sha512"))
    assert list(failures) == ["image_checksum"]
    assert "sha512 digest has 128 hex digits, this one has 64" in failures["image_checksum"]


def test_failures_never_show_secret_values() -> None:
    _, failures = check(
        valid_inputs(
            http_headers={"Authorization": "Basic c2VjcmV0\r\nInjected: yes"},
            config_drive_user_data="#cloud-config\npassword: hunter2-secret\nusers: [",
            config_drive_metadata={"": "token-value-42"},
        )
    )
    assert set(failures) == {"http_headers", "config_drive_user_data", "config_drive_metadata"}
    text = "\n".join(failures.values())
    for secret in ("c2VjcmV0", "hunter2-secret", "token-value-42"):
        assert secret not in text
    assert "'Authorization'" in failures["http_headers"], "the header is named, its value is not"


def test_unknown_values_are_left_alone() -> None:
    unknown_checksum, unknown_name = Unknown(), Unknown()
    inputs, failures = check(
        valid_inputs(
            service_name=unknown_name,
            image_checksum=unknown_checksum,
            image_checksum_type="sha512",
            http_headers={"Authorization": Unknown()},
        )
    )
    assert failures == {}, "no rule may judge a value Pulumi does not know yet"
    assert inputs["service_name"] is unknown_name
    assert inputs["image_checksum"] is unknown_checksum


def test_known_values_next_to_unknown_ones_are_still_checked() -> None:
    _, failures = check(valid_inputs(service_name=Unknown(), hostname="bad.host.name"))
    assert list(failures) == ["hostname"]


def test_a_script_is_accepted_as_user_data() -> None:
    _, failures = check(valid_inputs(config_drive_user_data="#!/bin/sh\necho 'hello: [' > /tmp/x\n"))
    assert failures == {}


@pytest.mark.parametrize(
    "key",
    [
        SSH_KEY,
        GUIDE_RSA_KEY,
        _key("ssh-ed25519", bytes(range(32))),
        _key("sk-ssh-ed25519@openssh.com", bytes(32), b"ssh:"),
        _key("ecdsa-sha2-nistp256", b"nistp256", b"\x04" + bytes(64)),
        _key("ecdsa-sha2-nistp384", b"nistp384", b"\x04" + bytes(96)),
        _key("ecdsa-sha2-nistp521", b"nistp521", b"\x04" + bytes(132)),
        _key("sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", b"\x04" + bytes(64), b"ssh:"),
        _key("ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xc3" * 256),
        _key("ssh-dss", b"p" * 129, b"q" * 21, b"g" * 128, b"y" * 128),
    ],
)
def test_ssh_keys_of_every_common_type_are_accepted(key: str) -> None:
    _, failures = check(valid_inputs(ssh_key=key))
    assert failures == {}


def test_user_data_in_base64_as_the_guide_recommends_is_decoded() -> None:
    document = "#cloud-config\npackages:\n  - vim\n"
    # `base64 -w0`, and plain `base64`, which wraps its output every 76 characters.
    for encoded in (
        base64.b64encode(document.encode()).decode(),
        base64.encodebytes(document.encode() * 8).decode(),
    ):
        inputs, failures = check(valid_inputs(config_drive_user_data=encoded))

        assert failures == {}
        assert inputs["config_drive_user_data"].startswith("#cloud-config\npackages:")
    body = ReinstallRequest.from_args(ByoiInstallationArgs.model_validate(inputs)).body()
    assert base64.b64decode(body["customizations"]["configDriveUserData"]) == document.encode() * 8, (
        "sent to OVH once in base64, not twice"
    )


@pytest.mark.parametrize(
    "value",
    [base64.b64encode(b"packages: [vim]\n").decode(), "packages", "cGFja2FnZXM6IFt2aW1dCg"],
)
def test_user_data_that_is_neither_a_document_nor_its_base64_says_base64(value: str) -> None:
    _, failures = check(valid_inputs(config_drive_user_data=value))

    assert list(failures) == ["config_drive_user_data"]
    assert "base64" in failures["config_drive_user_data"].split("Fix:")[0]
    assert "base64 -w0" in failures["config_drive_user_data"].split("Fix:")[1]


def test_user_data_beyond_ovhs_request_body_limit_is_refused_at_check() -> None:
    huge = "#cloud-config\nwrite_files:\n- content: " + "a" * 2_000_000 + "\n  path: /x\n"

    _, failures = check(valid_inputs(config_drive_user_data=huge))

    assert list(failures) == ["config_drive_user_data"]
    assert "Maximum request body size 1048576 exceeded." in failures["config_drive_user_data"]
    assert "fetch large files itself" in failures["config_drive_user_data"]


def test_a_reinstall_body_beyond_the_limit_names_its_largest_field() -> None:
    # Each input is within bounds; together they are not.
    user_data = "#cloud-config\nwrite_files:\n- content: " + "a" * 600_000 + "\n  path: /x\n"
    metadata = {f"key{number}": "v" * 1000 for number in range(500)}

    _, failures = check(valid_inputs(config_drive_user_data=user_data, config_drive_metadata=metadata))

    assert list(failures) == ["config_drive_user_data"]
    assert "OVH's reinstall request would be" in failures["config_drive_user_data"]
    assert "1048576" in failures["config_drive_user_data"]
    _, within = check(valid_inputs(config_drive_user_data=user_data))
    assert within == {}


def test_wire_body_uses_ovh_names_and_base64_user_data() -> None:
    inputs, _ = check(
        valid_inputs(
            image_checksum=SHA512,
            config_drive_user_data="#cloud-config\npackages: [vim]\n",
            config_drive_metadata={"role": "web"},
            http_headers={"Authorization": "Basic YTpi"},
        )
    )
    body = ReinstallRequest.from_args(ByoiInstallationArgs.model_validate(inputs)).body()

    assert body["operatingSystem"] == "byoi_64"
    customizations = body["customizations"]
    assert set(customizations) == {
        "imageURL",
        "imageType",
        "imageCheckSum",
        "imageCheckSumType",
        "efiBootloaderPath",
        "hostname",
        "sshKey",
        "configDriveUserData",
        "configDriveMetadata",
        "httpHeaders",
    }
    assert (
        base64.b64decode(customizations["configDriveUserData"]).decode() == inputs["config_drive_user_data"]
    )
    assert customizations["imageCheckSumType"] == "sha512"


def test_wire_body_matches_ovhs_schema() -> None:
    document = json.loads(OPENAPI.read_text())
    schemas = document["components"]["schemas"]
    customizations = dict(schemas["dedicated.server.reinstall.Customizations"])
    # configDriveMetadata is newer than this snapshot of OVH's schema (the copy the emulator ships, 2025-10).
    customizations["properties"] = {
        **customizations["properties"],
        "configDriveMetadata": {"type": "object", "additionalProperties": {"type": "string"}},
    }
    # No property OVH does not know: a misspelled alias (imageUrl, imageChecksum) would be ignored by OVH.
    customizations["additionalProperties"] = False
    inputs, _ = check(valid_inputs(image_checksum=SHA512, config_drive_metadata={"role": "web"}))
    body = ReinstallRequest.from_args(ByoiInstallationArgs.model_validate(inputs)).body()

    jsonschema.validate(body["customizations"], {**customizations, "components": document["components"]})
    assert set(body) == {"operatingSystem", "customizations"}
    assert set(body) <= set(schemas["dedicated.server.Reinstall"]["properties"])
