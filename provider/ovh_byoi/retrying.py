"""The retry policies: which failures of OVH's API are asked again, for how long, and how each wait is told.

Every duration is OVH time (`ovh_byoi.clock`), and every policy stops at the operation's deadline.

- `RetryPolicy.call`: one API call, asked again while its failures are transient (no answer, 5xx, 429), with
  jittered exponential backoff; a 429 waits what its `Retry-After` asks instead. A 404 on a task within
  minutes of the reinstall is OVH's API not knowing it yet (terraform-provider-ovh retries those for 5
  minutes): it is asked again for `TASK_NOT_FOUND_GRACE`. An outage longer than `give_up_after` is reported,
  not waited out.
- `RetryPolicy.ask`: the reinstall request, asked again while it got no usable answer or OVH says another
  operation holds the server (`TaskAlreadyExists`, `DisturbAlreadyExists`), until the deadline.
- `RetryPolicy.poll`: a running task, looked at until it ends, at the pace its watcher sets.

Every request also waits for the consumer key's shared budget (`budget.py`), whichever policy sends it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NoReturn, TypeVar

import ovh.exceptions
import tenacity

from .clock import Clock, Deadline
from .ovh_errors import already_running, http_status
from .progress import Progress

__all__ = ["TASK_NOT_FOUND_GRACE", "RetryPolicy", "is_transient", "retry_after"]

# How long a task may answer 404 before that is believed (OVH seconds; terraform-provider-ovh's 5 minutes).
TASK_NOT_FOUND_GRACE: Final = 300.0
# The longest Retry-After believed (OVH seconds): a longer one is a mistake, and the backoff decides.
LONGEST_RETRY_AFTER: Final = 3600.0

T = TypeVar("T")
Wait = Callable[[tenacity.RetryCallState], float]


def is_transient(exc: BaseException) -> bool:
    """Worth asking again: no answer at all (network), OVH's side failed (5xx), or OVH asked us to slow (429).

    Every other refusal (400, 403, 404, 409) says something about the request: asking again would get the
    same answer.
    """
    if isinstance(exc, ovh.exceptions.HTTPError | ovh.exceptions.NetworkError):
        return True
    if isinstance(exc, ovh.exceptions.APIError):
        code = http_status(exc)
        return code is not None and (code >= 500 or code == 429)
    return False


def retry_after(exc: BaseException | None) -> float | None:
    """OVH seconds a 429 answer asks to wait (`Retry-After`, in seconds), or None."""
    if exc is None or http_status(exc) != 429:
        return None
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        seconds = float(headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        # An HTTP date, or nothing: the exponential backoff decides.
        return None
    return seconds if math.isfinite(seconds) and 0 <= seconds <= LONGEST_RETRY_AFTER else None


def _failure(state: tenacity.RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome else None


@dataclass(frozen=True)
class RetryPolicy:
    """The waits of one operation: its clock, its deadline, and where it tells what it waits for.

    `call` gives up after `give_up_after` seconds of failures in a row, or at the deadline.
    """

    clock: Clock
    deadline: Deadline
    progress: Progress
    first_wait: float = 1.0
    longest_wait: float = 60.0
    give_up_after: float = 600.0
    # The reinstall request is asked again more slowly: each attempt first reads the server's tasks.
    first_ask_wait: float = 5.0
    longest_ask_wait: float = 60.0

    def _backoff(self, first: float, longest: float) -> Wait:
        return tenacity.wait_exponential_jitter(
            multiplier=self.clock.real(first), max=self.clock.real(longest), jitter=self.clock.real(first)
        )

    def _seconds(self, state: tenacity.RetryCallState) -> float:
        """The coming wait in OVH seconds, as the progress lines tell it."""
        return state.upcoming_sleep * self.clock.scale

    def call(self, action: str, fn: Callable[[], T], *, not_found_grace: float = 0.0) -> T:
        """`fn()`, asked again on transient failures; `action` completes "while ..." in the log line.

        `not_found_grace`: OVH seconds during which a 404 counts as transient (a task OVH's API does not
        know yet).
        """
        started = self.clock.monotonic()

        def failing_for() -> float:
            return self.clock.monotonic() - started

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, ovh.exceptions.ResourceNotFoundError):
                return failing_for() < self.clock.real(not_found_grace)
            return is_transient(exc)

        def give_up(state: tenacity.RetryCallState) -> bool:
            return failing_for() >= self.clock.real(self.give_up_after) or self.deadline.expired

        retrying = tenacity.Retrying(
            sleep=self.clock.sleep,
            stop=give_up,
            wait=self._honouring_retry_after(self._backoff(self.first_wait, self.longest_wait)),
            retry=tenacity.retry_if_exception(retryable),
            before_sleep=self._announce_call(action),
            reraise=True,
        )
        return retrying(fn)

    def _honouring_retry_after(self, backoff: Wait) -> Wait:
        def wait(state: tenacity.RetryCallState) -> float:
            asked = retry_after(_failure(state))
            return self.clock.real(asked) if asked is not None else backoff(state)

        return wait

    def _announce_call(self, action: str) -> Callable[[tenacity.RetryCallState], None]:
        def announce(state: tenacity.RetryCallState) -> None:
            exc = _failure(state)
            code = http_status(exc) if exc else None
            what = f"OVH answered {code}" if code else "OVH's API could not be reached"
            query_id = getattr(exc, "query_id", None)
            query = f" (query id {query_id})" if query_id else ""
            why = ""
            if code == 404:
                why = " (OVH's API often does not know a task for a few minutes after a reinstall)"
            elif retry_after(exc) is not None:
                why = " (as OVH's Retry-After asks)"
            wait = self._seconds(state)
            self.progress.say(f"{what} while {action}{query}{why}; asking again in {wait:.0f} s")

        return announce

    def ask(self, attempt: Callable[[], T]) -> T:
        """`attempt()` (the reinstall request) until OVH answers it, or the deadline.

        Asked again while the request got no usable answer (`attempt` itself then looks for the task OVH may
        have started) or OVH says another operation holds the server; any other refusal is raised.
        """

        def announce(state: tenacity.RetryCallState) -> None:
            wait = self._seconds(state)
            if already_running(_failure(state)):
                self.progress.say(
                    f"OVH says another operation holds the server; asking again in {wait:.0f} s"
                )
            else:
                self.progress.say(f"the reinstall request got no answer; checking again in {wait:.0f} s")

        asking = tenacity.Retrying(
            sleep=self.clock.sleep,
            stop=lambda state: self.deadline.expired,
            wait=self._backoff(self.first_ask_wait, self.longest_ask_wait),
            retry=tenacity.retry_if_exception(lambda exc: is_transient(exc) or already_running(exc)),
            before_sleep=announce,
            reraise=True,
        )
        return asking(attempt)

    def poll(
        self, ended: Callable[[], bool], next_delay: Callable[[], float], timed_out: Callable[[], NoReturn]
    ) -> None:
        """Calls `ended()` until it is True, sleeping `next_delay()` real seconds between (never past the
        deadline); `timed_out()` (which raises) when the deadline passes first."""

        def give_up(state: tenacity.RetryCallState) -> NoReturn:
            timed_out()

        polling = tenacity.Retrying(
            sleep=self.clock.sleep,
            stop=lambda state: self.deadline.expired,
            wait=lambda state: min(next_delay(), self.deadline.remaining()),
            retry=tenacity.retry_if_result(lambda done: not done),
            retry_error_callback=give_up,
        )
        polling(ended)
