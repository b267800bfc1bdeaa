"""A local record of the reinstalls this machine asked OVH for, so that an interrupted run never asks twice.

Pulumi forgets a create that was interrupted (a second Ctrl-C, a dead CI runner, a deadline): the next
`pulumi up` creates the resource again. OVH's tasks do not say which image they install, so without a record
the provider could not tell its own earlier reinstall from anyone else's and would erase the server a second
time. Each reinstall OVH accepted is recorded with a fingerprint of what it installs; the run that sees it
through to the end (or to a failure) closes it. A later install of the same thing on the same server finds
the open record and follows that task instead of asking again, provided no other reinstall came after it.
A request is also noted before it is sent, with the newest reinstall task known then: a run killed while
waiting for OVH's answer leaves that note, and the next run takes a reinstall task that appeared since as
the one OVH started for it.

The file is SQLite (several provider processes may share it), at `OVH_BYOI_JOURNAL`, else
`$XDG_STATE_HOME/ovh-byoi/reinstalls.sqlite` (`~/.local/state/...`), readable by its owner only (0600, in a
folder created 0700). Fingerprints are keyed hashes (HMAC-SHA256) whose random key lives in a file of its own
beside the journal (`reinstalls.sqlite.key`, 0600): a copy of the journal alone (a backup, a CI cache)
cannot be used to test guesses of the user data or headers against a fingerprint. A journal of an earlier
version, which kept its key in the file, has the key moved out on first use, so that its records still match.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    from .spec import ReinstallRequest

__all__ = [
    "JOURNAL_ENV",
    "Journal",
    "OpenReinstall",
    "ServerJournal",
    "UnansweredRequest",
    "default_path",
    "key_path",
]

JOURNAL_ENV: Final = "OVH_BYOI_JOURNAL"
# Past this age an unfinished record is not resumed: OVH purges old tasks, and nobody resumes a week later.
RESUME_WITHIN_SECONDS: Final = 7 * 24 * 3600

R = TypeVar("R")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reinstalls (
    endpoint TEXT NOT NULL,
    service_name TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    asked_at REAL NOT NULL,
    closed_at REAL,
    PRIMARY KEY (endpoint, service_name, task_id)
);
CREATE TABLE IF NOT EXISTS requests (
    endpoint TEXT NOT NULL,
    service_name TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    newest_known_task INTEGER NOT NULL,
    asked_at REAL NOT NULL,
    PRIMARY KEY (endpoint, service_name, fingerprint)
);
"""

_FORGET_REQUEST = "DELETE FROM requests WHERE endpoint = ? AND service_name = ? AND fingerprint = ?"


def key_path(journal: Path) -> Path:
    """Where the journal's fingerprint key is kept: beside it, never in it."""
    return journal.with_name(journal.name + ".key")


def _private_folders(folder: Path) -> None:
    """Creates `folder` and its missing parents, each 0700; existing ones (such as /tmp) are left alone."""
    missing = [folder, *folder.parents]
    missing = [path for path in missing if not path.exists()]
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)


def _private_file(path: Path) -> None:
    """`path` exists and only its owner may read it (created so, or narrowed if an older version made it)."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(descriptor).st_mode & 0o077:
            os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


def _write_key_once(path: Path, key: bytes) -> bytes:
    """Stores `key` at `path` unless another process stored one first; the key that is there."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(key.hex())
            file.flush()
            os.fsync(file.fileno())
        # A link never replaces: of two processes racing, both end up with the first one's key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        key = b""
    if len(key) < 16:
        # An OSError, as for an unreadable journal: installing goes on, and the user is told which file.
        raise OSError(f"{path} does not hold a fingerprint key (remove it to have a new one made)")
    return key


