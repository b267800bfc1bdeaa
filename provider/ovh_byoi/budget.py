"""One request budget per OVH consumer key, shared by every process of this machine.

OVH documents no rate limit; an OVH maintainer said "if you are not over 60 req/min by consumer key, you
should be ok" (python-ovh #81). A fleet shares one consumer key and Pulumi runs one provider process per
stack, so the budget cannot live in one process: it is a token bucket in a SQLite file beside the
reinstall journal (`budget.sqlite` in `OVH_BYOI_JOURNAL`'s folder), keyed by a hash of the consumer
key (never the key).

The bucket holds at most `BURST` tokens and gains `OVH_BYOI_REQUESTS_PER_MINUTE` (default 45) a minute, so no
minute ever sees more than 45 + 10 = 55 requests. The budget counts OVH time: it refills
`OVH_BYOI_TIME_SCALE` times faster under a compressed clock.

Tokens are granted in turn, never raced for: a request that cannot go at once writes itself into a queue in
the same file and goes when every request ahead of it has had its token. With each install waiting for one
request at a time, N installs sharing the budget are each served once every N / rate: the fairest share.
The queue is ordered by when each request's news is due: its arrival, plus, for a poll of a running install,
the time the install is expected to run on (`news_in()`, at most `NEWS_HORIZON`). A contended budget thus
goes first to the installs about to end, whose reads notice an end, and to the requests that start an
install; a poll far from its install's end waits, but never longer than the horizon. Two exceptions: a
`prompt()` request (a read that follows, in the same look at OVH, the one that had its token: the task when
the steps say the install may be over, then the server once the task has ended) goes before all; a
`relaxed()` one (a routine poll far from an install's expected end) also goes only while `RESERVE` tokens
are left for prompt ones.
A request that starts something (an install's first reads and its reinstall, a refresh's read) and is held up
for `TELL_AFTER` OVH seconds or more says so through `RequestBudget.tell`, and again every `TELL_EVERY`: how
many requests go first and about how long it waits. Nothing else would show why its server sits still. A
poll's wait is left unsaid: its install runs on, and a fleet's installs would bury their steps under it.
A waiter rewrites its heartbeat at least every `HEARTBEAT` seconds; one whose process has died is dropped
from the queue (its process is gone, or, for a process of another machine or container, its heartbeat is
`EXPIRY` seconds old), so a killed provider never holds the fleet up.

A budget that cannot be used (a read-only folder, a broken file) lets requests go unmetered: it must never
stop an install; OVH's 429 answers are honoured anyway.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import hashlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Final

from .journal import default_path

__all__ = [
    "BUDGET_ENV",
    "BURST",
    "DEFAULT_PER_MINUTE",
    "RESERVE",
    "TELL_AFTER",
    "TELL_EVERY",
    "RequestBudget",
    "budget_path",
    "news_in",
    "per_minute",
    "prepaid",
    "prompt",
    "relaxed",
]

BUDGET_ENV: Final = "OVH_BYOI_REQUESTS_PER_MINUTE"
# 45 + a burst of 10: 55 in the busiest minute, a margin under 60 for clock jitter and the user's own calls.
DEFAULT_PER_MINUTE: Final = 45.0
BURST: Final = 10.0
RESERVE: Final = 3.0
# OVH seconds: the most a poll's expected news may put it behind requests that arrive after it, so that a poll
# far from its install's end is overtaken by those near theirs but never starved.
NEWS_HORIZON: Final = 300.0
# OVH seconds: how long a start's wait must be expected to last before it is said, and how often it is said
# again while it lasts.
TELL_AFTER: Final = 30.0
TELL_EVERY: Final = 120.0
# Real seconds: a waiter's heartbeat period, and how old a heartbeat may get before its waiter is dropped.
HEARTBEAT: Final = 1.0
EXPIRY: Final = 15.0
# Real seconds: the shortest wait. A shortfall of a rounding error would otherwise ask for a sleep too short
# to move the clock, and the waiter would look again forever.
SHORTEST_WAIT: Final = 0.001


class _Urgency(enum.IntEnum):
    PROMPT = 0
    URGENT = 1
    RELAXED = 2


_URGENCY: contextvars.ContextVar[_Urgency] = contextvars.ContextVar(
    "ovh_byoi_urgency", default=_Urgency.URGENT
)
# OVH seconds until the news a request may bring is expected (0: now, as for the requests of a start).
_NEWS_IN: contextvars.ContextVar[float] = contextvars.ContextVar("ovh_byoi_news_in", default=0.0)
# A turn already taken (`prepaid()`): the next request spends it instead of queueing again.
_PREPAID: contextvars.ContextVar[bool] = contextvars.ContextVar("ovh_byoi_prepaid", default=False)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS waiters (
    ticket INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    rank INTEGER NOT NULL,
    due REAL NOT NULL,
    pid INTEGER NOT NULL,
    seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS waiters_in_turn ON waiters (key, rank, due, ticket);
"""


