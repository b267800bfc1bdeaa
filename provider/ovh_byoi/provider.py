"""ByoiProvider: the dynamic provider behind `ByoiInstallation`.

Design notes:

- The class lives at `ovh_byoi.provider.ByoiProvider` forever: every user's state pickles this path.
- Instances hold nothing. The stack config read by `configure()` is kept in `_SETTINGS`, a module-level
  registry keyed by process: dill pickles this class by reference and its instances by their (empty)
  `__dict__`, so no credential can reach the state. Clients are built per call: four concurrent calls
  share nothing.
- `diff` always answers `changes=True` or `False` (never "unknown", which would turn any new version of the
  pickled provider into an update), and puts every difference that ends up on the disk into `replaces`, so
  the preview shows `+-` on exactly the servers that would be erased.
- `update` and `read` return the full outputs, the recorded state included; `read` and `update` never write
  to OVH; `delete` leaves the server as installed (there is nothing to uninstall).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import Any, Final

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from .drift import find_drift
from .errors import ByoiError
from .installing import Session, resource_id
from .ovh_api import OvhSettings
from .progress import Progress
from .sdk_compat import widen_serving_pool
from .spec import (
    DEFAULT_TIMEOUT_MINUTES,
    ByoiInstallationArgs,
    check_inputs,
    install_changes,
    knob_changes,
)

__all__ = ["ByoiProvider"]

PROVIDER_KEY: Final = "__provider"
# What the provider records besides the inputs.
STATE_FIELDS: Final = ("task_id", "installed_at", "os", "drift")

_SETTINGS: dict[int, OvhSettings] = {}
_SETTINGS_LOCK = threading.Lock()


def _settings() -> OvhSettings:
    """This process's configuration; without `configure()`, OVH's client looks at OVH_* and ovh.conf."""
    with _SETTINGS_LOCK:
        return _SETTINGS.get(os.getpid(), OvhSettings())


def _inputs(props: Mapping[str, Any]) -> dict[str, Any]:
    """The user's inputs among stored properties (outputs carry the recorded state as well)."""
    return {
        name: value
        for name, value in props.items()
        if name in ByoiInstallationArgs.model_fields and value is not None
    }


def _validated(props: Mapping[str, Any]) -> ByoiInstallationArgs:
    values, problems = check_inputs(_inputs(props))
    if problems:
        # Only reached when the engine skipped check: report as check would, never with the values.
        raise ByoiError("Invalid inputs:\n" + "\n".join(f"- {problem.reason}" for problem in problems))
    return ByoiInstallationArgs.model_validate(values)


def _recorded(props: Mapping[str, Any]) -> dict[str, Any]:
    return {name: props[name] for name in STATE_FIELDS if props.get(name) is not None}


def _task_id(props: Mapping[str, Any]) -> int | None:
    value = props.get("task_id")
    return int(value) if isinstance(value, int | float) else None


class ByoiProvider(ResourceProvider):
    """Installs an image on an OVHcloud dedicated server with Bring Your Own Image, and keeps it there."""

    def configure(self, req: ConfigureRequest) -> None:
        # Every ByoiInstallation of a stack shares this process, and a create waits on OVH for minutes:
        # served four calls at a time (the SDK's pool), a stack would install its servers four by four.
        if not widen_serving_pool():
            print(
                "ovh-byoi: this version of Pulumi's SDK serves a dynamic provider differently than expected: "
                "the servers of this stack install at most four at a time",
                file=sys.stderr,
            )
        settings = OvhSettings.from_config(req.config.get)
        with _SETTINGS_LOCK:
            _SETTINGS[os.getpid()] = settings

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {name: value for name, value in news.items() if name != PROVIDER_KEY}
        normalized, problems = check_inputs(inputs)
        return CheckResult(normalized, [CheckFailure(problem.field, problem.reason) for problem in problems])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = install_changes(olds, news)
        if olds.get("drift"):
            # Refresh found the server no longer runs what the stack says: the next up installs it again.
            replaces.append("drift")
        changes = bool(replaces) or bool(knob_changes(olds, news))
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        args = _validated(props)
        session = Session.open(_settings(), args.service_name, timeout_minutes=args.timeout_minutes)
        state = session.adopt(args) if args.adopt else session.install(args)
        return CreateResult(resource_id(state.service_name, state.task_id), state.outputs())

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        service_name = str(props.get("service_name") or id_.split("/", 1)[0])
        timeout = props.get("timeout_minutes") or DEFAULT_TIMEOUT_MINUTES
        session = Session.open(_settings(), service_name, timeout_minutes=float(timeout))
        # Never ReadResult(None, ...): OVH's 404 is no proof the server is gone, and a resource dropped from
        # the state would be created again (the server reinstalled) by the next `pulumi up`.
        server = session.server_for_refresh()
        expected_os = str(props.get("os") or props.get("operating_system") or "byoi_64")
        drift = find_drift(session, server, task_id=_task_id(props), expected_os=expected_os)
        outputs = {name: value for name, value in props.items() if name != PROVIDER_KEY}
        outputs["drift"] = drift
        return ReadResult(id_, outputs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        args = _validated(news)
        changed = knob_changes(olds, news)
        Progress(args.service_name).say(
            f"recorded {', '.join(changed) or 'the inputs'}; nothing sent to OVH, the server is untouched"
        )
        # NO-OP towards OVH: only knobs changed (diff sends every change of what is on the disk to replace).
        return UpdateResult({**_recorded(olds), **args.outputs()})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # NO-OP: there is nothing to uninstall; the server keeps running the image until it is reinstalled.
        service_name = str(props.get("service_name") or _id.split("/", 1)[0])
        Progress(service_name).say("removed from the stack; the server keeps running what was installed")
