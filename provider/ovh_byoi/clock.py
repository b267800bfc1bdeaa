"""OVH time: every duration this package waits is written as OVH would live it, and scaled before sleeping.

Every duration is divided by `OVH_BYOI_TIME_SCALE` (default 1) before anyone sleeps: tests and benchmarks
pair an emulator running 600 times faster with `OVH_BYOI_TIME_SCALE=600`. `Clock` carries the scale and the
sleep function, so unit tests inject a fake clock and never wait.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["TIME_SCALE_ENV", "Clock", "Deadline", "time_scale"]

TIME_SCALE_ENV: Final = "OVH_BYOI_TIME_SCALE"


def time_scale(environ: Mapping[str, str] = os.environ) -> float:
    """How many times faster than real time every wait runs (a test and benchmark knob; default 1)."""
    raw = environ.get(TIME_SCALE_ENV, "").strip()
    try:
        scale = float(raw) if raw else 1.0
    except ValueError:
        return 1.0
    return scale if math.isfinite(scale) and scale > 0 else 1.0


@dataclass(frozen=True)
class Clock:
    """Where waiting takes its time from. `scale` divides every OVH-time duration before it is slept."""

    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    scale: float = 1.0

    @classmethod
    def from_env(cls) -> Clock:
        return cls(scale=time_scale())

    def real(self, ovh_seconds: float) -> float:
        """Real seconds for a duration in OVH time."""
        return ovh_seconds / self.scale


class Deadline:
    """The overall limit of one operation (`timeout_minutes`), in OVH time."""

    def __init__(self, minutes: float, clock: Clock) -> None:
        self.minutes = minutes
        self._clock = clock
        self._end = clock.monotonic() + clock.real(minutes * 60)

    def remaining(self) -> float:
        """Real seconds left."""
        return max(0.0, self._end - self._clock.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0
