"""Bad input, generated: every input field through `check`, in process and through the real gRPC server.

Whatever a program passes (wrong types, any unicode, huge or empty strings, line breaks and control
characters, values not known yet, keys that are no input), `check` answers with failures that each name a
field and its fix, never with an exception, and never quote a secret. What it accepts, the rest of the
provider can use: the model validates it, OVH's request body is built from it, and the headers and URL can
really be sent.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import requests.utils
from hypothesis import given, settings
from hypothesis import strategies as st
from ovh_byoi.provider import ByoiProvider
from ovh_byoi.spec import TEMPLATE_REQUIRED, ByoiInstallationArgs, ReinstallRequest
from pulumi.dynamic import CheckResult
from testkit.provider_process import ProviderProcess

from .bad_values import (
    CLIENT_HEADERS,
    FIELDS,
    FUZZ,
    MARKER,
    SECRET_FIELDS,
    VALID,
    base64_of,
    edited_key,
    odd_text,
)

# Under these names: hypothesis derives a test's examples from its source, which stays as it was.
from .bad_values import has_unknown as _has_unknown
from .bad_values import secret_text as _secret_text
from .bad_values import values as _values
from .ledger import Ledger

# Rules across fields: a failure may name the partner of the field that went wrong.
PARTNERS = {"image_checksum": ("image_checksum_type",), "image_checksum_type": ("image_checksum",)}


def _ssh_strings(blob: bytes) -> list[bytes]:
    fields = []
    while blob:
        length = int.from_bytes(blob[:4], "big")
        assert len(blob) >= 4 + length, "the key's data is cut"
        fields.append(blob[4 : 4 + length])
        blob = blob[4 + length :]
    return fields


def assert_usable(inputs: Mapping[str, Any]) -> None:
    """Accepted inputs go through the model, make OVH's body, and can be sent over HTTP as they are."""
    args = ByoiInstallationArgs.model_validate(dict(inputs))
    body = json.dumps(ReinstallRequest.from_args(args).body(), allow_nan=False, separators=(",", ":"))
    assert len(body.encode()) <= 1_048_576, "OVH refuses a larger body: 'Maximum request body size'"
    names = [name.lower() for name in args.http_headers or {}]
    assert len(set(names)) == len(names)
    assert not set(names) & {name.lower() for name in CLIENT_HEADERS}
    for header in (args.http_headers or {}).items():
        requests.utils.check_header_validity(header)
        header[1].encode("latin-1")
        assert header[1], "an empty header is sent as nothing at all"
    for key, value in (args.config_drive_metadata or {}).items():
        assert key.isprintable() and value.isprintable()
    if args.ssh_key is not None:
        kind, data = args.ssh_key.split()[:2]
        fields = _ssh_strings(base64.b64decode(data))
        assert fields[0].decode() == kind
        if kind == "ssh-ed25519":
            assert len(fields) == 2 and len(fields[1]) == 32
    if args.config_drive_user_data is not None:
        assert args.config_drive_user_data.startswith(("#cloud-config", "#!"))
    parts = urlsplit(args.image_url)
    assert parts.hostname is not None
    parts.hostname.encode("idna")
    assert parts.hostname.lower() not in {"metadata.google.internal"}
    with contextlib.suppress(ValueError):  # a name, not an address
        assert not ipaddress.ip_address(parts.hostname.split("%")[0]).is_link_local
    assert parts.port is None or 0 < parts.port < 65536
    requests.Request("GET", args.image_url, headers=args.http_headers).prepare()


