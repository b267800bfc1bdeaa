"""The request budget shared by every provider process of a machine: tokens go in turn, real processes share
them evenly, and a killed process's place in the queue is given up."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ovh_byoi.budget import (
    _URGENCY,
    BUDGET_ENV,
    BURST,
    NEWS_HORIZON,
    TELL_EVERY,
    RequestBudget,
    _Urgency,
    news_in,
    prepaid,
    prompt,
    relaxed,
)
from ovh_byoi.installing import Session
from ovh_byoi.journal import JOURNAL_ENV
from ovh_byoi.ovh_api import Client, OvhApi, OvhSettings
from ovh_byoi.progress import Progress
from ovh_byoi.spec import ByoiInstallationArgs
from ovh_emulator.testing import RunningEmulator, start_emulator
from testkit.emulator_records import sha512

from .conftest import SERVER
from .inputs import EFI_DEBIAN
from .test_fidelity import FakeTime

PROVIDER = Path(__file__).resolve().parents[2] / "provider"

# A worker process: `threads` threads each take tokens and append their name to `log`, one line a token,
# until `log` holds `total` lines.
WORKER = textwrap.dedent(
    """
    import os, sys, threading
    from pathlib import Path
    from ovh_byoi.budget import RequestBudget

    db, log, name, threads, total, per_minute = sys.argv[1:7]

    def work(thread: int) -> None:
        budget = RequestBudget(Path(db), "ck", requests_per_minute=float(per_minute))
        while True:
            budget.take()
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{name}-{thread}\\n".encode())
            os.close(fd)
            if len(Path(log).read_text().splitlines()) >= int(total):
                return

    pool = [threading.Thread(target=work, args=(n,)) for n in range(int(threads))]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    """
)


def spawn(*args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(PROVIDER)}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *map(str, args)], env=env, stdout=subprocess.PIPE, text=True
    )


def test_processes_sharing_a_small_budget_are_served_in_turn(tmp_path: Path) -> None:
    """Four processes of two threads each, every thread asking again as soon as it is served: each gets its
    fair share (a race for tokens lets some threads take turns from others)."""
    db, log = tmp_path / "budget.sqlite", tmp_path / "served"
    total = int(BURST) + 40
    workers = [spawn(db, log, f"p{n}", 2, total, 300) for n in range(4)]
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    # The burst goes to whoever comes first; after it, tokens go round the eight waiting threads.
    after_burst = log.read_text().splitlines()[int(BURST) : total]
    served = Counter(after_burst)
    assert len(served) == 8, served
    assert max(served.values()) - min(served.values()) <= 2, served


def another_asks_while_the_first_waits(
    tmp_path: Path,
    first_asks: contextlib.AbstractContextManager[None],
    then_another_asks: contextlib.AbstractContextManager[None],
) -> tuple[float, float]:
    """Two processes on a fake clock: once the burst is spent, the first asks and, while it waits in the
    queue, the other asks. Returns how long each waited (first, other)."""
    clock = FakeTime()

    def budget() -> RequestBudget:
        return RequestBudget(
            tmp_path / "budget.sqlite", "ck", requests_per_minute=60, sleep=clock.sleep, now=lambda: clock.now
        )

    first, other = budget(), budget()
    for _ in range(int(BURST)):
        first.take()
    waited: dict[str, float] = {}

    def sleep_while_another_asks(seconds: float) -> None:
        if not waited:
            with then_another_asks:
                waited["other"] = other.take()
        clock.sleep(seconds)

    first._sleep = sleep_while_another_asks
    with first_asks:
        waited["first"] = first.take()
    return waited["first"], waited["other"]


def test_a_prompt_request_goes_before_those_waiting(tmp_path: Path) -> None:
    # The prompt request needs only the next token.
    first, second = another_asks_while_the_first_waits(tmp_path, contextlib.nullcontext(), prompt())
    assert second <= 1.0, "the prompt request had the first token"
    assert first >= 2.0, "the waiting request had the next one"


def test_a_poll_of_an_install_about_to_end_goes_before_one_that_asked_earlier_but_expects_news_later(
    tmp_path: Path,
) -> None:
    """64 installs ending within minutes of each other poll more than the budget can serve: served by arrival,
    the install that has just ended waits behind the polls of installs with a minute still to run."""
    far, near = another_asks_while_the_first_waits(tmp_path, news_in(60), news_in(5))
    assert near <= 1.0, "the poll of the install about to end had the first token"
    assert far >= 2.0, "the poll far from its end had the next one"


def test_a_relaxed_poll_is_overtaken_by_later_requests_only_up_to_the_horizon(tmp_path: Path) -> None:
    """A stream of urgent requests (an install's start, polls near an end) never starves a routine poll: those
    that arrive after the poll's news was due queue behind it."""
    # 20 tokens a real second; the horizon lasts a real second.
    scale = NEWS_HORIZON
    db = tmp_path / "budget.sqlite"
    stop = time.monotonic() + 4.0
    urgent_served = 0

    def urgent_stream() -> None:
        nonlocal urgent_served
        budget = RequestBudget(db, "ck", requests_per_minute=10, scale=scale)
        while time.monotonic() < stop:
            budget.take()
            urgent_served += 1

    with ThreadPoolExecutor(max_workers=2) as pool:
        streams = [pool.submit(urgent_stream) for _ in range(2)]
        # The burst is spent and the urgent requests queue before the routine poll asks.
        time.sleep(1.0)
        with relaxed():
            asked = time.monotonic()
            RequestBudget(db, "ck", requests_per_minute=10, scale=scale).take()
            waited = time.monotonic() - asked
        served_before = urgent_served
        for stream in streams:
            stream.result()

    assert urgent_served > served_before, "the urgent stream still ran when the routine poll had its token"
    # Its horizon (1 s here), then the reserve and the requests queued before it was due.
    assert waited <= 2.0, f"the routine poll waited {waited:.2f} s behind a stream of later requests"


def test_a_request_made_in_a_turn_already_waited_for_spends_that_turn_only(tmp_path: Path) -> None:
    """A look waits for its turn, then chooses what to read: that read must not queue a second time."""
    clock = FakeTime()
    budget = RequestBudget(
        tmp_path / "budget.sqlite", "ck", requests_per_minute=60, sleep=clock.sleep, now=lambda: clock.now
    )
    for _ in range(int(BURST)):
        budget.take()
    assert budget.take() >= 0.9, "the bucket is empty: a turn takes a second"
    with prepaid():
        assert budget.take() == 0.0, "the turn waited for is spent"
        assert budget.take() >= 0.9, "a second request inside waits its own turn"


def test_a_start_held_up_long_by_the_budget_says_how_long_and_a_poll_does_not(tmp_path: Path) -> None:
    """A 200-server fleet's last installs wait many minutes for their first request: without a word, the user
    cannot tell a budget from a hang. A poll's wait is left unsaid: its install runs on."""
    clock = FakeTime()
    said: list[str] = []
    # One token every 4 minutes.
    budget = RequestBudget(
        tmp_path / "budget.sqlite", "ck", requests_per_minute=0.25, sleep=clock.sleep, now=lambda: clock.now
    )
    budget.tell = said.append
    for _ in range(int(BURST)):
        budget.take()
    with news_in(30):
        assert budget.take() >= 200
    assert said == [], "a poll's wait is not said"

    budget.take()
    assert len(said) == 2, f"said at once, then {TELL_EVERY:g} s later: {said}"
    assert said[0].startswith("waiting for the OVH request budget: 0 requests of this consumer key go first")
    assert "0.25 a minute" in said[0] and "about 4 min" in said[0]


def test_a_long_wait_counts_the_requests_queued_before_it(tmp_path: Path) -> None:
    clock = FakeTime()
    said: list[str] = []
    budget = RequestBudget(
        tmp_path / "budget.sqlite", "ck", requests_per_minute=6, sleep=clock.sleep, now=lambda: clock.now
    )
    budget.tell = said.append
    for _ in range(int(BURST)):
        budget.take()
    # Three requests of other installs queued first, their processes alive (this one's pid).
    with contextlib.closing(sqlite3.connect(tmp_path / "budget.sqlite")) as db, db:
        db.executemany(
            "INSERT INTO waiters (key, rank, due, pid, seen) VALUES (?, 1, ?, ?, ?)",
            [(budget.key, clock.now - 1, os.getpid(), clock.now)] * 3,
        )
    budget.take()
    assert said[0].startswith("waiting for the OVH request budget: 3 requests of this consumer key go first")
    assert said[0].endswith("about 40 s"), "four tokens at one every 10 s"


def test_an_install_start_held_up_by_the_budget_says_so_among_its_progress_lines(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through OVH's own client, signing real requests: the install's progress lines carry the wait."""
    monkeypatch.setenv(JOURNAL_ENV, str(tmp_path / "reinstalls.sqlite"))
    monkeypatch.setenv(BUDGET_ENV, "1")
    # One token a real second.
    monkeypatch.setenv("OVH_BYOI_TIME_SCALE", "60")
    lines: list[str] = []
    session = Session.open(
        emulator_settings(emulator), SERVER, timeout_minutes=5, progress=Progress(SERVER, lines.append)
    )
    for _ in range(int(BURST)):
        session.reinstall_task_ids()
    assert lines == []
    session.reinstall_task_ids()
    # The burst's reads took some real time, in which the bucket refilled a little.
    [line] = lines
    assert re.fullmatch(
        rf"\[{re.escape(SERVER)}\] waiting for the OVH request budget: 0 requests of this consumer key go "
        rf"first, at 1 a minute shared by every provider process of this machine \({BUDGET_ENV}\); "
        r"about [3-6]\d s",
        line,
    ), line


def queued(db: sqlite3.Connection) -> int:
    try:
        return int(db.execute("SELECT COUNT(*) FROM waiters").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_a_killed_process_gives_up_its_place_in_the_queue(tmp_path: Path) -> None:
    db = tmp_path / "budget.sqlite"
    budget = RequestBudget(db, "ck", requests_per_minute=600)
    # A slow budget: the killed process waits a long time for its token, past the end of the test.
    slow = spawn(db, tmp_path / "unused", "slow", 1, 10**6, 0.001)
    with sqlite3.connect(db, timeout=30) as check:
        # A guard against a hang, not a measure: the worker queues within its first second.
        give_up = time.monotonic() + 60
        while not queued(check):
            assert time.monotonic() < give_up, "the worker never waited in the budget's queue"
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait()
        budget.take()
        assert check.execute("SELECT COUNT(*) FROM waiters").fetchone()[0] == 0


def emulator_settings(emulator: RunningEmulator) -> OvhSettings:
    return OvhSettings(
        endpoint=emulator.url,
        application_key=emulator.application_key,
        application_secret=emulator.application_secret,
        consumer_key=emulator.consumer_key,
    )


def test_a_starting_fleet_asks_ovhs_clock_once_and_spends_no_budget_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OVH's client asks `GET /auth/time` once per client, and a fleet's provider makes a client per server
    and call: 64 servers starting together would spend 64 requests of the key's budget before their first
    read. The clock is unsigned (it carries no consumer key), so it costs the budget nothing either."""
    monkeypatch.setenv(JOURNAL_ENV, str(tmp_path / "reinstalls.sqlite"))
    # Next to no refill: the bucket's tokens count the signed requests.
    monkeypatch.setenv(BUDGET_ENV, "0.001")
    servers = 4
    with start_emulator(servers=0) as ovh_api:
        names = [f"ns{n}.fleet.ovh" for n in range(servers)]
        for name in names:
            ovh_api.add_server(name)
        settings = emulator_settings(ovh_api)
        with ThreadPoolExecutor(max_workers=servers) as pool:
            read = list(pool.map(lambda name: OvhApi.connect(settings, name).server().name, names))
        assert read == names
        stats = ovh_api.stats()

    assert stats["GET /1.0/auth/time"] == 1
    with sqlite3.connect(tmp_path / "budget.sqlite") as db:
        [(tokens,)] = db.execute("SELECT tokens FROM buckets").fetchall()
    assert round(tokens) == BURST - servers, "one token per signed read, none for the clock"


def test_the_reads_after_one_that_saw_an_install_end_do_not_wait_their_turn_again(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a contended budget every look at OVH waits behind the other installs' polls (a turn is N / rate
    for N installs). The look that sees an install end goes on to read the task, then the server: those
    reads go before the queue, so the install ends one turn after OVH's, not three."""
    monkeypatch.setenv(JOURNAL_ENV, str(tmp_path / "reinstalls.sqlite"))
    monkeypatch.setenv("OVH_BYOI_TIME_SCALE", "600")
    sent: list[tuple[str, str, bool]] = []
    signed_call = Client.raw_call

    def recording(self: Client, method: str, path: str, *args: object, **kwargs: object) -> object:
        read = path.rsplit("/", 2)[-2] if "/task/" in path else path.rsplit("/", 1)[-1]
        sent.append((method, read, _URGENCY.get() == _Urgency.PROMPT))
        return signed_call(self, method, path, *args, **kwargs)

    monkeypatch.setattr(Client, "raw_call", recording)
    image = test_images["debian.qcow2"]
    session = Session.open(emulator_settings(emulator), SERVER, timeout_minutes=120)
    state = session.install(
        ByoiInstallationArgs(
            service_name=SERVER,
            image_url=emulator.image_url("debian.qcow2"),
            image_type="qcow2",
            image_checksum=sha512(image),
            efi_bootloader_path=EFI_DEBIAN,
            preflight="off",
        )
    )

    assert state.os == "byoi_64"
    *_, saw_the_end, server = sent
    assert server == ("GET", SERVER, True)
    assert saw_the_end[:2] == ("GET", "task")
    # That look waited its turn: it read the task alone (on OVH's last step), or the steps, then the task.
    look = sent[-3:] if saw_the_end[2] else sent[-2:]
    assert not look[0][2]
    # Nothing else goes first.
    assert {read for read in sent if read[2]} <= {("GET", "task", True), ("GET", SERVER, True)}
