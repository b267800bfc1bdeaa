"""The journal of started reinstalls: what lets an interrupted run be resumed instead of erasing twice."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest
from ovh_byoi.journal import _SCHEMA, Journal, default_path, key_path

ENDPOINT = "http://127.0.0.1:8080/1.0"
SERVER = "ns1000001.emulator.ovh"
BODY = {
    "operatingSystem": "byoi_64",
    "customizations": {
        "imageURL": "https://images.example.net/a.qcow2",
        "configDriveUserData": "c2VjcmV0LXVzZXItZGF0YQ==",
    },
}


def test_an_open_reinstall_is_found_until_a_run_closes_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "reinstalls.sqlite")
    fingerprint = journal.fingerprint(BODY)

    journal.record(ENDPOINT, SERVER, 4200001, fingerprint)

    found = journal.open_reinstall(ENDPOINT, SERVER, fingerprint)
    assert found is not None and found.task_id == 4200001
    assert journal.open_reinstall(ENDPOINT, "ns1000002.emulator.ovh", fingerprint) is None
    assert journal.open_reinstall("https://eu.api.ovh.com/1.0", SERVER, fingerprint) is None
    other = journal.fingerprint({**BODY, "operatingSystem": "byolinux_64"})
    assert journal.open_reinstall(ENDPOINT, SERVER, other) is None

    journal.close(ENDPOINT, SERVER, 4200001)

    assert journal.open_reinstall(ENDPOINT, SERVER, fingerprint) is None


def test_the_newest_open_reinstall_is_the_one_resumed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "reinstalls.sqlite")
    fingerprint = journal.fingerprint(BODY)
    journal.record(ENDPOINT, SERVER, 4200001, fingerprint)
    journal.record(ENDPOINT, SERVER, 4200007, fingerprint)

    found = journal.open_reinstall(ENDPOINT, SERVER, fingerprint)
    assert found is not None and found.task_id == 4200007


def test_fingerprints_are_stable_keyed_and_hold_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "reinstalls.sqlite"
    first = Journal(path).fingerprint(BODY)
    reordered = {
        "customizations": dict(reversed(list(BODY["customizations"].items()))),
        "operatingSystem": "byoi_64",
    }

    assert Journal(path).fingerprint(reordered) == first, "another process, another key order: same install"
    assert Journal(tmp_path / "other.sqlite").fingerprint(BODY) != first, "keyed per journal"
    Journal(path).record(ENDPOINT, SERVER, 4200001, first)
    stored = path.read_bytes()
    assert b"c2VjcmV0LXVzZXItZGF0YQ==" not in stored
    assert b"secret-user-data" not in stored
    assert b"images.example.net" not in stored


def test_processes_and_threads_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "reinstalls.sqlite"
    fingerprint = Journal(path).fingerprint(BODY)

    def record(task_id: int) -> None:
        Journal(path).record(ENDPOINT, f"ns{task_id}.emulator.ovh", task_id, fingerprint)

    threads = [threading.Thread(target=record, args=(task_id,)) for task_id in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM reinstalls").fetchone() == (20,)


def test_the_path_comes_from_the_environment_or_the_xdg_state_folder(tmp_path: Path) -> None:
    assert default_path({"OVH_BYOI_JOURNAL": str(tmp_path / "j.sqlite")}) == tmp_path / "j.sqlite"
    assert default_path({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "ovh-byoi" / "reinstalls.sqlite"
    assert default_path({}).parts[-4:] == (".local", "state", "ovh-byoi", "reinstalls.sqlite")


def test_the_journal_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ovh-byoi" / "reinstalls.sqlite"
    journal = Journal(path)

    journal.record(ENDPOINT, SERVER, 4200001, journal.fingerprint(BODY))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path(path).stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_the_fingerprint_key_is_not_in_the_journal(tmp_path: Path) -> None:
    # With the key in the file, a copy of the journal (a backup, a CI cache) would let anyone test guesses
    # of the user data against a fingerprint offline.
    path = tmp_path / "reinstalls.sqlite"
    journal = Journal(path)
    fingerprint = journal.fingerprint(BODY)
    journal.record(ENDPOINT, SERVER, 4200001, fingerprint)
    key = bytes.fromhex(key_path(path).read_text())

    assert len(key) >= 32
    stored = path.read_bytes()
    assert key.hex().encode() not in stored and key not in stored
    assert hmac.new(key, _canonical(BODY), hashlib.sha256).hexdigest() == fingerprint


def _canonical(body: dict[str, object]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def test_a_journal_of_an_earlier_version_keeps_its_records_and_loses_its_key(tmp_path: Path) -> None:
    path = tmp_path / "reinstalls.sqlite"
    old_key = secrets.token_bytes(32)
    old_fingerprint = hmac.new(old_key, _canonical(BODY), hashlib.sha256).hexdigest()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.executescript(_SCHEMA)
        connection.execute("INSERT INTO settings VALUES ('fingerprint_key', ?)", (old_key.hex(),))
        connection.execute(
            "INSERT INTO reinstalls VALUES (?, ?, ?, ?, ?, NULL)",
            (ENDPOINT, SERVER, 4200001, old_fingerprint, time.time()),
        )
        connection.commit()
    path.chmod(0o644)

    journal = Journal(path)
    found = journal.open_reinstall(ENDPOINT, SERVER, journal.fingerprint(BODY))

    assert found is not None and found.task_id == 4200001, "an interrupted install is still resumed"
    assert old_key.hex().encode() not in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_damaged_key_file_is_reported_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "reinstalls.sqlite"
    key_path(path).write_text("not a key")

    with pytest.raises(OSError, match=r"reinstalls\.sqlite\.key does not hold a fingerprint key"):
        Journal(path).fingerprint(BODY)
