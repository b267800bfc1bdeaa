"""The one place that reaches into Pulumi's Python SDK beyond its public API.

The dynamic provider server (`python -m pulumi.dynamic`, started by Pulumi's plugin script, so not ours to
start differently) serves gRPC calls on `ThreadPoolExecutor(max_workers=4)`. Every `ByoiInstallation` of a
stack shares that process, and a create waits on OVH for 10 to 20 minutes: with four installs running, every
other call of the stack (the next server's Check, Diff, even Cancel) queues behind them, and 200 servers
install four at a time. The calls wait on I/O, so the process can serve far more at once; this widens the
pool of the process it runs in.

`tests/provider/test_sdk_compat.py` fails loudly when an SDK release changes what this relies on.
"""

from __future__ import annotations

import gc
import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

# The provider server's state (grpc's `_ServerState`), found with its pool: it says when the server stops.
_serving: weakref.ReferenceType[Any] | None = None

# Enough for a whole fleet's creates and the engine's other calls at once (the engine's own `--parallel`
# bounds what it sends); an idle worker costs a parked thread.
PROVIDER_WORKERS = 256


def widen_serving_pool(workers: int = PROVIDER_WORKERS) -> bool:
    """Lets the thread pool serving the current call run up to `workers` calls at once.

    Must be called from a call the provider server is serving (a pool thread). Returns False, changing
    nothing, when no such pool is found (another SDK layout): the provider then works as before, four calls
    at a time.
    """
    current = threading.current_thread()
    for candidate in gc.get_objects():
        if isinstance(candidate, ThreadPoolExecutor) and current in getattr(candidate, "_threads", ()):
            # ThreadPoolExecutor.submit starts a new thread while fewer than `_max_workers` run and none
            # is idle, so raising it takes effect from the next call on.
            if getattr(candidate, "_max_workers", workers) < workers:
                candidate._max_workers = workers
            _remember_server(candidate)
            return True
    return False


def _remember_server(pool: ThreadPoolExecutor) -> None:
    global _serving
    for candidate in gc.get_referrers(pool):
        if getattr(candidate, "thread_pool", None) is pool and hasattr(candidate, "stage"):
            _serving = weakref.ref(candidate)
            return


def engine_gave_up() -> bool:
    """Whether the engine no longer waits for the call this thread serves.

    A second Ctrl-C (or the end of a cancelled run) sends the provider's process SIGINT: the SDK's server then
    stops and cancels every call, and SIGKILL follows 5 s later. A call still running meanwhile, an install
    that OVH finishes in those seconds say, returns to nobody: the engine records no result for it.
    """
    state = _serving() if _serving is not None else None
    stage = getattr(getattr(state, "stage", None), "value", "started")
    if stage != "started":
        return True
    # The call's own context, a local of the SDK's servicer method this thread runs under.
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        context = frame.f_locals.get("context")
        is_active = getattr(context, "is_active", None)
        if callable(is_active):
            return not is_active()
        frame = frame.f_back
    return False
