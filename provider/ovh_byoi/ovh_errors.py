"""The one place that turns OVH's answers and its client's exceptions into this package's errors.

An exception of OVH's `ovh` client becomes the most specific `ApiRefusedError` (`refusal`), found by OVH's own
label first (the ``class`` of a business error, the ``errorCode`` of the auth layer), then by OVH's words,
then by the client's exception class, and given the fix for it. Callers wrap the calls whose failure ends
the operation in `translated`; retry policies look at the raw exceptions first (`ovh_byoi.retrying`). A
reinstall task that ended in error becomes a `TaskFailedError` with all of OVH's reasons (`task_failure`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ovh.exceptions

from .errors import (
    CREDENTIALS_WHERE,
    ApiRefusedError,
    CredentialsError,
    DiskGroups,
    InstallAlreadyRunningError,
    PermissionDeniedError,
    ServerNotFoundError,
    ServerUnreadableError,
    TaskFailedError,
    fix_for,
)

if TYPE_CHECKING:
    from .ovh_api import InstallStatus, Task

__all__ = ["already_running", "failure_reasons", "http_status", "refusal", "task_failure", "translated"]


@dataclass(frozen=True)
class _Refusal:
    error_type: type[ApiRefusedError]
    fix: str  # str.format template over service_name and action


# OVH's ``class`` names end with the part that matters; the auth layer uses ``errorCode``.
_REFUSALS: dict[str, _Refusal] = {
    "TaskAlreadyExists": _Refusal(
        InstallAlreadyRunningError,
        "An installation is already running on {service_name}: wait until it ends "
        "(`ovh-byoi status {service_name}`), then try again.",
    ),
    "DisturbAlreadyExists": _Refusal(
        InstallAlreadyRunningError,
        "Another operation holds {service_name}: wait until it ends (`ovh-byoi status {service_name}`), "
        "then try again.",
    ),
    "HostnameInvalidFormat": _Refusal(
        ApiRefusedError,
        "hostname must have at most 63 characters, start with a letter, end with a letter or a digit, and "
        "contain only letters, digits and hyphens.",
    ),
    "OperatingSystemIncompatible": _Refusal(
        ApiRefusedError,
        "This server cannot install that operating system: use operating_system byoi_64 (or byolinux_64) and "
        "check that the server offers it (GET /dedicated/server/{service_name}/install/compatibleTemplates).",
    ),
    "OperatingSystem": _Refusal(
        ApiRefusedError, "operating_system must be an OVH template name: byoi_64 or byolinux_64."
    ),
    "CustomizationInvalidFormat": _Refusal(
        ApiRefusedError, "Check the fields OVH names in its message against the BYOI guide's field table."
    ),
    "CustomizationSizeExceeded": _Refusal(
        ApiRefusedError,
        "A customization is too large (usually config_drive_user_data): make it smaller, e.g. by having "
        "cloud-init fetch the rest.",
    ),
    "INVALID_KEY": _Refusal(
        CredentialsError,
        "OVH does not know this application key on this endpoint: check the endpoint and the application "
        f"key {CREDENTIALS_WHERE}.",
    ),
    "INVALID_CREDENTIAL": _Refusal(
        CredentialsError,
        "The consumer key is invalid or has expired: create a new consumer key for this application "
        f"{CREDENTIALS_WHERE}.",
    ),
    "NOT_CREDENTIAL": _Refusal(
        CredentialsError, f"No consumer key was given: set the consumer key {CREDENTIALS_WHERE}."
    ),
    "INVALID_SIGNATURE": _Refusal(
        CredentialsError,
        f"The application secret does not match the application key: check both {CREDENTIALS_WHERE}.",
    ),
    "NOT_GRANTED_CALL": _Refusal(
        PermissionDeniedError,
        "The consumer key lacks the right to {action}: create one granted GET and POST on "
        "/dedicated/server/* (the reinstall needs POST /dedicated/server/*/reinstall).",
    ),
    "FORBIDDEN": _Refusal(
        PermissionDeniedError,
        "OVH forbids this call for these credentials: check that the account owns {service_name} and that "
        "the consumer key is granted /dedicated/server/*.",
    ),
}

_UNREACHABLE = _Refusal(
    ApiRefusedError, "OVH's API could not be reached: check the endpoint and the network, then try again."
)

# Without OVH's label (a failure of the client itself, older answers), the client's exception class tells.
_Classes = type[ovh.exceptions.APIError] | tuple[type[ovh.exceptions.APIError], ...]
_BY_EXCEPTION: tuple[tuple[_Classes, _Refusal], ...] = (
    (ovh.exceptions.InvalidKey, _REFUSALS["INVALID_KEY"]),
    (ovh.exceptions.InvalidCredential, _REFUSALS["INVALID_CREDENTIAL"]),
    (ovh.exceptions.NotCredential, _REFUSALS["NOT_CREDENTIAL"]),
    (ovh.exceptions.NotGrantedCall, _REFUSALS["NOT_GRANTED_CALL"]),
    (ovh.exceptions.Forbidden, _REFUSALS["FORBIDDEN"]),
    (
        ovh.exceptions.ResourceNotFoundError,
        _Refusal(
            ServerNotFoundError,
            "OVH knows no {service_name} for these credentials: check service_name (e.g. "
            "ns3001234.ip-51-91-2.eu) and that the endpoint is the region of the account that owns the "
            "server.",
        ),
    ),
    ((ovh.exceptions.HTTPError, ovh.exceptions.NetworkError), _UNREACHABLE),
    (
        ovh.exceptions.InvalidResponse,
        _Refusal(
            ApiRefusedError,
            "OVH's API answered something that is not JSON: check that the endpoint is OVH's API.",
        ),
    ),
    (
        ovh.exceptions.InvalidRegion,
        _Refusal(
            CredentialsError,
            "The endpoint must be an OVH region (ovh-eu, ovh-ca, ovh-us, ...) or an http(s) URL of the API.",
        ),
    ),
    (
        ovh.exceptions.InvalidConfiguration,
        _Refusal(ApiRefusedError, f"Check the OVH credentials {CREDENTIALS_WHERE}."),
    ),
)

_RUNNING_MESSAGE = re.compile(r"is already (?:running|locked)", re.I)
_SERVER_SIDE = _Refusal(
    ApiRefusedError, "OVH's side failed: try again later; if it persists, give OVH support the query id."
)
_GENERIC = _Refusal(ApiRefusedError, "")


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an OVH error answer, or None when no answer came (network failure)."""
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _error_class(exc: ovh.exceptions.APIError) -> str:
    """OVH's ``class`` (business errors) or ``errorCode`` (auth layer) from the response body."""
    response = getattr(exc, "response", None)
    if response is None:
        return ""
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    return str(body.get("class") or body.get("errorCode") or "")


