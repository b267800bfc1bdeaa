"""Thin, typed calls over OVH's `ovh` client, and the client factory.

Credentials come from the stack config keys OVH's own Pulumi provider uses (`ovh:endpoint`,
`ovh:applicationKey`, ...), then from `OVH_*` variables, then from `ovh.conf`, as OVH's client looks them up.
The endpoint may be a region name (`ovh-eu`) or the http(s) URL of an API (a local emulator).

A client holds a `requests.Session`, which is not meant to be shared between threads: make one `OvhApi` per
provider call (each call runs in one thread) and never keep it in the provider object.
"""

from __future__ import annotations

import contextlib
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import ovh
import ovh.client
import ovh.config
import ovh.exceptions
from pydantic import BaseModel, ConfigDict, Field

from .budget import RequestBudget, prepaid
from .clock import time_scale
from .errors import CredentialsError
from .spec import ReinstallRequest

__all__ = [
    "CONFIG_KEYS",
    "Hardware",
    "InstallStatus",
    "InstallStep",
    "OvhApi",
    "OvhSettings",
    "Server",
    "Task",
    "make_client",
]

# Our setting -> the stack config key OVH's bridged Pulumi provider reads, so one config serves both.
CONFIG_KEYS: Final[dict[str, str]] = {
    "endpoint": "ovh:endpoint",
    "application_key": "ovh:applicationKey",
    "application_secret": "ovh:applicationSecret",
    "consumer_key": "ovh:consumerKey",
    "client_id": "ovh:clientId",
    "client_secret": "ovh:clientSecret",
}

# Per request: connecting must be quick; an answer may take a while on a loaded API. The transport's own
# timeouts are in real seconds, whatever OVH_BYOI_TIME_SCALE says, since they bound real HTTP exchanges.
REQUEST_TIMEOUT: Final[tuple[float, float]] = (10.0, 60.0)

RUNNING_STATUSES: Final[frozenset[str]] = frozenset({"init", "todo", "doing"})
FAILED_STATUSES: Final[frozenset[str]] = frozenset({"customerError", "ovhError", "cancelled"})


@dataclass(frozen=True)
class OvhSettings:
    """What the stack config says about OVH; anything left out is looked up by OVH's client (env, ovh.conf).

    Secrets are excluded from `repr` so that no log line or error message can carry them.
    """

    endpoint: str | None = None
    application_key: str | None = None
    application_secret: str | None = field(default=None, repr=False)
    consumer_key: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, get: Callable[[str], Any]) -> OvhSettings:
        """Read the `ovh:*` keys through `get` (`pulumi.dynamic.Config.get`); blank values count as unset."""
        values: dict[str, str | None] = {}
        for name, key in CONFIG_KEYS.items():
            value = get(key)
            values[name] = str(value).strip() or None if value is not None else None
        return cls(**values)


def resolve_endpoint(configured: str | None) -> str:
    """The endpoint from the stack config, else `OVH_ENDPOINT`, else ovh.conf's `[default] endpoint`."""
    endpoint = configured or ovh.config.ConfigurationManager().get("default", "endpoint")
    if not endpoint:
        raise CredentialsError(
            service_name="the OVH API",
            action="find which OVH API to call",
            ovh_message="no endpoint is configured",
            fix="set one: `pulumi config set ovh:endpoint ovh-eu` (or ovh-ca, ovh-us, or the URL of an API), "
            "or OVH_ENDPOINT, or `endpoint=` in the [default] section of ovh.conf",
        )
    if _is_url(endpoint):
        return str(endpoint).rstrip("/")
    if endpoint not in ovh.client.ENDPOINTS:
        raise CredentialsError(
            service_name="the OVH API",
            action="find which OVH API to call",
            ovh_message=f"unknown endpoint {endpoint!r}",
            fix=f"use one of {', '.join(sorted(ovh.client.ENDPOINTS))}, or the http(s) URL of an API",
        )
    return str(endpoint)