@contextlib.contextmanager
def _urgency(level: _Urgency) -> Iterator[None]:
    token = _URGENCY.set(level)
    try:
        yield
    finally:
        _URGENCY.reset(token)


@contextlib.contextmanager
def news_in(seconds: float) -> Iterator[None]:
    """Requests made inside expect their news in `seconds` (OVH's): polls of an install expected to run on
    that long. They queue behind the requests whose news is due sooner."""
    token = _NEWS_IN.set(min(max(seconds, 0.0), NEWS_HORIZON))
    try:
        yield
    finally:
        _NEWS_IN.reset(token)


@contextlib.contextmanager
def relaxed(expected_news_in: float = NEWS_HORIZON) -> Iterator[None]:
    """Requests made inside are routine polls far from an expected end: they queue as `news_in` says (by
    default as far back as a poll goes) and leave the reserve to prompt ones."""
    with _urgency(_Urgency.RELAXED), news_in(expected_news_in):
        yield


def prompt() -> contextlib.AbstractContextManager[None]:
    """Requests made inside go before every waiting one: the later reads of a look whose first read has just
    had its token, so that noticing an end costs one turn of the queue, not two or three."""
    return _urgency(_Urgency.PROMPT)


@contextlib.contextmanager
def prepaid() -> Iterator[None]:
    """The first request made inside spends a turn its caller has already waited for (`take()`): a look at
    OVH chooses what to read once its turn has come, with what it knows then."""
    token = _PREPAID.set(True)
    try:
        yield
    finally:
        _PREPAID.reset(token)


def per_minute(environ: Mapping[str, str] = os.environ) -> float:
    """Requests a minute for one consumer key; 0 or less turns the budget off."""
    raw = environ.get(BUDGET_ENV, "").strip()
    try:
        return float(raw) if raw else DEFAULT_PER_MINUTE
    except ValueError:
        return DEFAULT_PER_MINUTE


