"""A dynamic provider that imports nothing beyond Pulumi: the baseline of the cold-start figure."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CheckResult, ResourceProvider


class EmptyProvider(ResourceProvider):
    """Accepts anything: what the dynamic provider server costs by itself, without ovh_byoi."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])