# OVH's clock minus this machine's, per API, learned once per process: OVH's client asks `GET /auth/time`
# once per client, and a fleet makes a client per server and provider call.
_time_deltas: dict[str, int] = {}
_time_delta_lock = threading.Lock()


class Client(ovh.Client):  # type: ignore[misc]
    """OVH's client, remembering the query id of its last answer (OVH support asks for it), waiting for
    the consumer key's shared request budget before each signed request (`budget.py`), and sharing the
    clock offset OVH's client reads from `/auth/time` with every client of the process.

    OVH's client keeps the query id only on errors; a failed task is reported by a successful read.
    """

    last_query_id: str | None = None
    budget: RequestBudget | None = None
    _time_delta: int | None
    _endpoint: str

    def __init__(self, endpoint: str, **settings: Any) -> None:
        if _is_url(endpoint):
            _init_for_url(self, endpoint, settings)
        else:
            super().__init__(endpoint=endpoint, **settings)

    @property
    def time_delta(self) -> int:
        if self._time_delta is None:
            # One client asks while the others of a starting fleet wait for its answer instead of asking too.
            with _time_delta_lock:
                if self._endpoint not in _time_deltas:
                    _time_deltas[self._endpoint] = super().time_delta
            self._time_delta = _time_deltas[self._endpoint]
        return self._time_delta

    def raw_call(
        self, method: str, path: str, data: Any = None, need_auth: bool = True, headers: Any = None
    ) -> Any:
        if self.budget is not None and need_auth:
            # OVH's limit is per consumer key; an unsigned call (`/auth/time`) carries none.
            self.budget.take()
        response = super().raw_call(method, path, data=data, need_auth=need_auth, headers=headers)
        self.last_query_id = response.headers.get("X-OVH-QUERYID")
        return response


def _is_url(endpoint: str) -> bool:
    return endpoint.startswith(("http://", "https://"))


def _init_for_url(client: ovh.Client, url: str, settings: dict[str, Any]) -> None:
    """Runs OVH's own `Client.__init__` for an API URL, as if `ovh.client.ENDPOINTS` mapped it to itself.

    OVH's client only knows its region names: `__init__` looks `endpoint` up in the module-level table
    `ENDPOINTS`, and uses the same name to pick the ovh.conf section credentials come from and to allow
    OAuth2 (on OVH's regions only). Adding the URL to that table would change it for the whole process;
    building the client with a region's name and setting `_endpoint` afterwards would read that region's
    credentials from ovh.conf (and sign requests to the URL with them) and would allow OAuth2 against that
    region; a copy of `__init__` would miss what later releases change in it. So `__init__`'s own code runs
    against a private copy of its module's names whose table holds the URL too: every rule of OVH's client
    applies to the URL as to a region, and nothing else changes. Should a release stop reading that table,
    the URL is refused as an unknown region, which the tests would show.
    """
    upstream = ovh.Client.__init__
    names = {**vars(ovh.client), "ENDPOINTS": {**ovh.client.ENDPOINTS, url: url}}
    init = types.FunctionType(
        upstream.__code__, names, upstream.__name__, upstream.__defaults__, upstream.__closure__
    )
    init.__kwdefaults__ = upstream.__kwdefaults__
    init(client, endpoint=url, **settings)


def make_client(settings: OvhSettings) -> Client:
    """A new signed client. Values missing from `settings` come from `OVH_*` variables, then ovh.conf."""
    endpoint = resolve_endpoint(settings.endpoint)
    try:
        client = Client(
            endpoint=endpoint,
            application_key=settings.application_key,
            application_secret=settings.application_secret,
            consumer_key=settings.consumer_key,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            timeout=REQUEST_TIMEOUT,
        )
    except ovh.exceptions.APIError as exc:
        # The client's configuration messages name which value is missing, never a secret's value.
        raise CredentialsError(
            service_name=endpoint,
            action="set up OVH's client",
            ovh_message=str(exc.args[0]) if exc.args else type(exc).__name__,
            fix="set the ovh:applicationKey, ovh:applicationSecret and ovh:consumerKey stack config keys "
            "(or ovh:clientId and ovh:clientSecret), or OVH_* variables, or ovh.conf",
        ) from None
    # The budget is OVH's, per consumer key (a service account's client id plays its part).
    identity = client._consumer_key or client._client_id or client._application_key or ""
    client.budget = RequestBudget.for_key(f"{endpoint}\0{identity}", scale=time_scale())
    return client