def budget_path(environ: Mapping[str, str] = os.environ) -> Path:
    return default_path(environ).with_name("budget.sqlite")


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class RequestBudget:
    """The token bucket of one consumer key. `take()` blocks until a request may go."""

    def __init__(
        self,
        path: Path,
        consumer_key: str,
        *,
        requests_per_minute: float,
        scale: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.key = hashlib.sha256(b"ovh-byoi budget\0" + consumer_key.encode()).hexdigest()[:32]
        # Tokens per real second.
        self.rate = requests_per_minute / 60.0 * scale
        self.scale = scale
        self.burst = BURST
        self.reserve = min(RESERVE, self.burst - 1.0)
        self._sleep = sleep
        self._now = now
        self.broken: str | None = None
        # Where a long wait is said (`TELL_AFTER`): the install's progress lines.
        self.tell: Callable[[str], None] | None = None

    @classmethod
    def for_key(cls, consumer_key: str, *, scale: float) -> RequestBudget | None:
        rate = per_minute()
        if rate <= 0:
            return None
        return cls(budget_path(), consumer_key, requests_per_minute=rate, scale=scale)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        # Another process holding the file makes SQLite answer busy at once, whatever the timeout; WAL is a
        # property of the file, set by whoever got there first.
        with contextlib.suppress(sqlite3.OperationalError):
            db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        return db

    def _tokens(self, db: sqlite3.Connection, now: float) -> tuple[float, float]:
        """(tokens in the bucket now, the time they are counted at); call inside a transaction."""
        row = db.execute("SELECT tokens, updated FROM buckets WHERE key=?", (self.key,)).fetchone()
        tokens, updated = row if row else (self.burst, now)
        # Never moved back: a refill counted from an older time would count twice.
        now = max(now, updated)
        return min(self.burst, tokens + max(0.0, now - updated) * self.rate), now

    def _forget_the_dead(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM waiters WHERE key=? AND seen < ?", (self.key, now - EXPIRY))
        others = db.execute(
            "SELECT DISTINCT pid FROM waiters WHERE key=? AND pid != ?", (self.key, os.getpid())
        ).fetchall()
        for (pid,) in others:
            if _process_gone(pid):
                db.execute("DELETE FROM waiters WHERE key=? AND pid=?", (self.key, pid))

    def _stay_queued(
        self, db: sqlite3.Connection, ticket: int | None, rank: int, due: float, now: float
    ) -> int:
        """Writes the heartbeat of a waiting request, or queues it; returns its ticket."""
        # A ticket dropped by another process that took its waiter for dead (a heartbeat held up by a loaded
        # machine) is queued again at the same place.
        if (
            ticket is not None
            and db.execute("UPDATE waiters SET seen=? WHERE ticket=?", (now, ticket)).rowcount
        ):
            return ticket
        queued = db.execute(
            "INSERT INTO waiters (key, rank, due, pid, seen) VALUES (?, ?, ?, ?, ?)",
            (self.key, rank, due, os.getpid(), now),
        ).lastrowid
        assert queued is not None
        return queued

    def _turn(
        self, db: sqlite3.Connection, ticket: int | None, rank: int, due: float
    ) -> tuple[int | None, float, int]:
        """One look at the queue, in one transaction: takes a token if it is this request's turn.

        Returns (the request's ticket, None once it has its token; real seconds until its turn may come; how
        many requests are queued ahead of it).
        """
        db.execute("BEGIN IMMEDIATE")
        try:
            now = self._now()
            tokens, counted_at = self._tokens(db, now)
            self._forget_the_dead(db, now)
            # Prompt requests go first; the others by due time. A relaxed request needs the reserve on top
            # of its token, and so do those behind it, or they would take each token it waits for.
            (ahead, waiters_ahead) = db.execute(
                "SELECT COALESCE(SUM(CASE WHEN rank = ? THEN 1.0 + ? ELSE 1.0 END), 0), COUNT(*) "
                "FROM waiters WHERE key=? AND (MIN(rank, 1) < MIN(?, 1) OR (MIN(rank, 1) = MIN(?, 1) AND "
                "(due < ? OR (due = ? AND ticket < ?))))",
                (
                    int(_Urgency.RELAXED),
                    self.reserve,
                    self.key,
                    rank,
                    rank,
                    due,
                    due,
                    ticket if ticket is not None else 1 << 62,
                ),
            ).fetchone()
            needed = ahead + 1.0 + (self.reserve if rank == _Urgency.RELAXED else 0.0)
            if tokens >= needed:
                tokens -= 1.0
                if ticket is not None:
                    db.execute("DELETE FROM waiters WHERE ticket=?", (ticket,))
                ticket = None
                wait = 0.0
            else:
                ticket = self._stay_queued(db, ticket, rank, due, now)
                wait = (needed - tokens) / self.rate
            db.execute(
                "INSERT OR REPLACE INTO buckets (key, tokens, updated) VALUES (?, ?, ?)",
                (self.key, tokens, counted_at),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return ticket, wait, int(waiters_ahead)

    def take(self) -> float:
        """Waits for this request's turn in the budget; returns the real seconds waited."""
        if self.broken is not None:
            return 0.0
        if _PREPAID.get():
            _PREPAID.set(False)
            return 0.0
        urgency = _URGENCY.get()
        started = self._now()
        due = started + (0.0 if urgency == _Urgency.PROMPT else _NEWS_IN.get() / self.scale)
        starts_something = urgency == _Urgency.URGENT and _NEWS_IN.get() == 0.0
        told_at: float | None = None
        ticket: int | None = None
        try:
            with contextlib.closing(self._connect()) as db:
                try:
                    while True:
                        ticket, wait, ahead = self._turn(db, ticket, int(urgency), due)
                        if ticket is None:
                            return self._now() - started
                        if self.tell is not None and starts_something:
                            now = self._now()
                            if (
                                (now - started + wait) * self.scale >= TELL_AFTER
                                if told_at is None
                                else (now - told_at) * self.scale >= TELL_EVERY
                            ):
                                told_at = now
                                self.tell(self._waiting(ahead, wait))
                        self._sleep(min(max(wait, SHORTEST_WAIT), HEARTBEAT))
                finally:
                    if ticket is not None:
                        # Interrupted while waiting: leave the queue at once rather than at expiry.
                        with contextlib.suppress(sqlite3.Error):
                            db.execute("DELETE FROM waiters WHERE ticket=?", (ticket,))
        except (OSError, sqlite3.Error) as exc:
            # Never stop an install for want of a budget file: go unmetered, OVH's 429s are still honoured.
            self.broken = f"{self.path}: {exc}"
            print(
                f"ovh-byoi: the request budget {self.broken} cannot be used: requests go unmetered "
                "(OVH's 429 answers are still waited out)",
                file=sys.stderr,
                flush=True,
            )
            return self._now() - started

    def _waiting(self, ahead: int, wait: float) -> str:
        """What a long wait says: the requests going first, the rate, about how long (OVH time)."""
        seconds = wait * self.scale
        left = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
        per_minute = self.rate * 60 / self.scale
        return (
            f"waiting for the OVH request budget: {ahead} requests of this consumer key go first, at "
            f"{per_minute:g} a minute shared by every provider process of this machine "
            f"({BUDGET_ENV}); about {left}"
        )