def _ovh_message(exc: ovh.exceptions.APIError) -> str:
    # APIError.__str__ appends the query id itself; the message alone is the first argument.
    words = [str(arg) for arg in exc.args if str(arg)]
    return ": ".join(words) if words else type(exc).__name__


def _classify(exc: ovh.exceptions.APIError) -> _Refusal:
    error_class = _error_class(exc)
    if error_class:
        last_part = error_class.rsplit("::", 1)[-1]
        if last_part in _REFUSALS:
            return _REFUSALS[last_part]
    # Without a body class (older answers, other clients), OVH's words still tell an install is running.
    status_code = http_status(exc)
    if status_code in (400, 409) and _RUNNING_MESSAGE.search(_ovh_message(exc)):
        return _REFUSALS["TaskAlreadyExists"]
    for classes, known in _BY_EXCEPTION:
        if isinstance(exc, classes):
            return known
    if status_code is not None and status_code >= 500:
        return _SERVER_SIDE
    return _GENERIC


def refusal(exc: ovh.exceptions.APIError, *, service_name: str, action: str) -> ApiRefusedError:
    """The most specific error for an exception raised by OVH's client, keeping OVH's words and query id.

    ``action`` completes "OVH refused to ... on <server>", e.g. ``"start a reinstall"``.
    """
    message = _ovh_message(exc)
    known = _classify(exc)
    fix = known.fix.format(service_name=service_name, action=action) if known.fix else None
    return known.error_type(
        service_name=service_name,
        action=action,
        ovh_message=message,
        error_class=_error_class(exc),
        status_code=http_status(exc),
        query_id=getattr(exc, "query_id", None),
        fix=fix if fix is not None else fix_for(message),
    )


def already_running(exc: BaseException | None) -> bool:
    """Whether OVH refused because a reinstall (or another operation) already holds the server."""
    if not isinstance(exc, ovh.exceptions.APIError):
        return False
    return issubclass(_classify(exc).error_type, InstallAlreadyRunningError)


@contextmanager
def translated(service_name: str, action: str, *, refreshing: bool = False) -> Iterator[None]:
    """OVH's client exceptions raised inside become this package's errors, with OVH's words and the fix.

    ``refreshing``: a 404 on the server read for a refresh is `ServerUnreadableError`, never "gone": OVH
    answers it to another account's credentials and, for a while, after a reinstall; dropping the resource
    would have the next `pulumi up` reinstall the server.
    """
    try:
        yield
    except ovh.exceptions.ResourceNotFoundError as exc:
        if refreshing:
            raise ServerUnreadableError(service_name, query_id=getattr(exc, "query_id", None)) from None
        raise refusal(exc, service_name=service_name, action=action) from None
    except ovh.exceptions.APIError as exc:
        raise refusal(exc, service_name=service_name, action=action) from None


def failure_reasons(task: Task, status: InstallStatus | None) -> list[str]:
    """OVH's reasons for a failed task: the failing step's error, the task's comment and its note."""
    step = status.failed_step if status is not None else None
    return [text for text in (step.error if step else None, task.comment, task.note) if text]


def task_failure(
    service_name: str,
    task: Task,
    status: InstallStatus | None,
    *,
    query_id: str | None = None,
    groups: DiskGroups = (),
    disk_group_id: int | None = None,
) -> TaskFailedError:
    """The failed task as an error with all of OVH's reasons and the fix for each known one."""
    return TaskFailedError(
        service_name,
        task.task_id,
        task.status,
        failure_reasons(task, status),
        query_id=query_id,
        groups=groups,
        disk_group_id=disk_group_id,
    )
