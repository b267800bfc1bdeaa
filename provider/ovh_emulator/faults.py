"""Injected faults: what a flaky OVH API does to its clients, on demand and reproducibly.

`PUT /_emulator/faults` replaces the whole set with:

    {"seed": 0, "busyAnswer": "conflict", "rules": [RULE, ...]}

Each rule matches calls by `route` (`"METHOD /1.0/template"` as listed by `GET /_emulator/stats`,
`"METHOD *"` or `"*"`) and optionally `serviceName`; it fires on the next `times` matching calls, or at random
with probability `rate` (seeded by `seed`, so a test sees the same sequence every run), or both, or on every
matching call. A rule does one thing:

- `"status": 500 | 503 | 429`: answer that error, in OVH's JSON shape, without processing the call;
- `"drop": true`: close the connection without an answer, without processing the call;
- `"dropAnswer": true`: process the call, then close the connection before the answer (an accepted reinstall
  whose answer is lost);
- `"task": "ovhError" | "neverFinish"`: the reinstall task created by the call ends in `ovhError`, or never
  ends (route defaults to `POST /1.0/dedicated/server/{serviceName}/reinstall`);
- `"latency": seconds`: delay the answer by this many real seconds (may be combined with one of the above).

`busyAnswer` picks how a reinstall is refused while another runs, as OVH documents two answers: `"conflict"`
(409 `Client::Conflict::DisturbAlreadyExists`, the default) or `"taskAlreadyExists"` (400
`Client::BadRequest::TaskAlreadyExists`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import jsonschema

__all__ = ["REINSTALL_ROUTE", "FaultDecision", "FaultRule", "Faults", "spec_errors"]

REINSTALL_ROUTE = "POST /1.0/dedicated/server/{serviceName}/reinstall"

_ACTIONS = ("status", "drop", "dropAnswer", "task")
SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "seed": {"type": "integer"},
        "busyAnswer": {"enum": ["conflict", "taskAlreadyExists"]},
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "route": {"type": "string", "pattern": r"^(\*|[A-Z]+ (\*|/\S*))$"},
                    "serviceName": {"type": "string"},
                    "times": {"type": "integer", "minimum": 0},
                    "rate": {"type": "number", "minimum": 0, "maximum": 1},
                    "status": {"enum": [429, 500, 503]},
                    "drop": {"const": True},
                    "dropAnswer": {"const": True},
                    "task": {"enum": ["ovhError", "neverFinish"]},
                    "latency": {"type": "number", "minimum": 0, "maximum": 600},
                },
                "anyOf": [{"required": [action]} for action in (*_ACTIONS, "latency")],
                "not": {
                    "anyOf": [
                        {"required": [first, second]}
                        for index, first in enumerate(_ACTIONS)
                        for second in _ACTIONS[index + 1 :]
                    ]
                },
            },
        },
    },
}


def spec_errors(spec: Any) -> list[str]:
    """Every problem of a fault spec, each naming the field (`rules.0.status: ...`)."""
    validator = jsonschema.Draft202012Validator(SPEC_SCHEMA)
    messages = []
    for error in sorted(validator.iter_errors(spec), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(part) for part in error.absolute_path) or "spec"
        if error.validator == "anyOf" and error.absolute_path and error.absolute_path[0] == "rules":
            message = f"a rule needs one of {', '.join((*_ACTIONS, 'latency'))}"
        elif error.validator == "not":
            message = f"a rule does only one of {', '.join(_ACTIONS)} (latency may be added)"
        else:
            message = error.message
        messages.append(f"{where}: {message}")
    return messages


def _normalize_route(route: str) -> str:
    if route == "*":
        return route
    method, path = route.split(" ", 1)
    if path != "*" and not path.startswith(("/1.0/", "/images/")):
        path = "/1.0" + path
    return f"{method} {path}"


@dataclass
class FaultRule:
    route: str
    service_name: str | None = None
    times: int | None = None
    rate: float | None = None
    status: int | None = None
    drop: bool = False
    drop_answer: bool = False
    task: str | None = None
    latency: float = 0.0
    fired: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FaultRule:
        default_route = REINSTALL_ROUTE if "task" in spec else "*"
        return cls(
            route=_normalize_route(spec.get("route", default_route)),
            service_name=spec.get("serviceName"),
            times=spec.get("times"),
            rate=spec.get("rate"),
            status=spec.get("status"),
            drop=spec.get("drop", False),
            drop_answer=spec.get("dropAnswer", False),
            task=spec.get("task"),
            latency=float(spec.get("latency", 0.0)),
        )

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"route": self.route, "fired": self.fired}
        optional = {
            "serviceName": self.service_name,
            "times": self.times,
            "rate": self.rate,
            "status": self.status,
            "task": self.task,
            "drop": self.drop or None,
            "dropAnswer": self.drop_answer or None,
            "latency": self.latency or None,
        }
        spec.update({key: value for key, value in optional.items() if value is not None})
        return spec

    @property
    def has_action(self) -> bool:
        return self.status is not None or self.drop or self.drop_answer or self.task is not None

    def matches(self, method: str, route: str, service_name: str | None) -> bool:
        if self.service_name is not None and self.service_name != service_name:
            return False
        if self.route == "*":
            return True
        rule_method, rule_path = self.route.split(" ", 1)
        return rule_method == method and rule_path in ("*", route)


@dataclass
class FaultDecision:
    """What the matching rules decided for one call."""

    latency: float = 0.0
    status: int | None = None
    drop: bool = False
    drop_answer: bool = False
    task: str | None = None

    @property
    def blocks_call(self) -> bool:
        return self.drop or self.status is not None


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0
    busy_answer: str = "conflict"
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    def replace(self, spec: dict[str, Any]) -> None:
        self.seed = spec.get("seed", 0)
        self.busy_answer = spec.get("busyAnswer", "conflict")
        self.rules = [FaultRule.from_spec(rule) for rule in spec.get("rules", [])]
        self._rng = random.Random(self.seed)

    def to_spec(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "busyAnswer": self.busy_answer,
            "rules": [rule.to_spec() for rule in self.rules],
        }

    def _fires(self, rule: FaultRule) -> bool:
        if rule.times is not None and rule.times <= 0:
            return False
        if rule.rate is not None and self._rng.random() >= rule.rate:
            return False
        if rule.times is not None:
            rule.times -= 1
        rule.fired += 1
        return True

    def decide(self, method: str, route: str, service_name: str | None) -> FaultDecision:
        """What happens to this call; a rule that cannot apply any more is neither consumed nor drawn."""
        decision = FaultDecision()
        for rule in self.rules:
            if not rule.matches(method, route, service_name):
                continue
            creates_task = f"{method} {route}" == REINSTALL_ROUTE
            if rule.task is not None and (not creates_task or decision.task is not None):
                continue
            if rule.has_action and (decision.blocks_call or decision.drop_answer):
                continue
            if not self._fires(rule):
                continue
            decision.latency += rule.latency
            if rule.status is not None or rule.drop or rule.drop_answer:
                decision.status = rule.status
                decision.drop = rule.drop
                decision.drop_answer = rule.drop_answer
            if rule.task is not None:
                decision.task = rule.task
        return decision