def default_path(environ: Mapping[str, str] = os.environ) -> Path:
    explicit = environ.get(JOURNAL_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    state_home = environ.get("XDG_STATE_HOME", "").strip() or str(Path.home() / ".local" / "state")
    return Path(state_home) / "ovh-byoi" / "reinstalls.sqlite"


@dataclass(frozen=True)
class UnansweredRequest:
    """A reinstall request sent for this install whose answer no run received (the run died waiting).

    OVH may have started it: a reinstall task newer than `newest_known_task` would be its task.
    """

    newest_known_task: int
    asked_at: float


@dataclass(frozen=True)
class OpenReinstall:
    """A reinstall OVH accepted for this install whose end no run has seen yet."""

    task_id: int
    asked_at: float


class Journal:
    """The record of one machine's reinstalls. Opened per call: safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._prepared = False

    @classmethod
    def default(cls) -> Journal:
        return cls(default_path())

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction; IMMEDIATE so that concurrent writers queue instead of failing."""
        if not self._prepared:
            _private_folders(self.path.parent)
            _private_file(self.path)
            with contextlib.closing(sqlite3.connect(self.path, timeout=30.0)) as connection:
                connection.executescript(_SCHEMA)
            self._prepared = True
        connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()

    def _key(self, connection: sqlite3.Connection) -> bytes:
        """The fingerprint key, from its own file; called inside a write transaction, so one at a time."""
        path = key_path(self.path)
        row = connection.execute("SELECT value FROM settings WHERE name = 'fingerprint_key'").fetchone()
        if path.exists():
            key = _read_key(path)
        else:
            # An older journal's key is moved out, so that its open records keep matching.
            key = _write_key_once(path, bytes.fromhex(row[0]) if row else secrets.token_bytes(32))
        if row is not None:
            # Zeroed, not only unlinked from the table: the old key must not linger in the file's free pages.
            connection.execute("PRAGMA secure_delete = ON")
            connection.execute("DELETE FROM settings WHERE name = 'fingerprint_key'")
        return key

    def fingerprint(self, body: Mapping[str, Any]) -> str:
        """A keyed hash of a reinstall request body: equal bodies, equal fingerprints."""
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        with self._connect() as connection:
            return hmac.new(self._key(connection), canonical, hashlib.sha256).hexdigest()

    def asking(self, endpoint: str, service_name: str, fingerprint: str, newest_known_task: int) -> None:
        """A reinstall request is about to be sent, when `newest_known_task` is the newest reinstall task."""
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?, ?)",
                (endpoint, service_name, fingerprint, newest_known_task, time.time()),
            )

    def answered(self, endpoint: str, service_name: str, fingerprint: str) -> None:
        """The request got its answer (or OVH refused it): nothing is left to guess about it."""
        with self._connect() as connection:
            connection.execute(
                _FORGET_REQUEST,
                (endpoint, service_name, fingerprint),
            )

    def unanswered(self, endpoint: str, service_name: str, fingerprint: str) -> UnansweredRequest | None:
        """The request for this install that a run sent and never saw answered, if recent enough."""
        row = self._recent(
            "SELECT newest_known_task, asked_at FROM requests WHERE endpoint = ? AND service_name = ? "
            "AND fingerprint = ? AND asked_at > ?",
            endpoint,
            service_name,
            fingerprint,
        )
        return UnansweredRequest(int(row[0]), float(row[1])) if row else None

    def record(self, endpoint: str, service_name: str, task_id: int, fingerprint: str) -> None:
        """OVH accepted a reinstall: remember it until a run sees its end."""
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO reinstalls VALUES (?, ?, ?, ?, ?, NULL)",
                (endpoint, service_name, task_id, fingerprint, time.time()),
            )
            connection.execute(
                _FORGET_REQUEST,
                (endpoint, service_name, fingerprint),
            )

    def claimed(self, endpoint: str, service_name: str, task_ids: Sequence[int]) -> dict[int, str]:
        """The fingerprint recorded for each of `task_ids` that a run on this machine started."""
        if not task_ids:
            return {}
        marks = ", ".join("?" for _ in task_ids)
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT task_id, fingerprint FROM reinstalls WHERE endpoint = ? AND service_name = ? "
                f"AND task_id IN ({marks})",
                (endpoint, service_name, *task_ids),
            ).fetchall()
        return {int(task_id): str(fingerprint) for task_id, fingerprint in rows}

    def open_reinstall(self, endpoint: str, service_name: str, fingerprint: str) -> OpenReinstall | None:
        """The newest unclosed reinstall of this very install on this server, if recent enough."""
        row = self._recent(
            "SELECT task_id, asked_at FROM reinstalls WHERE endpoint = ? AND service_name = ? "
            "AND fingerprint = ? AND closed_at IS NULL AND asked_at > ? ORDER BY task_id DESC LIMIT 1",
            endpoint,
            service_name,
            fingerprint,
        )
        return OpenReinstall(int(row[0]), float(row[1])) if row else None

    def _recent(self, query: str, endpoint: str, service_name: str, fingerprint: str) -> Any:
        """The first row `query` selects for this install among records young enough to resume."""
        oldest = time.time() - RESUME_WITHIN_SECONDS
        with self._connect() as connection:
            return connection.execute(query, (endpoint, service_name, fingerprint, oldest)).fetchone()

    def close(self, endpoint: str, service_name: str, task_id: int) -> None:
        """A run saw the reinstall end (done or failed): never resume it again."""
        with self._connect() as connection:
            connection.execute(
                "UPDATE reinstalls SET closed_at = ? WHERE endpoint = ? AND service_name = ? AND task_id = ?",
                (time.time(), endpoint, service_name, task_id),
            )


