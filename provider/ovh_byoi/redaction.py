"""The one redaction applied to everything this package shows: messages, prompts, progress lines, findings.

What is masked, wherever it appears in a text:

- the ``user:password@`` part of a URL;
- the values of a URL's query string and its fragment: pre-signed object-storage URLs carry their token
  there (S3 ``X-Amz-Signature`` and ``X-Amz-Credential``, Swift ``temp_url_sig``, OVH Object Storage), and
  any other query may too. The parameter names stay, so that a reader can still tell which URL it was;
- a path's query string where a library quotes the path without its host (``with url: /img.raw?...``);
- each value passed in ``secrets`` (header values, typically), also in the escaped form ``repr`` gives it.

`redact` never raises and is idempotent: redacting twice changes nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

__all__ = ["MASK", "redact", "url_carries_secrets", "url_secrets"]

MASK = "***"

# A URL up to the first character that cannot be part of it in a message (space, quote, bracket).
_URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<rest>[^\s'\"<>\\`]+)")
# A path with a query string, as HTTP libraries quote it without scheme and host.
_PATH_QUERY = re.compile(r"(?P<path>(?<![\w:/])/[^\s?'\"<>\\`]*)\?(?P<query>[^\s'\"<>\\`#]+)")
_QUERY_PAIR = re.compile(r"(?P<name>[^&;=]*)(?P<eq>=?)(?P<value>[^&;]*)")


def _mask_query(query: str) -> str:
    def pair(match: re.Match[str]) -> str:
        name, eq, value = match.group("name", "eq", "value")
        if not eq:
            # A bare token (`?sig`): it may be the secret itself.
            return MASK if name and name != MASK else name
        return f"{name}={MASK}" if value else f"{name}="

    return _QUERY_PAIR.sub(pair, query)


# Punctuation that ends a sentence rather than the URL ("... with https://host/x?sig=abc? Everything ...").
_TRAILING = re.compile(r"[.,;:!?)\]]+$")


def _mask_url(match: re.Match[str]) -> str:
    scheme, rest = match.group("scheme", "rest")
    trailing = _TRAILING.search(rest)
    if trailing:
        return _mask_url_text(scheme, rest[: trailing.start()]) + trailing.group(0)
    return _mask_url_text(scheme, rest)


def _mask_url_text(scheme: str, rest: str) -> str:
    rest, hash_, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = MASK + "@" + authority.rpartition("@")[2]
    masked = scheme + authority + slash + path
    if question:
        masked += "?" + _mask_query(query)
    if hash_:
        masked += "#" + (MASK if fragment else "")
    return masked


def _mask_path_query(match: re.Match[str]) -> str:
    return f"{match.group('path')}?{_mask_query(match.group('query'))}"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with URL credentials, query values and each of ``secrets`` masked."""
    text = str(text)
    values = {secret for secret in secrets if secret and secret.strip() and secret != MASK}
    for secret in sorted(values, key=len, reverse=True):
        text = text.replace(secret, MASK)
        escaped = repr(secret)[1:-1]
        if escaped != secret:
            text = text.replace(escaped, MASK)
    text = _URL.sub(_mask_url, text)
    return _PATH_QUERY.sub(_mask_path_query, text)


def url_carries_secrets(url: str) -> bool:
    """Whether ``url`` holds something `redact` masks: credentials, a query string or a fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return True
    return bool(parts.query or parts.fragment or "@" in parts.netloc or "?" in url or "#" in url)


def url_secrets(url: str) -> list[str]:
    """The secret pieces of ``url`` (credentials, query values), to mask where the URL is quoted in parts."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    pieces = [parts.username, parts.password, parts.fragment]
    pieces += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    # As written in the URL too (percent-encoded), which is how libraries quote it.
    pieces += [pair.partition("=")[2] for pair in re.split(r"[&;]", parts.query)]
    # Short pieces (`1`, `true`) would mask unrelated words: the tokens worth hiding are long.
    return [piece for piece in pieces if piece and len(piece) >= 8]
