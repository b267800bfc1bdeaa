"""Bad input, generated: every input field through `check`, in process and through the real gRPC server.

Whatever a program passes (wrong types, any unicode, huge or empty strings, line breaks and control
characters, values not known yet, keys that are no input), `check` answers with failures that each name a
field and its fix, never with an exception, and never quote a secret. What it accepts, the rest of the
provider can use: the model validates it, OVH's request body is built from it, and the headers and URL can
really be sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import requests.utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ovh_byoi.provider import ByoiProvider
from ovh_byoi.spec import ByoiInstallationArgs, ReinstallRequest
from ovh_byoi_harness.provider_process import ProviderProcess
from pulumi.dynamic import CheckResult
from pulumi.output import Unknown

from .ledger import Ledger
from .support import EFI_DEBIAN

# What no failure may quote: values of these fields carry passwords and tokens.
MARKER = "S3CR3T"
SECRET_FIELDS = ("http_headers", "config_drive_user_data", "config_drive_metadata")
# Rules across fields: a failure may name the partner of the field that went wrong.
PARTNERS = {"image_checksum": ("image_checksum_type",), "image_checksum_type": ("image_checksum",)}
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops@example"
VALID: dict[str, Any] = {
    "service_name": "ns1000001.emulator.ovh",
    "image_url": "https://images.example.net/debian-12.qcow2",
    "image_type": "qcow2",
    "efi_bootloader_path": EFI_DEBIAN,
    "image_checksum": "ab" * 32,
    "image_checksum_type": "sha256",
    "hostname": "web-1",
    "ssh_key": SSH_KEY,
    "config_drive_user_data": "#cloud-config\npackages: [vim]\n",
    "config_drive_metadata": {"role": "web"},
    "http_headers": {"Authorization": "Basic bWlycm9yOnB3"},
    "operating_system": "byoi_64",
    "adopt": False,
    "timeout_minutes": 60,
    "preflight": "quick",
}
FIELDS = tuple(ByoiInstallationArgs.model_fields)
FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ODD_TEXTS = [
    "",
    " ",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "\x1b[31m",
    "\u2028",
    "\ufeff",
    "\u202e",
    "é",
    "😀",
    "\\",
    "%00",
]
odd_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(ODD_TEXTS),
    st.text(st.characters(max_codepoint=0x1F), max_size=6),
    # Huge strings: a megabyte of one character, or a long run of a short pattern.
    st.builds(
        lambda char, size: char * size, st.sampled_from(["a", "é", "\n", "0", "\\"]), st.integers(1, 2**20)
    ),
)


def _splice(valid: str, position: int, inserted: str) -> str:
    cut = position % (len(valid) + 1)
    return valid[:cut] + inserted + valid[cut:]


def _scalars(name: str) -> st.SearchStrategy[Any]:
    valid = VALID[name]
    near_misses: list[st.SearchStrategy[Any]] = [
        st.just(valid),
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        odd_text,
        st.builds(Unknown),
    ]
    if isinstance(valid, str):
        near_misses += [
            st.builds(_splice, st.just(valid), st.integers(0, 4096), odd_text),
            st.builds(lambda text: f" {text} ".upper(), st.just(valid)),
            st.builds(lambda times: valid * times, st.integers(2, 600)),
        ]
    return st.one_of(near_misses)


def _short_secret() -> st.SearchStrategy[str]:
    # Short, and often beyond Latin-1 or with control characters: what an HTTP header cannot carry.
    around = st.one_of(
        st.text(max_size=8),
        st.sampled_from(ODD_TEXTS),
        st.text(st.characters(min_codepoint=0x100), min_size=1, max_size=3),
    )
    return st.builds(lambda before, after: before + MARKER + after, around, around)


def _secret_text() -> st.SearchStrategy[str]:
    return st.builds(lambda before, after: before + MARKER + after, odd_text, odd_text)


def _values(name: str) -> st.SearchStrategy[Any]:
    """Values of one field: near misses of a valid one, other types, nesting, and (for secrets) a marker."""
    scalars = _scalars(name)
    nested = st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(odd_text, children, max_size=3),
        max_leaves=6,
    )
    options = [scalars, nested]
    if name == "http_headers":
        well_named = st.dictionaries(
            st.sampled_from(["Authorization", "X-Token"]), _short_secret(), min_size=1
        )
        options += [
            st.dictionaries(st.sampled_from(["Bad Name", "", "X\nInjected"]), _secret_text(), max_size=2),
            # Well-formed names: only the value can be wrong.
            well_named,
            well_named,
        ]
    if name == "image_url":
        hosts = st.one_of(
            st.text(st.sampled_from("ab-.é1"), max_size=300),
            st.builds(lambda size: "a" * size + ".example", st.integers(60, 70)),
            odd_text,
        )
        ports = st.one_of(st.integers(-5, 70000).map(str), odd_text)
        options += [
            st.builds(lambda host: f"https://{host}/debian-12.qcow2", hosts),
            st.builds(lambda port: f"http://images.example.net:{port}/debian-12.qcow2", ports),
        ]
    if name == "config_drive_metadata":
        options += [st.dictionaries(odd_text, _secret_text(), max_size=3)] * 2
    if name == "config_drive_user_data":
        options += [
            st.builds(lambda body: "#cloud-config\n" + body, _secret_text()),
            st.builds(lambda body: "#!/bin/sh\n" + body, _secret_text()),
            st.dictionaries(odd_text, _secret_text(), max_size=3),
        ]
    return st.one_of(options)


def _has_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, Mapping):
        return any(_has_unknown(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_unknown(item) for item in value)
    return False


def assert_usable(inputs: Mapping[str, Any]) -> None:
    """Accepted inputs go through the model, make OVH's body, and can be sent over HTTP as they are."""
    args = ByoiInstallationArgs.model_validate(dict(inputs))
    json.dumps(ReinstallRequest.from_args(args).body(), allow_nan=False)
    for header in (args.http_headers or {}).items():
        requests.utils.check_header_validity(header)
        header[1].encode("latin-1")
    parts = urlsplit(args.image_url)
    assert parts.hostname is not None
    parts.hostname.encode("idna")
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
    allowed = set(inputs) | required | {partner for name in inputs for partner in PARTNERS.get(name, ())}
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
