"""Start the emulator as a real subprocess, for tests, demos and benchmarks.

with start_emulator(servers=4, images=folder) as emulator:
    client = ovh.Client(endpoint=..., application_key=emulator.application_key, ...)
    emulator.set_faults({"rules": [{"route": "GET *", "status": 503, "times": 1}]})
    print(emulator.server("ns1000001.emulator.ovh")["os"])
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .auth import DEFAULT_APPLICATION_KEY, DEFAULT_APPLICATION_SECRET, DEFAULT_CONSUMER_KEY

__all__ = ["DOCUMENTED_ADDRESS", "EmulatorError", "RunningEmulator", "start_emulator"]

BANNER = "OVH emulator listening on "
START_TIMEOUT_SECONDS = 30.0
# Where the repository's stack files and examples expect an emulator (`ovh-byoi emulator --port 8790`).
DOCUMENTED_ADDRESS = "http://127.0.0.1:8790"


class EmulatorError(RuntimeError):
    """The emulator did not start, or an admin call failed."""


class RunningEmulator:
    """An emulator subprocess; a context manager that stops it (and removes its temporary state) on exit."""

    def __init__(
        self,
        *,
        servers: int,
        speed: float,
        state: Path | None,
        images: Path | None,
        images_auth: tuple[str, str] | None,
        extra_args: Iterable[str],
        realistic: bool = False,
    ) -> None:
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        if state is None:
            # A state file of our own, so that restart() keeps servers, tasks and installs.
            self._temp = tempfile.TemporaryDirectory(prefix="ovh-emulator-")
            state = Path(self._temp.name) / "state.sqlite"
        self.state = Path(state)
        self.images = images
        self.images_auth = images_auth
        self.application_key = DEFAULT_APPLICATION_KEY
        self.application_secret = DEFAULT_APPLICATION_SECRET
        self.consumer_key = DEFAULT_CONSUMER_KEY
        self._args = ["--servers", str(servers), "--speed", str(speed), "--state", str(self.state)]
        if images is not None:
            self._args += ["--images", str(images)]
        if images_auth is not None:
            self._args += ["--images-auth", f"{images_auth[0]}:{images_auth[1]}"]
        if realistic:
            self._args.append("--realistic")
        self._args += list(extra_args)
        for flag, attribute in (
            ("--application-key", "application_key"),
            ("--application-secret", "application_secret"),
            ("--consumer-key", "consumer_key"),
        ):
            if flag in self._args:
                setattr(self, attribute, self._args[self._args.index(flag) + 1])
        self.port = 0
        self.url = ""
        self.base_url = ""
        # The output goes to a file, not a pipe: a busy test process must never stall the emulator's writes.
        self._log_dir = tempfile.TemporaryDirectory(prefix="ovh-emulator-log-")
        self.log_path = Path(self._log_dir.name) / "emulator.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> list[str]:
        """Every line the emulator printed, across restarts."""
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    # process

    def _start(self) -> None:
        command = [sys.executable, "-m", "ovh_emulator", "--port", str(self.port), *self._args]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(os.environ)
            )
        first_line = self._wait_for_banner(self._process, offset)
        self.url = first_line[len(BANNER) :].strip()
        self.base_url = self.url.removesuffix("/1.0")
        self.port = int(self.base_url.rsplit(":", 1)[1])

    def _wait_for_banner(self, process: subprocess.Popen[bytes], offset: int) -> str:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        printed = ""
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                printed = log.read().decode(errors="replace")
            banner = next(
                (line for line in printed.splitlines(keepends=True) if line.startswith(BANNER)), None
            )
            if banner is not None and banner.endswith("\n"):
                return banner
            if process.poll() is not None:
                break
            time.sleep(0.02)
        process.kill()
        process.wait()
        raise EmulatorError(f"the emulator did not start; its output:\n{printed}")

    def stop(self) -> None:
        """Stops the emulator gracefully (SIGTERM); its state file stays for restart()."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Stops the emulator abruptly (SIGKILL), like a crash."""
        self._end(signal.SIGKILL)

    def _end(self, signum: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, *, crash: bool = False) -> None:
        """Stops and starts the emulator on the same port with the same state (`crash`: stop with SIGKILL)."""
        self.kill() if crash else self.stop()
        self._start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        self.stop()
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None
        self._log_dir.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # admin interface

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        """Calls `/_emulator/<path>` and returns the decoded JSON answer; raises EmulatorError on an error."""
        data = None if json is None else _dumps(json).encode()
        request = urllib.request.Request(
            f"{self.base_url}/_emulator/{path.lstrip('/')}",
            data=data,
            method=method.upper(),
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return _loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise EmulatorError(
                f"{method.upper()} /_emulator/{path} answered {error.code}: {detail}"
            ) from error

    def add_server(self, service_name: str, **fields: Any) -> dict[str, Any]:
        """Adds a server; fields: diskSizeBytes, memoryBytes, bootMode, diskGroups
        (`[{"numberOfDisks": 2, "diskSizeBytes": 960 * 10**9, "diskType": "SSD"}, ...]`)."""
        result: dict[str, Any] = self.admin("POST", "servers", {"serviceName": service_name, **fields})
        return result

    def server(self, service_name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", f"servers/{service_name}")
        return result

    def reinstall_out_of_band(
        self, service_name: str, operating_system: str = "debian12_64"
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.admin(
            "POST", f"servers/{service_name}/reinstall-out-of-band", {"operatingSystem": operating_system}
        )
        return result

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self.admin("GET", "stats")
        return result

    def rate(self) -> dict[str, Any]:
        """The rate limit and, per consumer key (a short hash), its requests, peak per emulated minute and
        refusals (429)."""
        result: dict[str, Any] = self.admin("GET", "rate")
        return result

    def set_faults(self, spec: dict[str, Any]) -> None:
        self.admin("PUT", "faults", spec)

    def held(self, rule: int = 0) -> int:
        """How many calls (or installs) the `hold` (`holdAtStep`) rule at index `rule` holds right now."""
        return int(self.admin("GET", "faults")["rules"][rule].get("held", 0))

    def wait_until_held(self, count: int, *, rule: int = 0, timeout: float = 60.0) -> None:
        """Waits until the `hold` (`holdAtStep`) rule at index `rule` holds `count` calls (or installs)."""
        deadline = time.monotonic() + timeout
        while (held := self.held(rule)) < count:
            if time.monotonic() > deadline:
                raise EmulatorError(f"fault rule {rule} holds {held} calls, not {count}, after {timeout} s")
            time.sleep(0.02)

    def release(self, rule: int | None = None) -> int:
        """Lets what the rule at index `rule` (every rule by default) holds go on; returns how many."""
        body = {} if rule is None else {"rules": [rule]}
        return int(self.admin("POST", "faults/release", body)["released"])

    def image_url(self, name: str) -> str:
        return f"{self.base_url}/images/{name}"

    def retarget(self, value: Any) -> Any:
        """Stack config (strings, lists, mappings) written for an emulator at `DOCUMENTED_ADDRESS`, with every
        URL of that address moved to this emulator."""
        if isinstance(value, str):
            moved = value.startswith(DOCUMENTED_ADDRESS)
            return self.base_url + value.removeprefix(DOCUMENTED_ADDRESS) if moved else value
        if isinstance(value, Mapping):
            return {key: self.retarget(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.retarget(item) for item in value]
        return value

    def wait_for_task(self, service_name: str, task_id: int, *, timeout: float = 60.0) -> dict[str, Any]:
        """Polls the admin view until the install of `task_id` has ended; returns its history entry."""
        for entry in _poll(lambda: self._install(service_name, task_id), timeout):
            if entry["status"] not in ("init", "todo", "doing"):
                return entry
        raise EmulatorError(f"task {task_id} on {service_name} did not end within {timeout} s")

    def _install(self, service_name: str, task_id: int) -> dict[str, Any]:
        for entry in self.server(service_name)["installs"]:
            if entry["taskId"] == task_id:
                result: dict[str, Any] = entry
                return result
        raise EmulatorError(f"no install with task {task_id} on {service_name}")


def _poll(read: Callable[[], dict[str, Any]], timeout: float) -> Iterator[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        yield read()
        time.sleep(0.05)


def _dumps(value: Any) -> str:
    return json.dumps(value)


def _loads(raw: bytes) -> Any:
    return json.loads(raw) if raw else None


def start_emulator(
    *,
    servers: int = 0,
    speed: float = 600.0,
    state: Path | None = None,
    images: Path | None = None,
    images_auth: tuple[str, str] | None = None,
    extra_args: Iterable[str] = (),
    realistic: bool = False,
) -> RunningEmulator:
    """Starts `python -m ovh_emulator` on a free loopback port and waits until it listens.

    `realistic`: OVH as it behaves (`--realistic`): 404 bursts on fresh tasks and servers, negative
    elapsedTime across reboots, 60 requests a minute per consumer key (in emulated time)."""
    emulator = RunningEmulator(
        servers=servers,
        speed=speed,
        state=state,
        images=images,
        images_auth=images_auth,
        extra_args=extra_args,
        realistic=realistic,
    )
    try:
        emulator._start()
    except BaseException:
        emulator.close()
        raise
    return emulator
