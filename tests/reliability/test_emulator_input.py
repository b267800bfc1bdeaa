"""The emulator fuzzed through its HTTP API: bad bodies and query strings get OVH-shaped refusals, not 500.

OVH's client decodes every error body as JSON, so every answer must be JSON too. Requests are signed as
OVH's client signs them (the signature is computed here, independently of the emulator's own code), so that
they reach the routes' own validation. The reinstall requests target a server kept busy by a reinstall that
never ends: a body that passes every check is refused as a conflict, and no generated image URL is ever
downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ovh_emulator.testing import RunningEmulator
from testkit.polling import wait_until

from .ledger import Ledger
from .support import HEADER_VALUE

FUZZ = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
REINSTALL_KEYS = ["operatingSystem", "customizations", "properties", "storage", "bogus"]
CUSTOMIZATION_KEYS = [
    "imageURL",
    "imageType",
    "efiBootloaderPath",
    "imageCheckSum",
    "imageCheckSumType",
    "hostname",
    "sshKey",
    "configDriveUserData",
    "configDriveMetadata",
    "httpHeaders",
    "language",
]
text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "byoi_64", "debian12_64", "qcow2", "raw", "\n", "\x00", "é", "%", "ns1", "sha256"]),
)
# Integers beyond what SQLite stores (64 bits); longer ones (4300 digits and more) are sent as raw bytes.
huge_numbers = st.integers(min_value=2**62, max_value=10**60) | st.integers(
    min_value=-(10**60), max_value=-(2**62)
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), huge_numbers, st.floats(allow_nan=False), text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)
customizations = st.one_of(
    json_values, st.dictionaries(st.sampled_from(CUSTOMIZATION_KEYS), json_values, max_size=6)
)
reinstall_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "operatingSystem": st.one_of(
                st.sampled_from(["byoi_64", "byolinux_64", "debian12_64"]), json_values
            )
        },
        optional={"customizations": customizations, "properties": json_values, "bogus": json_values},
    ),
)
# Nested past any schema, past what the JSON parser's recursion allows: arrays, objects, or both.
deep_json = st.builds(
    lambda depth, kind: (
        "[" * depth + "]" * depth if kind == "array" else '{"a":' * depth + "1" + "}" * depth
    ).encode(),
    st.integers(min_value=30, max_value=100_000),
    st.sampled_from(["array", "object"]),
)
raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"{", b"\xff\xfe", b'{"operatingSystem": "\xff"}', b"null", b"[]", b"1e999", b"\x00"]),
    st.sampled_from([b'"\\ud800"', b'{"operatingSystem": "\\udfff"}', b"9" * 4400]),
    deep_json,
)
# Digits as `str.isdigit` sees them (superscripts, other scripts), and numbers too long for any field.
unicode_digits = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6)
long_numbers = huge_numbers.map(lambda number: str(abs(number))) | st.integers(4300, 4500).map(
    lambda n: "1" * n
)


class Api:
    """Signed HTTP calls to the emulator, and what every answer must be."""

    def __init__(self, emulator: RunningEmulator, ledger: Ledger) -> None:
        self.emulator = emulator
        self.ledger = ledger
        self.session = requests.Session()
        self.delta = int(self.session.get(f"{emulator.url}/auth/time", timeout=10).json()) - int(time.time())

    def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        admin: bool = False,
        timestamp: str | None = None,
    ) -> requests.Response:
        url = f"{self.emulator.base_url}/_emulator/{path}" if admin else f"{self.emulator.url}{path}"
        headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
        if not admin:
            now = str(int(time.time()) + self.delta) if timestamp is None else timestamp
            signed = "+".join(
                [
                    self.emulator.application_secret,
                    self.emulator.consumer_key,
                    method,
                    url,
                    body.decode("utf-8", "surrogateescape"),
                    now,
                ]
            )
            headers |= {
                "X-Ovh-Application": self.emulator.application_key,
                "X-Ovh-Consumer": self.emulator.consumer_key,
                "X-Ovh-Timestamp": now,
                "X-Ovh-Signature": "$1$"
                + hashlib.sha1(signed.encode("utf-8", "surrogateescape")).hexdigest(),
            }
            # UTF-8, as any client sends text the header's own encoding (Latin-1) cannot hold.
            headers["X-Ovh-Timestamp"] = now.encode()
        return self.send(method, url, body, headers)

    def image(self, name: str) -> requests.Response:
        url = f"{self.emulator.base_url}/images/{quote(name, safe='/')}"
        return self.send("GET", url, b"", {"Authorization": HEADER_VALUE}, json_errors_only=True)

    def send(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: dict[str, str | bytes],
        *,
        json_errors_only: bool = False,
    ) -> requests.Response:
        self.ledger.fuzzed(bodies=1)
        answer = self.session.request(method, url, data=body or None, headers=headers, timeout=30)
        shown = f"{method} {url[:200]} {body[:200]!r}"
        assert answer.status_code < 500, f"{shown}: {answer.status_code} {answer.text}"
        if answer.status_code >= 400 or not json_errors_only:
            answer.json()  # OVH's client fails on an answer that is not JSON
        return answer


@pytest.fixture(scope="module")
def api(ovh_api: RunningEmulator, ledger: Ledger) -> Api:
    return Api(ovh_api, ledger)


@pytest.fixture(scope="module")
def busy_server(ovh_api: RunningEmulator, api: Api) -> Iterator[str]:
    """A server whose reinstall never ends."""
    name = "fuzz.reliability.ovh"
    ovh_api.add_server(name)
    ovh_api.set_faults({"rules": [{"task": "neverFinish", "serviceName": name, "times": 1}]})
    try:
        api.call("POST", f"/dedicated/server/{name}/reinstall", b'{"operatingSystem": "debian12_64"}')
    finally:
        ovh_api.set_faults({})
    wait_until(lambda: ovh_api.server(name)["installs"][-1]["status"] == "doing", what="the install runs")
    yield name


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


@FUZZ
@given(body=reinstall_bodies)
def test_reinstall_bodies_get_ovh_shaped_refusals(api: Api, busy_server: str, body: Any) -> None:
    answer = api.call("POST", f"/dedicated/server/{busy_server}/reinstall", _json_bytes(body))

    assert answer.status_code in (400, 404, 409), answer.text
    assert set(answer.json()) == {"class", "message"}


@settings(FUZZ, max_examples=60)
@given(body=raw_bodies)
def test_bodies_that_are_not_json_or_not_utf8_are_refused(api: Api, busy_server: str, body: bytes) -> None:
    answer = api.call("POST", f"/dedicated/server/{busy_server}/reinstall", body)

    assert answer.status_code in (400, 404, 409), answer.text


query_values = st.one_of(text, st.text(st.characters(max_codepoint=0x2FF), max_size=10))


@settings(FUZZ, max_examples=80)
@given(
    route=st.sampled_from(["/task", "/task/{value}", "/install/status", "", "/specifications/hardware"]),
    value=query_values | unicode_digits | long_numbers,
    query=st.dictionaries(st.sampled_from(["function", "status", "x", ""]), query_values, max_size=3),
    server=st.sampled_from(["{busy}", "ns0.unknown.example", "%00", ".."]),
)
def test_query_strings_and_path_values_never_break_a_route(
    api: Api, busy_server: str, route: str, value: str, query: dict[str, str], server: str
) -> None:
    path = f"/dedicated/server/{quote(server.format(busy=busy_server), safe='')}"
    path += route.format(value=quote(value, safe="")) if value else route.format(value="0")
    if query:
        path += "?" + "&".join(f"{quote(key)}={quote(item)}" for key, item in sorted(query.items()))

    api.call("GET", path)


@settings(FUZZ, max_examples=40)
@given(
    task_id=st.one_of(unicode_digits, long_numbers, st.integers(min_value=0, max_value=2**64).map(str)),
    cancel=st.booleans(),
)
def test_task_ids_of_any_shape_never_break_the_task_routes(
    api: Api, busy_server: str, task_id: str, cancel: bool
) -> None:
    path = f"/dedicated/server/{busy_server}/task/{quote(task_id, safe='')}"

    answer = api.call("POST", path + "/cancel") if cancel else api.call("GET", path)

    assert answer.status_code in (400, 404), answer.text
    assert set(answer.json()) == {"class", "message"}


admin_server_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "serviceName": st.one_of(text, st.from_regex(r"\Az[a-z0-9.-]{0,20}\Z")),
            "diskSizeBytes": st.one_of(st.integers(), huge_numbers, json_values),
            "memoryBytes": st.one_of(st.integers(), huge_numbers, json_values),
            "bootMode": st.one_of(st.sampled_from(["uefi", "legacy", "bios"]), json_values),
            "bogus": json_values,
        },
    ),
)
fault_specs = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "seed": st.one_of(st.integers(), json_values),
            "busyAnswer": st.one_of(st.sampled_from(["conflict", "taskAlreadyExists"]), json_values),
            "rules": st.lists(
                st.one_of(
                    json_values,
                    st.dictionaries(
                        st.sampled_from(
                            ["route", "times", "rate", "status", "drop", "latency", "task", "holdAtStep", "x"]
                        ),
                        st.one_of(
                            st.sampled_from(["*", "GET *", "POST /bogus", 503, 418, 0.5, -1, True]),
                            json_values,
                        ),
                        max_size=4,
                    ),
                ),
                max_size=3,
            ),
        },
    ),
)


@settings(FUZZ, max_examples=80)
@given(
    target=st.sampled_from(["servers", "faults", "out-of-band"]),
    body=st.one_of(admin_server_bodies, fault_specs, raw_bodies),
)
def test_admin_routes_refuse_bad_bodies_with_a_message(
    api: Api, ovh_api: RunningEmulator, busy_server: str, target: str, body: Any
) -> None:
    raw = body if isinstance(body, bytes) else _json_bytes(body)
    path = {
        "servers": "servers",
        "faults": "faults",
        "out-of-band": f"servers/{busy_server}/reinstall-out-of-band",
    }[target]
    try:
        answer = api.call("PUT" if target == "faults" else "POST", path, raw, admin=True)
    finally:
        # A valid fault set would change how the next requests are answered.
        ovh_api.set_faults({})

    if answer.status_code >= 400:
        assert answer.json().get("message"), answer.text


@settings(FUZZ, max_examples=40)
@given(
    timestamp=st.one_of(unicode_digits, long_numbers, text, st.integers().map(str)).filter(
        # What HTTP lets a header carry: other characters never reach a route (aiohttp refuses the request).
        lambda value: re.fullmatch(r"\S.*", value) is not None and value.isprintable()
    )
)
def test_timestamps_of_any_shape_are_refused_by_the_auth_layer(api: Api, timestamp: str) -> None:
    answer = api.call("GET", "/dedicated/server", timestamp=timestamp)

    assert answer.status_code in (400, 401), answer.text
    assert set(answer.json()) == {"errorCode", "httpCode", "message"}


image_names = st.one_of(
    text,
    st.text(st.characters(blacklist_categories=["Cs"]), min_size=250, max_size=5000),
    st.lists(st.sampled_from(["..", ".", "a" * 255, "x\x00", "small.raw", "", "%00"]), max_size=20).map(
        "/".join
    ),
)


@settings(FUZZ, max_examples=60)
@given(name=image_names)
def test_image_names_of_any_shape_are_served_or_not_found(api: Api, name: str) -> None:
    answer = api.image(name)

    assert answer.status_code in (200, 404), answer.text


def test_the_emulator_still_answers_after_the_fuzzing(
    api: Api, ovh_api: RunningEmulator, busy_server: str, new_server: Callable[[], str]
) -> None:
    server = new_server()

    answer = api.call("GET", f"/dedicated/server/{server}")

    assert answer.json()["name"] == server
    assert ovh_api.server(busy_server)["installs"][-1]["status"] == "doing"
    assert "Traceback" not in "\n".join(ovh_api.output)