class ServerJournal:
    """The journal's records about one server on one API endpoint, for the installs of one provider call.

    The journal only makes an interrupted run resumable: without one, or once it cannot be read or written,
    every method does nothing and answers None, the user is told once, and installing goes on. Methods given
    no fingerprint (None: the journal was unusable when it was asked for one) do nothing either.
    """

    def __init__(
        self, journal: Journal | None, endpoint: str, service_name: str, warn: Callable[[str], None]
    ) -> None:
        self.journal = journal
        self.endpoint = endpoint
        self.service_name = service_name
        self._warn = warn

    def _use(self, action: str, use: Callable[[Journal], R]) -> R | None:
        if self.journal is None:
            return None
        try:
            return use(self.journal)
        except (OSError, sqlite3.Error) as exc:
            self._warn(
                f"cannot {action} in the reinstall journal {self.journal.path} ({exc}): an interrupted run "
                f"could not be resumed; set {JOURNAL_ENV} to a writable file"
            )
            self.journal = None
            return None

    def fingerprint(self, request: ReinstallRequest) -> str | None:
        # Headers only say how to download the image: they do not change what ends up on the disk.
        body = request.body()
        body["customizations"].pop("httpHeaders", None)
        return self._use("read", lambda journal: journal.fingerprint(body))

    def open_reinstall(self, fingerprint: str) -> OpenReinstall | None:
        return self._use(
            "read", lambda journal: journal.open_reinstall(self.endpoint, self.service_name, fingerprint)
        )

    def unanswered(self, fingerprint: str) -> UnansweredRequest | None:
        return self._use(
            "read", lambda journal: journal.unanswered(self.endpoint, self.service_name, fingerprint)
        )

    def claimed(self, task_ids: Sequence[int]) -> dict[int, str]:
        """The fingerprints recorded for `task_ids` (none known without a journal)."""
        claimed = self._use(
            "read", lambda journal: journal.claimed(self.endpoint, self.service_name, task_ids)
        )
        return claimed or {}

    def asking(self, fingerprint: str | None, known: set[int]) -> None:
        if fingerprint:
            newest = max(known, default=0)
            self._use(
                "record",
                lambda journal: journal.asking(self.endpoint, self.service_name, fingerprint, newest),
            )

    def answered(self, fingerprint: str | None) -> None:
        if fingerprint:
            self._use(
                "close", lambda journal: journal.answered(self.endpoint, self.service_name, fingerprint)
            )

    def record(self, task_id: int, fingerprint: str | None) -> None:
        if fingerprint:
            self._use(
                "record",
                lambda journal: journal.record(self.endpoint, self.service_name, task_id, fingerprint),
            )

    def close(self, task_id: int) -> None:
        self._use("close", lambda journal: journal.close(self.endpoint, self.service_name, task_id))