# --- what OVH answers ---------------------------------------------------------------------------------------

_ANSWER = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Task(BaseModel):
    """`dedicated.server.Task`."""

    model_config = _ANSWER

    task_id: int = Field(alias="taskId")
    function: str = ""
    status: str
    comment: str | None = None
    note: str | None = None
    start_date: str | None = Field(default=None, alias="startDate")
    done_date: str | None = Field(default=None, alias="doneDate")
    last_update: str | None = Field(default=None, alias="lastUpdate")

    @property
    def running(self) -> bool:
        return self.status in RUNNING_STATUSES

    @property
    def failed(self) -> bool:
        """Ended without success: a failure status, or one outside OVH's enumeration (never a success)."""
        return not self.running and self.status != "done"

    @property
    def known_status(self) -> bool:
        return self.status in RUNNING_STATUSES | FAILED_STATUSES | {"done"}


class Server(BaseModel):
    """The part of `dedicated.server.Dedicated` this project reads."""

    model_config = _ANSWER

    name: str | None = None
    os: str | None = None
    state: str | None = None


class InstallStep(BaseModel):
    """`dedicated.server.InstallationProgressSteps`."""

    model_config = _ANSWER

    comment: str = ""
    status: str = ""
    error: str | None = None


class InstallStatus(BaseModel):
    """`dedicated.server.InstallationProgressStatus`: OVH's install steps while an install runs."""

    model_config = _ANSWER

    elapsed_time: int = Field(default=0, alias="elapsedTime")
    progress: list[InstallStep] = Field(default_factory=list)

    @property
    def steps_done(self) -> int:
        return sum(1 for step in self.progress if step.status == "done")

    @property
    def current(self) -> tuple[int, InstallStep] | None:
        """The 1-based position and the step OVH is on (the first one not done), or None when all are done."""
        for position, step in enumerate(self.progress, start=1):
            if step.status != "done":
                return position, step
        return None

    @property
    def failed_step(self) -> InstallStep | None:
        return next((step for step in self.progress if step.status == "error"), None)


class _UnitValue(BaseModel):
    model_config = _ANSWER

    unit: str = "B"
    value: int = 0


class DiskGroup(BaseModel):
    """`dedicated.server.HardwareSpecificationsDisk`: `diskSize` is the size of one disk of the group."""

    model_config = _ANSWER

    disk_group_id: int | None = Field(default=None, alias="diskGroupId")
    disk_size: _UnitValue | None = Field(default=None, alias="diskSize")
    number_of_disks: int | None = Field(default=None, alias="numberOfDisks")
    description: str | None = None

    @property
    def disk_bytes(self) -> int | None:
        """One disk's size (disk makers count in powers of ten)."""
        return _to_bytes(self.disk_size, binary=False) if self.disk_size else None


