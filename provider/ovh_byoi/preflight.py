"""Checks an image before a destructive reinstall: every problem found before OVH erases the server."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Finding"]


@dataclass(frozen=True)
class Finding:
    """One problem with the declared image: the field to change, what is wrong, and how to fix it."""

    field: str
    message: str
    fix: str
