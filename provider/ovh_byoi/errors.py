"""The project's errors, and OVH's failure texts mapped to the fix the BYOI guide gives for them.

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
    ├── PreflightFailedError        the image would fail: nothing was sent to OVH, the server is untouched
    ├── InstallInterruptedError     the run was interrupted as OVH finished: the next run takes that install
    └── InstallTimeoutError         (ovh_byoi.waiting) the deadline passed while OVH still installs

`fix_for` looks a text up in the one catalog of known failures (every text of the seed guide's table of
common customer errors, and the older ones): it returns the guide's fix, or ``None`` for a text it does not
know, which callers then show verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from .redaction import redact

if TYPE_CHECKING:
    import ovh.exceptions

    from ovh_byoi.preflight import Finding

__all__ = [
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
]


@dataclass(frozen=True)
class _KnownFailure:
    key: str
    pattern: re.Pattern[str]
    fix: str  # str.format template over the pattern's named groups


_DOWNLOAD_FIX = (
    "Check that downloading the image with curl works from the server in rescue mode; if the download needs "
    "HTTP headers (Basic auth, a token), give them in http_headers."
)

# The seed guide's table of common customer errors, then the older guide's texts. Patterns match OVH's
# words wherever they appear (task comment, note, failing step's error), whatever the placeholders hold.
_CATALOG: tuple[_KnownFailure, ...] = (
    _KnownFailure(
        "checksum_pair",
        re.compile(r"Please provide checkSum AND checkSumType or none of them", re.I),
        "Give both image_checksum and image_checksum_type, or neither.",
    ),
    _KnownFailure(
        "format_mismatch",
        re.compile(
            r"image provided format is (?P<found>\S+) which does not match expected (?P<expected>\S+) format",
            re.I,
        ),
        "Whatever its file extension, the file really is {found}: set image_type to {found}, or convert the "
        "image to {expected} (qemu-img convert -O {expected} <image> <new image>).",
    ),
    _KnownFailure(
        "too_big_for_disk",
        re.compile(
            r"image provided has a size of (?P<size>\d+) bytes"
            r" which is larger than device of (?P<device>\d+) bytes",
            re.I,
        ),
        "Reduce the size of the image to at most {device} bytes (BYOI writes it to the first disk of the "
        "target disk group, not across the group){groups}.",
    ),
    _KnownFailure(
        "cannot_write",
        re.compile(r"Can't write (?P<what>.+?) on disk", re.I),
        'Modify the image so that `qemu-img convert -f "<image_type>" -O raw <image file> <device>` works.',
    ),
    _KnownFailure(
        "too_big_for_memory",
        re.compile(r"Could not download, (?P<what>.+?) image is too big to download in memory", re.I),
        "The server downloads the image into its RAM and keeps 3 GiB for itself: reduce the size of the "
        "image below the server's RAM minus 3 GiB.",
    ),
    _KnownFailure(
        "download_failed",
        # "located: {url}" in the seed guide; "image: {error message}" in OVH's newer wording.
        re.compile(r"Could not download image(?: located)?:\s*(?P<detail>.*)", re.I),
        _DOWNLOAD_FIX,
    ),
    _KnownFailure(
        "no_partition_table",
        re.compile(
            r"image provided format is not of type raw because no partition table was found"
            r"(?:\. It seems to contain: (?P<content>.*))?",
            re.I,
        ),
        "A raw image must contain a partition table (MBR or GPT): check the image with `sfdisk -l <image>`; "
        "a bare file system or a compressed file is not a disk image.",
    ),
    _KnownFailure(
        "bad_checksum",
        re.compile(
            r"Bad checkSumType for downloaded file, got: (?P<got>\S+) while expecting (?P<expected>\S+)", re.I
        ),
        "Make sure image_checksum is the checksum of this very image (and image_checksum_type its "
        "algorithm), and that downloading the image with curl works from the server in rescue mode.",
    ),
    _KnownFailure(
        "unsupported_format",
        re.compile(r"Bad format image, expected: qcow2, raw", re.I),
        "Only qcow2 and raw disk images can be installed: convert the image with "
        "`qemu-img convert -O qcow2 <image> <new image>` and set image_type to match.",
    ),
    _KnownFailure(
        "gpt_backup",
        re.compile(r"Can not move backup GPT data structures to the end of disk", re.I),
        "The image's GPT could not be moved to the end of the server's disk: check and repair the image's "
        "partition table (`sgdisk --verify <image>`, then `sgdisk -e <image>`), and make sure the image is "
        "smaller than the disk.",
    ),
    _KnownFailure(
        "configdrive",
        re.compile(r"Could not create configdrive on disk", re.I),
        "OVH adds a small config-drive partition after the image's partitions: leave a free partition slot "
        "and some unallocated space at the end of the image's partition table, or check that the table is "
        "valid.",
    ),
)

_CATALOG_BY_KEY = {known.key: known for known in _CATALOG}


# A server's disk groups as the fixes name them: (diskGroupId, bytes of one disk, OVH's description).
DiskGroups = Sequence[tuple[int, int, str]]


def disk_group_advice(image_bytes: int | None, groups: DiskGroups, target: int | None = None) -> str:
    """The part of the "larger than device" fix that names the disk groups whose first disk would fit."""
    if not groups:
        return (
            ", or, if the server has several disk groups, install on one with larger disks (disk_group_id, "
            "OVH's diskGroupId)"
        )
    fitting = [
        f"{group_id} ({description or f'{disk} bytes per disk'})"
        for group_id, disk, description in groups
        if (image_bytes is None or disk >= image_bytes) and group_id != (target or 1)
    ]
    if not fitting:
        return "; no disk group of this server (OVH's diskGroupId) has a disk that large"
    return (
        ", or install on a disk group whose disks hold it: set disk_group_id (OVH's diskGroupId) to "
        + " or ".join(fitting)
    )


def fix_for(text: str, groups: DiskGroups = (), target: int | None = None) -> str | None:
    """The guide's fix for an OVH failure text, or ``None`` when the text is not a known failure.

    ``groups``: the server's disk groups, so that the fix for an image too large for its disk names the groups
    that would hold it (``target``: the disk group it was sent to, 0 or None for OVH's automatic choice).
    """
    for known in _CATALOG:
        match = known.pattern.search(text)
        if match:
            values = {name: value or "" for name, value in match.groupdict().items()}
            if known.key == "too_big_for_disk":
                values["groups"] = disk_group_advice(int(values["size"]), groups, target)
            return known.fix.format(**values)
    return None


def guide_fix(key: str, **values: str) -> str:
    """The catalog's fix for a failure the caller detected itself (preflight), filled with ``values``."""
    if key == "too_big_for_disk":
        values.setdefault("groups", disk_group_advice(None, ()))
    return _CATALOG_BY_KEY[key].fix.format(**values)


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


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an OVH error answer, or None when no answer came (network failure)."""
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _ovh_message(exc: ovh.exceptions.APIError) -> str:
    # APIError.__str__ appends the query id itself; the message alone is the first argument.
    words = [str(arg) for arg in exc.args if str(arg)]
    return ": ".join(words) if words else type(exc).__name__


@dataclass(frozen=True)
class _Refusal:
    error_type: type[ApiRefusedError]
    fix: str  # str.format template over service_name and action


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
        message = _ovh_message(exc)
        error_class = _error_class(exc)
        status_code = http_status(exc)
        refusal = _classify(exc, error_class, message, status_code)
        fix = refusal.fix.format(service_name=service_name, action=action) if refusal.fix else None
        if fix is None:
            fix = fix_for(message)
        return refusal.error_type(
            service_name=service_name,
            action=action,
            ovh_message=message,
            error_class=error_class,
            status_code=status_code,
            query_id=getattr(exc, "query_id", None),
            fix=fix,
        )


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
            f"{_CREDENTIALS_WHERE}, then refresh again.",
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


_CREDENTIALS_WHERE = (
    "(OVH_APPLICATION_KEY, OVH_APPLICATION_SECRET, OVH_CONSUMER_KEY, the ovh: stack config keys or ovh.conf)"
)

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
        f"key {_CREDENTIALS_WHERE}.",
    ),
    "INVALID_CREDENTIAL": _Refusal(
        CredentialsError,
        "The consumer key is invalid or has expired: create a new consumer key for this application "
        f"{_CREDENTIALS_WHERE}.",
    ),
    "NOT_CREDENTIAL": _Refusal(
        CredentialsError, f"No consumer key was given: set the consumer key {_CREDENTIALS_WHERE}."
    ),
    "INVALID_SIGNATURE": _Refusal(
        CredentialsError,
        f"The application secret does not match the application key: check both {_CREDENTIALS_WHERE}.",
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

_BY_EXCEPTION_NAME: dict[str, _Refusal] = {
    "InvalidKey": _REFUSALS["INVALID_KEY"],
    "InvalidCredential": _REFUSALS["INVALID_CREDENTIAL"],
    "NotCredential": _REFUSALS["NOT_CREDENTIAL"],
    "NotGrantedCall": _REFUSALS["NOT_GRANTED_CALL"],
    "Forbidden": _REFUSALS["FORBIDDEN"],
    "ResourceNotFoundError": _Refusal(
        ServerNotFoundError,
        "OVH knows no {service_name} for these credentials: check service_name (e.g. "
        "ns3001234.ip-51-91-2.eu) and that the endpoint is the region of the account that owns the server.",
    ),
    "HTTPError": _Refusal(
        ApiRefusedError, "OVH's API could not be reached: check the endpoint and the network, then try again."
    ),
    "NetworkError": _Refusal(
        ApiRefusedError, "OVH's API could not be reached: check the endpoint and the network, then try again."
    ),
    "InvalidResponse": _Refusal(
        ApiRefusedError,
        "OVH's API answered something that is not JSON: check that the endpoint is OVH's API.",
    ),
    "InvalidRegion": _Refusal(
        CredentialsError,
        "The endpoint must be an OVH region (ovh-eu, ovh-ca, ovh-us, ...) or an http(s) URL of the API.",
    ),
    "InvalidConfiguration": _Refusal(ApiRefusedError, f"Check the OVH credentials {_CREDENTIALS_WHERE}."),
}

_RUNNING_MESSAGE = re.compile(r"is already (?:running|locked)", re.I)
_GENERIC = _Refusal(ApiRefusedError, "")


def _classify(
    exc: ovh.exceptions.APIError, error_class: str, message: str, status_code: int | None
) -> _Refusal:
    if error_class:
        last_part = error_class.rsplit("::", 1)[-1]
        if last_part in _REFUSALS:
            return _REFUSALS[last_part]
    # Without a body class (older answers, other clients), OVH's words still tell an install is running.
    if status_code in (400, 409) and _RUNNING_MESSAGE.search(message):
        return _REFUSALS["TaskAlreadyExists"]
    for klass in type(exc).__mro__:
        if klass.__name__ in _BY_EXCEPTION_NAME:
            return _BY_EXCEPTION_NAME[klass.__name__]
    if status_code is not None and status_code >= 500:
        return _Refusal(
            ApiRefusedError,
            "OVH's side failed: try again later; if it persists, give OVH support the query id.",
        )
    return _GENERIC


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