class Hardware(BaseModel):
    """The part of `dedicated.server.HardwareSpecifications` preflight needs."""

    model_config = _ANSWER

    disk_groups: list[DiskGroup] | None = Field(default=None, alias="diskGroups")
    memory_size: _UnitValue | None = Field(default=None, alias="memorySize")

    def group(self, disk_group_id: int | None) -> DiskGroup | None:
        """The target disk group: 0 or None is OVH's automatic choice, disk group 1 by OVH's install guide."""
        wanted = disk_group_id or 1
        groups = self.disk_groups or []
        found = next((g for g in groups if g.disk_group_id == wanted), None)
        if found is None and not disk_group_id and groups:
            # No group numbered 1: OVH's automatic choice is then not documented; the first one listed.
            return groups[0]
        return found

    def group_ids(self) -> list[int]:
        return [g.disk_group_id for g in self.disk_groups or () if g.disk_group_id is not None]

    def disk_bytes_of(self, disk_group_id: int | None) -> int | None:
        """The disk an image is written to: BYOI deploys to the first disk of the target disk group."""
        group = self.group(disk_group_id)
        return group.disk_bytes if group is not None else None

    @property
    def disk_bytes(self) -> int | None:
        """The disk an image goes to without a disk_group_id."""
        return self.disk_bytes_of(None)

    @property
    def memory_bytes(self) -> int | None:
        """The server's RAM (memory is counted in powers of two, whatever the unit is spelled)."""
        return _to_bytes(self.memory_size, binary=True) if self.memory_size else None


_UNIT_EXPONENTS: Final[dict[str, int]] = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}


def _to_bytes(size: _UnitValue, *, binary: bool) -> int:
    unit = size.unit.strip().upper().removesuffix("B").removesuffix("I")
    explicit_binary = size.unit.strip().lower().endswith("ib")
    base = 1024 if binary or explicit_binary else 1000
    return int(size.value * base ** _UNIT_EXPONENTS.get(unit, 0))


# --- the calls ----------------------------------------------------------------------------------------------


class OvhApi:
    """Typed calls about one dedicated server. One instance per thread: it owns a signed client.

    Exceptions are OVH's client's own (`ovh.exceptions.APIError` and subclasses) so that retry policies can
    tell transient failures apart; callers turn the final one into an `ApiRefusedError`.
    """

    def __init__(self, client: ovh.Client, service_name: str, *, endpoint: str = "") -> None:
        self._client = client
        self.service_name = service_name
        self.endpoint = endpoint
        self._base = f"/dedicated/server/{service_name}"

    @property
    def last_query_id(self) -> str | None:
        """OVH's query id of the last answer, when the client keeps it."""
        query_id = getattr(self._client, "last_query_id", None)
        return query_id if isinstance(query_id, str) else None

    @classmethod
    def connect(
        cls, settings: OvhSettings, service_name: str, *, tell: Callable[[str], None] | None = None
    ) -> OvhApi:
        """`tell`: where a start held up long by the request budget is said (`RequestBudget.tell`)."""
        endpoint = resolve_endpoint(settings.endpoint)
        client = make_client(settings)
        if client.budget is not None:
            client.budget.tell = tell
        return cls(client, service_name, endpoint=endpoint)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Waits for the consumer key's shared budget once; the first request inside spends that turn."""
        budget: RequestBudget | None = getattr(self._client, "budget", None)
        if budget is not None:
            budget.take()
        with prepaid():
            yield

    def server(self) -> Server:
        return Server.model_validate(self._client.get(self._base))

    def hardware(self) -> Hardware:
        return Hardware.model_validate(self._client.get(f"{self._base}/specifications/hardware"))

    def reinstall(self, request: ReinstallRequest) -> Task:
        """`POST .../reinstall`: erases the server. Never retried blindly: see `provider.start_reinstall`."""
        return Task.model_validate(self._client.post(f"{self._base}/reinstall", **request.body()))

    def reinstall_task_ids(self) -> list[int]:
        """Ids of the server's reinstall tasks, oldest first (OVH may purge old ones)."""
        ids = self._client.get(f"{self._base}/task", function="reinstallServer")
        return sorted(int(task_id) for task_id in ids)

    def task(self, task_id: int) -> Task:
        return Task.model_validate(self._client.get(f"{self._base}/task/{task_id}"))

    def install_status(self) -> InstallStatus | None:
        """OVH's install steps, or None when no install runs (OVH answers 404 then)."""
        try:
            return InstallStatus.model_validate(self._client.get(f"{self._base}/install/status"))
        except ovh.exceptions.ResourceNotFoundError:
            return None
