"""One request budget per OVH consumer key, shared by every process of this machine.

OVH documents no rate limit; an OVH maintainer said "if you are not over 60 req/min by consumer key, you
should be ok" (python-ovh #81). A fleet shares one consumer key and Pulumi runs one provider process per
stack, so the budget cannot live in one process: it is a token bucket in a SQLite file beside the
reinstall journal (`budget.sqlite` in `OVH_BYOI_JOURNAL`'s folder), keyed by a hash of the consumer
key (never the key).

The bucket holds at most `BURST` tokens and gains `OVH_BYOI_REQUESTS_PER_MINUTE` (default 45) a minute, so no
minute ever sees more than 45 + 10 = 55 requests. Requests that decide when an install is noticed to have
ended ("urgent", the default) may take any token; routine polls far from an install's expected end are
"relaxed": they leave `RESERVE` tokens to urgent ones, so that a contended budget is spent where latency
matters. The budget counts OVH time: it refills `OVH_BYOI_TIME_SCALE` times faster under a compressed clock.

A budget that cannot be used (a read-only folder, a broken file) lets requests go unmetered: it must never
stop an install; OVH's 429 answers are honoured anyway.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import random
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
    "RequestBudget",
    "budget_path",
    "per_minute",
    "relaxed",
]

BUDGET_ENV: Final = "OVH_BYOI_REQUESTS_PER_MINUTE"
# 45 + a burst of 10: 55 in the busiest minute, a margin under 60 for clock jitter and the user's own calls.
DEFAULT_PER_MINUTE: Final = 45.0
BURST: Final = 10.0
RESERVE: Final = 3.0
# Longest nap while waiting for a token (OVH seconds): a waiter re-reads the bucket at least this often.
LONGEST_NAP: Final = 5.0

_URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("ovh_byoi_urgent", default=True)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated REAL NOT NULL,
    waiting INTEGER NOT NULL DEFAULT 0
);
"""


@contextlib.contextmanager
def relaxed() -> Iterator[None]:
    """Requests made inside leave the reserve to urgent ones (routine polls far from an expected end)."""
    token = _URGENT.set(False)
    try:
        yield
    finally:
        _URGENT.reset(token)


def per_minute(environ: Mapping[str, str] = os.environ) -> float:
    """Requests a minute for one consumer key; 0 or less turns the budget off."""
    raw = environ.get(BUDGET_ENV, "").strip()
    try:
        return float(raw) if raw else DEFAULT_PER_MINUTE
    except ValueError:
        return DEFAULT_PER_MINUTE


def budget_path(environ: Mapping[str, str] = os.environ) -> Path:
    return default_path(environ).with_name("budget.sqlite")


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
        self._sleep = sleep
        self._now = now
        self.broken: str | None = None

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

    def _try(self, db: sqlite3.Connection, urgent: bool, queued: bool) -> tuple[bool, float, int]:
        """Takes a token if the bucket allows: (taken, tokens left, processes waiting)."""
        db.execute("BEGIN IMMEDIATE")
        # Read under the lock, and never moved back: a refill counted from an older time would count twice.
        now = self._now()
        try:
            row = db.execute(
                "SELECT tokens, updated, waiting FROM buckets WHERE key=?", (self.key,)
            ).fetchone()
            tokens, updated, waiting = row if row else (BURST, now, 0)
            now = max(now, updated)
            tokens = min(BURST, tokens + max(0.0, now - updated) * self.rate)
            if tokens >= BURST:
                # A full bucket: nobody is waiting (a count left by a killed process is forgotten).
                waiting = 1 if queued else 0
            floor = 1.0 if urgent else 1.0 + RESERVE
            taken = tokens >= floor
            if taken:
                tokens -= 1.0
            change = (-1 if queued else 0) if taken else (0 if queued else 1)
            waiting = max(0, waiting + change)
            db.execute(
                "INSERT OR REPLACE INTO buckets (key, tokens, updated, waiting) VALUES (?, ?, ?, ?)",
                (self.key, tokens, now, waiting),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return taken, tokens, waiting

    def take(self) -> float:
        """Waits until the budget allows one more request; returns the real seconds waited."""
        if self.broken is not None:
            return 0.0
        urgent = _URGENT.get()
        started = self._now()
        queued = False
        try:
            with contextlib.closing(self._connect()) as db:
                while True:
                    taken, tokens, waiting = self._try(db, urgent, queued)
                    if taken:
                        return self._now() - started
                    queued = True
                    floor = 1.0 if urgent else 1.0 + RESERVE
                    # Those already waiting go first, on average: spread the wake-ups over their turns.
                    turns = max(floor - tokens, 1.0) + random.uniform(0, max(waiting - 1, 0))
                    self._sleep(min(turns / self.rate, LONGEST_NAP / self.scale))
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