def _secret_leaves(inputs: Mapping[str, Any]) -> list[str]:
    """Marked strings in the values of secret fields (map keys, such as header names, may be named)."""
    leaves: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and MARKER in value:
            leaves.append(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for name in SECRET_FIELDS:
        walk(inputs.get(name))
    return leaves


def assert_failures_name_fields(result: CheckResult, allowed: set[str], inputs: Mapping[str, Any]) -> None:
    secrets = _secret_leaves(inputs)
    for failure in result.failures or []:
        assert failure.property in allowed, failure
        assert failure.reason.startswith(f"{failure.property}: "), failure.reason
        assert "\nFix: " in failure.reason or ". Fix: " in failure.reason, failure.reason
        for secret in secrets:
            assert secret not in failure.reason, f"a secret value is quoted: {failure.reason[:200]!r}"


@pytest.mark.parametrize("field", FIELDS)
def test_a_bad_value_of_any_field_is_a_failure_naming_it_never_an_exception(
    field: str, ledger: Ledger
) -> None:
    @FUZZ
    @given(value=_values(field))
    def check_one(value: Any) -> None:
        ledger.fuzzed(inputs=1)
        inputs = {**VALID, field: value}
        result = ByoiProvider().check({}, inputs)
        assert_failures_name_fields(result, {field, *PARTNERS.get(field, ())}, inputs)
        if not result.failures and not _has_unknown(value):
            assert_usable(result.inputs)
        if _has_unknown(value):
            assert field not in {failure.property for failure in result.failures or []}, "unknowns wait"

    check_one()


# What fuzzing found accepted although it could not be sent: each must stay refused.
FOUND_BY_FUZZING = [
    ("http_headers", {"Authorization": "Bearer S3CR3T\u20ac"}),
    ("http_headers", {"Authorization": "Bearer S3CR3T\x01"}),
    ("http_headers", {"Authorization": " Basic S3CR3T"}),
    ("image_url", "https://" + "a" * 64 + ".example/debian-12.qcow2"),
    ("image_url", "https://images..example/debian-12.qcow2"),
    ("image_url", "https://images.example.net:0/debian-12.qcow2"),
    ("image_url", "https://images.example.net:99999/debian-12.qcow2"),
    ("image_url", "https://images.example.net::/debian-12.qcow2"),
    # Found by hand (issue 12): accepted, though they could only break the download.
    ("http_headers", {"Host": "S3CR3T.example"}),
    ("http_headers", {"Content-Length": "0"}),
    ("http_headers", {"X-Auth-Token": ""}),
    ("config_drive_metadata", {"token": "S3CR3T\x07"}),
    ("config_drive_metadata", {"to\nken": "S3CR3T"}),
    ("image_url", "http://169.254.169.254/latest/debian-12.qcow2"),
    ("ssh_key", edited_key(1, b"")),
    ("ssh_key", edited_key(0, b"\x00")),
    ("config_drive_user_data", "#!/bin/sh\n# " + "S3CR3T" * 140_000),
    ("config_drive_user_data", base64_of("S3CR3T: not a document")),
]


@pytest.mark.parametrize(("field", "value"), FOUND_BY_FUZZING)
def test_values_fuzzing_found_are_refused_naming_the_field(field: str, value: Any) -> None:
    inputs = {**VALID, field: value}

    result = ByoiProvider().check({}, inputs)

    assert [failure.property for failure in result.failures] == [field]
    assert_failures_name_fields(result, {field}, inputs)


field_names = st.one_of(st.sampled_from(FIELDS), odd_text)


@settings(FUZZ, max_examples=200)
@given(inputs=st.dictionaries(field_names, st.one_of([_values(name) for name in FIELDS]), max_size=8))
def test_any_set_of_inputs_gets_failures_naming_fields_never_an_exception(
    inputs: dict[str, Any], ledger: Ledger
) -> None:
    ledger.fuzzed(inputs=1)
    result = ByoiProvider().check({}, inputs)

    unknown_keys = set(inputs) - set(FIELDS)
    required = {name for name, info in ByoiInstallationArgs.model_fields.items() if info.is_required()}
    # byoi_64 (the default template) also needs these; byolinux_64 does not (tests/provider/test_fidelity.py).
    template_required = set(TEMPLATE_REQUIRED["byoi_64"])
    allowed = set(inputs) | required | template_required
    allowed |= {partner for name in inputs for partner in PARTNERS.get(name, ())}
    assert_failures_name_fields(result, allowed, inputs)
    named = {failure.property for failure in result.failures or []}
    assert unknown_keys <= named, "every key that is no input is named"
    assert required - set(inputs) <= named, "every missing required input is named"
    if not result.failures and not any(_has_unknown(value) for value in inputs.values()):
        assert_usable(result.inputs)


# Through the real server, values travel as protobuf Structs: JSON types only, numbers as floats.
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False), odd_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(odd_text, children, max_size=3),
    max_leaves=6,
)


@settings(FUZZ, max_examples=30)
@given(field=st.sampled_from(FIELDS), value=json_values, marker=_secret_text())
def test_bad_values_through_the_real_provider_server_are_failures(
    provider: ProviderProcess, ledger: Ledger, field: str, value: Any, marker: str
) -> None:
    if field in SECRET_FIELDS and isinstance(value, dict):
        value = {key: marker for key in value}
    ledger.fuzzed(inputs=1)

    result = provider.check({}, {**VALID, field: value})

    for failure in result.failures:
        assert failure.property in {field, *PARTNERS.get(field, ())}, failure
        assert failure.reason.startswith(f"{failure.property}: ")
        if field in SECRET_FIELDS:
            assert MARKER not in failure.reason
