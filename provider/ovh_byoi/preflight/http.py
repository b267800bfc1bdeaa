"""The image at an http(s) URL: reached with the user's headers, which never leave the URL's origin."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3

from ovh_byoi.errors import guide_fix
from ovh_byoi.redaction import redact, url_secrets
from ovh_byoi.spec import Problem

from .sources import HEAD_BYTES, Probe, ReadInto

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0

# What an HTTP status most likely means, and which field fixes it.
_STATUS_ADVICE: dict[int, tuple[str, str]] = {
    401: (
        "http_headers",
        "The server wants credentials: give them in http_headers, e.g. "
        '{"Authorization": "Basic <base64 of user:password>"}, and check them with curl.',
    ),
    403: (
        "http_headers",
        "The server refuses these credentials or this client: check the values in http_headers (and, for a "
        "pre-signed URL, that it has not expired).",
    ),
    404: ("image_url", "Nothing is published at this URL: check the host, the path and the file name."),
    407: (
        "image_url",
        "A proxy wants credentials: OVH's servers download directly, use a URL they can reach.",
    ),
    410: ("image_url", "The image was removed from this URL: publish it again or use its new URL."),
}


def _status_finding(status: int, reason: str | None, display: str, *, sent_credentials: bool) -> Problem:
    # A 401 despite the user's headers means they were refused, not missing.
    advice = _STATUS_ADVICE[403] if status == 401 and sent_credentials else _STATUS_ADVICE.get(status)
    target, fix = advice or ("image_url", guide_fix("download_failed"))
    return Problem(target, f"downloading {display} answers HTTP {status} {reason or ''}".rstrip(), fix)


# Reading the body through `response.raw` raises urllib3's own errors, which requests does not wrap; a host
# that cannot be encoded or a header value beyond Latin-1 fails with a ValueError before anything is sent.
_TRANSFER_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, ValueError)


def _unreachable_finding(display: str, exc: Exception, secrets: Iterable[str] = ()) -> Problem:
    kind = {
        requests.exceptions.SSLError: "its TLS certificate is not valid",
        requests.exceptions.ConnectTimeout: "the connection timed out",
        requests.exceptions.ReadTimeout: "the server stopped answering",
        requests.exceptions.ConnectionError: "the connection failed",
        requests.exceptions.InvalidURL: "the URL is not valid",
    }
    cause = next((text for klass, text in kind.items() if isinstance(exc, klass)), "the request failed")
    # urllib3 nests the reason in layers of repr: the system's words ("[Errno 111] ...") say it all.
    system_words = re.search(r"\[Errno -?\d+\] [^'\")\]]+", str(exc))
    detail = system_words.group(0) if system_words else redact(str(exc), secrets)
    return Problem(
        "image_url", f"cannot download {display}: {cause} ({detail})", guide_fix("download_failed")
    )


def _total_size(response: requests.Response) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    match = re.fullmatch(r"bytes \d+-\d+/(\d+)", content_range.strip())
    if match:
        return int(match.group(1))
    if response.status_code == 200 and "Content-Encoding" not in response.headers:
        length = response.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: what a redirect must keep for the user's headers to follow it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _origin_text(origin: tuple[str, str, int | None]) -> str:
    scheme, host, port = origin
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


class _OriginBoundSession(requests.Session):
    """Sends the user's headers to the image URL's scheme, host and port only.

    requests itself drops only `Authorization` when a redirect changes host (and keeps it on a change of
    port): a token in `X-Auth-Token` or `PRIVATE-TOKEN` would reach whatever host the image server redirects
    to. Here every user header is dropped at the first hop that leaves the origin, and stays dropped for the
    rest of that chain (requests builds each hop from the previous one).
    """

    def __init__(self, origin: tuple[str, str, int | None], user_headers: Iterable[str]) -> None:
        super().__init__()
        self.origin = origin
        self.user_headers = tuple(user_headers)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        if _origin(prepared_request.url or "") != self.origin:
            for name in self.user_headers:
                prepared_request.headers.pop(name, None)
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]


class HttpSource:
    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        # A socket error that urllib3 lets through while the body is read is a plain OSError.
        self.transfer_errors: tuple[type[Exception], ...] = (*_TRANSFER_ERRORS, OSError)
        self.url = url
        self.display = redact(url)
        self._user_headers = bool(headers) or "@" in urlsplit(url).netloc
        self._user_header_names = tuple(headers)
        self.secrets: tuple[str, ...] = (*headers.values(), *url_secrets(url))
        self._headers = {
            # OVH's downloader receives the bytes as stored: never let the server compress them for us.
            "Accept-Encoding": "identity",
            "User-Agent": "ovh-byoi-preflight",
            **headers,
        }

    @property
    def local_path(self) -> Path | None:
        return None

    def _session(self) -> requests.Session:
        session = _OriginBoundSession(_origin(self.url), self._user_header_names)
        session.headers.update(self._headers)
        return session

    def _refused(self, response: requests.Response) -> Problem:
        elsewhere = _origin(response.url) != _origin(self.url)
        if elsewhere and response.history and self._user_header_names and response.status_code in (401, 403):
            # The headers were withheld on purpose: say so, rather than blame their values.
            return Problem(
                "http_headers",
                f"downloading {self.display} is redirected to {redact(response.url)}, which answers HTTP "
                f"{response.status_code} {response.reason or ''}".rstrip()
                + f"; http_headers are sent to {_origin_text(_origin(self.url))} only, never to another "
                "scheme, host or port",
                "If that server is the one that needs the headers, give its URL as image_url (OVH's "
                "downloader should not have to follow the redirect with your credentials); otherwise make "
                "the redirect's target downloadable without them (e.g. a pre-signed URL).",
            )
        return _status_finding(
            response.status_code, response.reason, self.display, sent_credentials=self._user_headers
        )

    def probe(self) -> Probe:
        with self._session() as session:
            try:
                head = session.head(self.url, allow_redirects=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            except _TRANSFER_ERRORS as exc:
                return Probe(findings=[_unreachable_finding(self.display, exc, self.secrets)])
            size = _total_size(head) if head.ok else None
            # The ranged GET reads the first bytes, and its status is the one that counts: some servers refuse
            # HEAD (405, 501) and pre-signed URLs allow GET only (403 on HEAD).
            try:
                with session.get(
                    self.url,
                    headers={"Range": f"bytes=0-{HEAD_BYTES - 1}"},
                    stream=True,
                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                ) as response:
                    if not response.ok:
                        return Probe(findings=[self._refused(response)])
                    first = _read_at_most(lambda n: response.raw.read(n, decode_content=False), HEAD_BYTES)
                    size = _total_size(response) or size
            except _TRANSFER_ERRORS as exc:
                return Probe(findings=[_unreachable_finding(self.display, exc, self.secrets)])
        return Probe(size=size, head=first)

    @contextlib.contextmanager
    def stream(self) -> Iterator[ReadInto]:
        with (
            self._session() as session,
            session.get(self.url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as response,
        ):
            response.raise_for_status()
            raw = response.raw

            def read_into(buffer: bytearray) -> int:
                # As stored: OVH's downloader does not decode a Content-Encoding either.
                data = raw.read(len(buffer), decode_content=False)
                buffer[: len(data)] = data
                return len(data)

            yield read_into


def _read_at_most(read: Callable[[int], bytes], limit: int) -> bytes:
    parts: list[bytes] = []
    remaining = limit
    while remaining > 0:
        part = read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
