"""The errors this package raises on purpose.

Every error's ``str()`` is the whole message a user needs: which server, what happened in OVH's own words,
OVH's query id when there is one, and the fix. No message ever carries a secret: every message goes through
`ovh_byoi.redaction.redact` when the error is built (URL credentials, query strings of signed URLs), and
`ByoiError.redacted` masks the values only the caller knows (header values).

The exception tree::

    ByoiError                       base of everything this package raises on purpose
    ├── TaskFailedError             OVH accepted the reinstall, then its task ended in error
    ├── ApiRefusedError             OVH refused a call (or could not be reached)
    │   ├── InstallAlreadyRunningError   a reinstall already runs on the server (both of OVH's forms)
    │   ├── CredentialsError             unknown application key, invalid or missing consumer key
    │   ├── PermissionDeniedError        the credentials lack the right to make this call
    │   └── ServerNotFoundError          no such server (or task) for these credentials
    ├── ServerUnreadableError       a refresh got 404 for the server: not taken as proof it is gone
    ├── PreflightFailedError        the image would fail: nothing was sent to OVH, the server is untouched
    ├── InstallInterruptedError     the run was interrupted as OVH finished: the next run takes that install
    └── InstallTimeoutError         (ovh_byoi.waiting) the deadline passed while OVH still installs

Which of these an OVH refusal becomes, and with which fix, is decided in one place: `ovh_byoi.ovh_errors`. The
fixes for the texts a failed task ends with are in `ovh_byoi.failures`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Self

# Re-exported: preflight and the README's test read the failure catalog through this module.
from .failures import _CATALOG as _CATALOG
from .failures import DiskGroups, disk_group_advice, fix_for, guide_fix
from .redaction import redact

if TYPE_CHECKING:
    import ovh.exceptions

    from ovh_byoi.preflight import Finding

__all__ = [
    "CREDENTIALS_WHERE",
    "ApiRefusedError",
    "ByoiError",
    "CredentialsError",
    "DiskGroups",
    "InstallAlreadyRunningError",
    "InstallInterruptedError",
    "PermissionDeniedError",
    "PreflightFailedError",
    "ServerNotFoundError",
    "ServerUnreadableError",
    "TaskFailedError",
    "disk_group_advice",
    "fix_for",
    "guide_fix",
]

# Where a user sets the credentials, as every fix about them names it.
CREDENTIALS_WHERE = (
    "(OVH_APPLICATION_KEY, OVH_APPLICATION_SECRET, OVH_CONSUMER_KEY, the ovh: stack config keys or ovh.conf)"
)


class ByoiError(Exception):
    """Base of the errors this package raises on purpose; ``str()`` is the complete user message."""

    def __init__(self, message: str) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def redacted(self, secrets: Iterable[str | None]) -> Self:
        """This error with each of ``secrets`` masked in its message (values only the caller knows)."""
        self.message = redact(self.message, secrets)
        self.args = (self.message, *self.args[1:])
        return self


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        stripped = item.strip()
        if stripped:
            seen.setdefault(stripped, None)
    return list(seen)


_TASK_STATUSES = frozenset({"init", "todo", "doing", "done", "cancelled", "customerError", "ovhError"})


class TaskFailedError(ByoiError):
    """An OVH reinstall task ended in error (``customerError``, ``ovhError``, ``cancelled``)."""

    def __init__(
        self,
        service_name: str,
        task_id: int | str,
        status: str,
        reasons: Sequence[str],
        query_id: str | None = None,
        *,
        groups: DiskGroups = (),
        disk_group_id: int | None = None,
    ) -> None:
        self.service_name = service_name
        self.task_id = task_id
        self.status = status
        self.reasons = _unique(redact(reason) for reason in reasons)
        self.query_id = query_id
        self.fixes = _unique(
            fix for fix in (fix_for(reason, groups, disk_group_id) for reason in self.reasons) if fix
        )
        if status in _TASK_STATUSES:
            opening = f"The installation on {service_name} failed: OVH task {task_id} ended in {status}."
        else:
            # Terraform's rule, and ours: only `done` is a success, whatever else OVH may answer.
            opening = (
                f"The installation on {service_name} is not known to have succeeded: OVH task {task_id} "
                f"reports the status {status!r}, which is none of OVH's documented ones; it is not counted "
                "as a success."
            )
            if not self.fixes:
                self.fixes = [
                    f"check the server (`ovh-byoi status {service_name}`) and OVH's task in the control "
                    "panel; once it shows done, run `pulumi up` again: it follows this same task rather than "
                    "reinstalling. If OVH keeps answering this status, give OVH support the task id."
                ]
        lines = [opening]
        if self.reasons:
            lines.extend(f"OVH says: {reason}" for reason in self.reasons)
        else:
            lines.append("OVH gave no reason.")
        lines.extend(f"Fix: {fix}" for fix in self.fixes)
        if not self.fixes and status == "ovhError":
            lines.append(
                "Fix: the failure is on OVH's side; try again later, or contact OVH support with the task id."
            )
        if query_id:
            lines.append(f"OVH query id: {query_id}")
        super().__init__("\n".join(lines))


class ApiRefusedError(ByoiError):
    """OVH's API refused a call, or could not be reached.

    ``error_class`` is OVH's ``class`` or ``errorCode`` (e.g. ``Client::BadRequest::TaskAlreadyExists``,
    ``NOT_GRANTED_CALL``), ``status_code`` the HTTP status, ``query_id`` OVH's query id (support asks for it).
    """

    def __init__(
        self,
        *,
        service_name: str,
        action: str,
        ovh_message: str,
        error_class: str = "",
        status_code: int | None = None,
        query_id: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.service_name = service_name
        self.action = action
        self.ovh_message = redact(ovh_message)
        self.error_class = error_class
        self.status_code = status_code
        self.query_id = query_id
        self.fix = fix
        label = f" ({error_class})" if error_class else ""
        # Without an HTTP status the call never got an answer: nothing was refused.
        opening = f"OVH refused to {action}" if status_code is not None else f"Could not {action}"
        lines = [f"{opening} on {service_name}{label}.", f"OVH says: {self.ovh_message}"]
        if fix:
            lines.append(f"Fix: {fix}")
        if query_id:
            lines.append(f"OVH query id: {query_id}")
        super().__init__("\n".join(lines))

    @classmethod
    def from_ovh(cls, exc: ovh.exceptions.APIError, *, service_name: str, action: str) -> ApiRefusedError:
        """The most specific error for an exception raised by OVH's client, keeping OVH's words and query id.

        ``action`` completes "OVH refused to ... on <server>", e.g. ``"start a reinstall"``.
        """
        # Imported here: `ovh_errors` builds the classes of this module, so it can only load after it.
        from .ovh_errors import refusal

        return refusal(exc, service_name=service_name, action=action)


class InstallAlreadyRunningError(ApiRefusedError):
    """A reinstall already runs on the server (OVH's ``TaskAlreadyExists`` or ``DisturbAlreadyExists``)."""


class CredentialsError(ApiRefusedError):
    """OVH does not accept the credentials (unknown application key, invalid or missing consumer key)."""


class PermissionDeniedError(ApiRefusedError):
    """The credentials are valid but lack the right to make this call."""


class ServerNotFoundError(ApiRefusedError):
    """OVH knows no such server (or task) for these credentials."""


class ServerUnreadableError(ByoiError):
    """A refresh read the server and OVH answered 404: not proof that the server is gone."""

    def __init__(self, service_name: str, *, query_id: str | None = None) -> None:
        self.service_name = service_name
        self.query_id = query_id
        lines = [
            f"OVH answered 404 (not found) when reading {service_name}. The resource stays in the stack "
            "(nothing was changed, on OVH or in the state): a 404 is not proof that the server is gone, and "
            "dropping it would have the next `pulumi up` reinstall it.",
            "The likely causes, and the way out of each:",
            "- credentials of another OVH account (or another region's endpoint): OVH answers 404 for "
            "servers the account does not own. Fix: check ovh:endpoint and the keys "
            f"{CREDENTIALS_WHERE}, then refresh again.",
            "- OVH's API inconsistency: for a few minutes after a reinstall OVH's API may not know the "
            "server (terraform-provider-ovh retries such 404s for 5 minutes). Fix: refresh again in a few "
            "minutes.",
            "- the server is really gone (its service terminated or moved to another account). Fix: remove "
            "it from the stack without touching anything: `pulumi state delete <urn>` (the URN of this "
            "ByoiInstallation, shown by `pulumi stack --show-urns`), then remove it from the program.",
        ]
        if query_id:
            lines.append(f"OVH query id: {query_id}")
        super().__init__("\n".join(lines))


class InstallInterruptedError(ByoiError):
    """The run was interrupted while OVH finished the install; nobody records the result of this create."""

    def __init__(self, service_name: str, task_id: int) -> None:
        self.service_name = service_name
        self.task_id = task_id
        super().__init__(
            f"{service_name}: the run was interrupted while OVH finished reinstalling it (task {task_id}, "
            "done). Fix: run `pulumi refresh --clear-pending-creates`, then `pulumi up`: it records this "
            "install without reinstalling."
        )


class PreflightFailedError(ByoiError):
    """The image would not install: nothing was sent to OVH and the server is untouched."""

    def __init__(self, service_name: str | None, findings: Sequence[Finding]) -> None:
        self.service_name = service_name
        self.findings = list(findings)
        where = f" for {service_name}" if service_name else ""
        count = len(self.findings)
        lines = [
            f"The image check{where} found {count} problem{'s' if count != 1 else ''}; "
            "nothing was sent to OVH and the server is untouched."
        ]
        for finding in self.findings:
            lines.append(f"- {finding.field}: {finding.message}")
            if finding.fix:
                lines.append(f"  Fix: {finding.fix}")
        super().__init__("\n".join(lines))
