"""Bad input values for every input field, as hypothesis strategies: near misses of a valid value, other
types, nesting, odd and huge text, values not known yet, and (in secret fields) a marker no message may quote.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from ovh_byoi.spec import SECRET_INPUTS, ByoiInstallationArgs
from pulumi.output import Unknown

from .support import EFI_DEBIAN

# What no failure may quote: values of the secret inputs carry passwords and tokens. Every input the model
# declares secret is fuzzed with it; tests/reliability/test_secrets.py keeps its own list of the inputs that
# must be secret, so that unmarking one fails there.
MARKER = "S3CR3T"
SECRET_FIELDS = SECRET_INPUTS
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
    "disk_group_id": 1,
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


CLIENT_HEADERS = [
    "Host",
    "host",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "TE",
    "Upgrade",
    "Range",
]
LINK_LOCAL_HOSTS = [
    "169.254.169.254",
    "169.254.0.1",
    "[fe80::1]",
    "[fe80::1%25eth0]",
    "[::ffff:169.254.169.254]",
    "2852039166",
    "0xa9fea9fe",
    "169.254.43518",
    "0251.0376.0251.0376",
    "metadata.google.internal",
    "[fd00:ec2::254]",
]


def base64_of(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


def edited_key(cut: int, extra: bytes) -> str:
    blob = base64.b64decode(SSH_KEY.split()[1])
    edited = blob[: len(blob) - cut] + extra
    return f"ssh-ed25519 {base64.b64encode(edited).decode()} ops@example"


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


def secret_text() -> st.SearchStrategy[str]:
    return st.builds(lambda before, after: before + MARKER + after, odd_text, odd_text)


def values(name: str) -> st.SearchStrategy[Any]:
    """Values of one field: near misses of a valid one, other types, nesting, and (for secrets) a marker."""
    scalars = _scalars(name)
    nested = st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(odd_text, children, max_size=3),
        max_leaves=6,
    )
    field_values = _FIELD_VALUES.get(name)
    return st.one_of([scalars, nested, *(field_values() if field_values else [])])


def _header_values() -> list[st.SearchStrategy[Any]]:
    well_named = st.dictionaries(st.sampled_from(["Authorization", "X-Token"]), _short_secret(), min_size=1)
    return [
        st.dictionaries(st.sampled_from(["Bad Name", "", "X\nInjected"]), secret_text(), max_size=2),
        # Well-formed names: only the value can be wrong.
        well_named,
        well_named,
        # Headers the client writes itself, empty values, one name in two cases.
        st.dictionaries(st.sampled_from(CLIENT_HEADERS), _short_secret(), min_size=1, max_size=2),
        st.dictionaries(st.sampled_from(["X-Auth-Token", "PRIVATE-TOKEN"]), st.just(""), min_size=1),
        st.builds(
            lambda name, value: {name: value, name.lower(): value},
            st.sampled_from(["Authorization", "X-Auth-Token"]),
            _short_secret(),
        ),
    ]


def _url_values() -> list[st.SearchStrategy[Any]]:
    hosts = st.one_of(
        st.text(st.sampled_from("ab-.é1"), max_size=300),
        st.builds(lambda size: "a" * size + ".example", st.integers(60, 70)),
        odd_text,
    )
    ports = st.one_of(st.integers(-5, 70000).map(str), odd_text)
    return [
        st.builds(lambda host: f"https://{host}/debian-12.qcow2", hosts),
        st.builds(lambda port: f"http://images.example.net:{port}/debian-12.qcow2", ports),
        st.builds(lambda host: f"http://{host}/latest/debian-12.qcow2", st.sampled_from(LINK_LOCAL_HOSTS)),
        # Pre-signed URLs: accepted, their query being a token (kept secret, masked in messages).
        st.builds(
            lambda query: f"https://s3.gra.io.cloud.ovh.net/debian-12.qcow2?X-Amz-Signature={query}",
            st.text(st.sampled_from("abcdef0123456789%&=?"), max_size=80),
        ),
    ]


def _ssh_key_values() -> list[st.SearchStrategy[Any]]:
    # A valid key's data, cut, extended or edited: still starts with the right type name.
    return [st.builds(edited_key, st.integers(0, 60), st.binary(max_size=40))]


def _metadata_values() -> list[st.SearchStrategy[Any]]:
    return [
        *[st.dictionaries(odd_text, secret_text(), max_size=3)] * 2,
        st.dictionaries(
            st.sampled_from(["role", "token"]),
            st.builds(lambda c, t: t + c + MARKER, st.characters(max_codepoint=0x1F), st.text(max_size=5)),
            min_size=1,
        ),
    ]


def _user_data_values() -> list[st.SearchStrategy[Any]]:
    return [
        st.builds(lambda body: "#cloud-config\n" + body, secret_text()),
        st.builds(lambda body: "#!/bin/sh\n" + body, secret_text()),
        st.dictionaries(odd_text, secret_text(), max_size=3),
        # Base64, as OVH tells users to send user data: of a document, or of anything.
        st.builds(base64_of, st.builds(lambda body: "#cloud-config\n" + body, secret_text())),
        st.builds(base64_of, secret_text()),
        # Beyond OVH's request body limit once in base64.
        st.builds(lambda size: "#!/bin/sh\n# " + MARKER * size, st.integers(100_000, 140_000)),
    ]


_FIELD_VALUES: dict[str, Callable[[], list[st.SearchStrategy[Any]]]] = {
    "http_headers": _header_values,
    "image_url": _url_values,
    "ssh_key": _ssh_key_values,
    "config_drive_metadata": _metadata_values,
    "config_drive_user_data": _user_data_values,
}


def has_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, Mapping):
        return any(has_unknown(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(has_unknown(item) for item in value)
    return False
