"""What clients send, parsed in one place: every integer and JSON document read from a request.

Python's own parsers have limits that are not errors of the input's syntax: `int()` accepts unicode digits
(`²`, `¹²³`) and refuses more than 4300 of them, `json.loads` overflows the stack on deeply nested arrays,
and SQLite stores no integer beyond 64 bits. A request that reaches one of those limits is the client's
mistake, so each is turned here into `Unparsable`, which the routes answer as OVH answers a bad request.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["INT64_MAX", "MAX_JSON_DEPTH", "Unparsable", "parse_int", "parse_json"]

INT64_MAX = 2**63 - 1
# Far more than OVH's schemas nest (a reinstall body is 3 levels deep), far less than the stack allows.
MAX_JSON_DEPTH = 32
_ASCII_DIGITS = re.compile(r"[0-9]+")


class Unparsable(ValueError):
    """The input is not what was expected; the message says why, for the client."""


def parse_int(text: str, *, maximum: int = INT64_MAX) -> int | None:
    """The non-negative integer written in ASCII digits, or None (other characters, or above `maximum`)."""
    if not _ASCII_DIGITS.fullmatch(text) or len(text.lstrip("0")) > len(str(maximum)):
        return None
    value = int(text)
    return value if value <= maximum else None


def _depth(document: Any) -> int:
    deepest, pending = 0, [(document, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in node)
    return deepest


def parse_json(raw: bytes | str) -> Any:
    """The JSON document (None for an empty body); `Unparsable` if it is not UTF-8 JSON of a sane depth."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise Unparsable("not UTF-8") from None
    if not text:
        return None
    try:
        document = json.loads(text)
    except RecursionError:
        raise Unparsable(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as error:  # syntax, or an integer of more digits than Python converts
        raise Unparsable(str(error)) from None
    if _depth(document) > MAX_JSON_DEPTH:
        raise Unparsable(f"nested more than {MAX_JSON_DEPTH} levels deep")
    return document
