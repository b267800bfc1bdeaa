"""Injected faults: what a flaky OVH API does to its clients, on demand and reproducibly.

`PUT /_emulator/faults` replaces the whole set with:

    {"seed": 0, "busyAnswer": "taskAlreadyExists", "rules": [RULE, ...]}

Each rule matches calls by `route` (`"METHOD /1.0/template"` as listed by `GET /_emulator/stats`,
`"METHOD *"` or `"*"`) and optionally `serviceName`; it fires on the next `times` matching calls, or at random
with probability `rate` (seeded by `seed`, so a test sees the same sequence every run), or both, or on every
matching call. A rule does one thing:

- `"status": 500 | 503 | 429 | 404`: answer that error, in OVH's JSON shape, without processing the call (404:
  OVH's "does not exist" for the route's task or server, as OVH answers for a while after a reinstall);
- `"drop": true`: close the connection without an answer, without processing the call;
- `"dropAnswer": true`: process the call, then close the connection before the answer (an accepted reinstall
  whose answer is lost);
- `"task": "ovhError" | "neverFinish"`: the reinstall task created by the call ends in `ovhError`, or never
  ends (route defaults to `POST /1.0/dedicated/server/{serviceName}/reinstall`);
- `"taskStatus": "<any text>"`: a task read answers this status, in or outside OVH's enumeration (route
  defaults to `GET /1.0/dedicated/server/{serviceName}/task/{taskId}`);
- `"latency": seconds`: delay the answer by this many real seconds (may be combined with one of the above);
- `"hold": true`: park the call, its body read, until `POST /_emulator/faults/release` lets it go (may be
  combined with one of the above, which then applies). Tests use it to order two actors without guessing
  how long anything takes: `GET /_emulator/faults` shows how many calls each rule holds right now.

A rule may instead park installs, which make no request a rule could hold (a template or out-of-band
install downloads nothing): `{"holdAtStep": "Downloading OS image", "serviceName": ..., "times": 1}` keeps
the matching install at the start of that step (a step's comment, or the task status `init` or `todo`)
until it is released like a held call; such a rule takes only `serviceName`, `times` and `rate`.

`busyAnswer` picks how a reinstall is refused while another runs, as OVH documents two answers:
`"taskAlreadyExists"` (400 `Client::BadRequest::TaskAlreadyExists`, the default: what production captures
show) or `"conflict"` (409 `Client::Conflict::DisturbAlreadyExists`, the rarer form).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from .plan import PLAN

__all__ = [
    "DEFAULT_BUSY_ANSWER",
    "REINSTALL_ROUTE",
    "TASK_ROUTE",
    "FaultDecision",
    "FaultRule",
    "Faults",
    "spec_errors",
]

REINSTALL_ROUTE = "POST /1.0/dedicated/server/{serviceName}/reinstall"
TASK_ROUTE = "GET /1.0/dedicated/server/{serviceName}/task/{taskId}"
DEFAULT_BUSY_ANSWER = "taskAlreadyExists"

_ACTIONS = ("status", "drop", "dropAnswer", "task", "taskStatus")
_MODIFIERS = ("latency", "hold")
# Where an install can be parked: before it leaves a waiting status, or at the start of a step.
INSTALL_STAGES = ("init", "todo", *(planned.comment for planned in PLAN))
_STAGE_HOLD_FIELDS = ("holdAtStep", "serviceName", "times", "rate")
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
                    "status": {"enum": [404, 429, 500, 503]},
                    "drop": {"const": True},
                    "dropAnswer": {"const": True},
                    "task": {"enum": ["ovhError", "neverFinish"]},
                    "taskStatus": {"type": "string", "maxLength": 64},
                    "latency": {"type": "number", "minimum": 0, "maximum": 600},
                    "hold": {"const": True},
                    "holdAtStep": {"enum": list(INSTALL_STAGES)},
                },
                "anyOf": [{"required": [action]} for action in (*_ACTIONS, *_MODIFIERS, "holdAtStep")],
                "if": {"required": ["holdAtStep"]},
                "then": {"propertyNames": {"enum": list(_STAGE_HOLD_FIELDS)}},
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
            message = f"a rule needs one of {', '.join((*_ACTIONS, *_MODIFIERS, 'holdAtStep'))}"
        elif "propertyNames" in error.schema_path:
            message = (
                f"a holdAtStep rule parks installs, not calls: it takes only {', '.join(_STAGE_HOLD_FIELDS)}"
            )
        elif error.validator == "not":
            message = f"a rule does only one of {', '.join(_ACTIONS)} (latency and hold may be added)"
        else:
            message = error.message
        messages.append(f"{where}: {message}")
    # A holdAtStep rule with several call fields fails once per field, for one reason.
    return list(dict.fromkeys(messages))


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
    task_status: str | None = None
    latency: float = 0.0
    hold: bool = False
    hold_at_step: str | None = None
    fired: int = 0
    held: int = 0
    _released: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FaultRule:
        default_route = REINSTALL_ROUTE if "task" in spec else TASK_ROUTE if "taskStatus" in spec else "*"
        return cls(
            route=_normalize_route(spec.get("route", default_route)),
            service_name=spec.get("serviceName"),
            times=spec.get("times"),
            rate=spec.get("rate"),
            status=spec.get("status"),
            drop=spec.get("drop", False),
            drop_answer=spec.get("dropAnswer", False),
            task=spec.get("task"),
            task_status=spec.get("taskStatus"),
            latency=float(spec.get("latency", 0.0)),
            hold=spec.get("hold", False),
            hold_at_step=spec.get("holdAtStep"),
        )

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"fired": self.fired} if self.hold_at_step else {"route": self.route}
        spec["fired"] = self.fired
        optional = {
            "serviceName": self.service_name,
            "times": self.times,
            "rate": self.rate,
            "status": self.status,
            "task": self.task,
            "taskStatus": self.task_status,
            "drop": self.drop or None,
            "dropAnswer": self.drop_answer or None,
            "latency": self.latency or None,
            "hold": self.hold or None,
            "holdAtStep": self.hold_at_step,
            "held": self.held if self.hold or self.hold_at_step else None,
        }
        spec.update({key: value for key, value in optional.items() if value is not None})
        return spec

    @property
    def has_action(self) -> bool:
        return (
            self.status is not None
            or self.drop
            or self.drop_answer
            or self.task is not None
            or self.task_status is not None
        )

    async def park(self) -> None:
        """Waits until the rule's calls are released (or the rule replaced)."""
        released = self._released
        self.held += 1
        try:
            await released.wait()
        finally:
            self.held -= 1

    def release(self) -> int:
        """Lets every call held now go on; calls that match later are held again. Returns how many went."""
        count = self.held
        self._released.set()
        self._released = asyncio.Event()
        return count

    def matches(self, method: str, route: str, service_name: str | None) -> bool:
        if self.hold_at_step is not None:
            return False
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
    task_status: str | None = None
    holds: list[FaultRule] = field(default_factory=list)

    @property
    def blocks_call(self) -> bool:
        return self.drop or self.status is not None


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0
    busy_answer: str = DEFAULT_BUSY_ANSWER
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    def replace(self, spec: dict[str, Any]) -> None:
        # A held call whose rule is gone would wait forever.
        self.release()
        self.seed = spec.get("seed", 0)
        self.busy_answer = spec.get("busyAnswer", DEFAULT_BUSY_ANSWER)
        self.rules = [FaultRule.from_spec(rule) for rule in spec.get("rules", [])]
        self._rng = random.Random(self.seed)

    def release(self, indexes: list[int] | None = None) -> int:
        """Releases the calls held by the rules at `indexes` (all rules by default); returns how many."""
        chosen = (
            self.rules if indexes is None else [self.rules[i] for i in indexes if 0 <= i < len(self.rules)]
        )
        return sum(rule.release() for rule in chosen)

    async def hold_install(self, service_name: str, stage: str) -> None:
        """Parks an install that reached `stage` (a status or a step) while a rule holds it there."""
        for rule in self.rules:
            matches = rule.service_name in (None, service_name)
            if rule.hold_at_step == stage and matches and self._fires(rule):
                await rule.park()
                return

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
            if rule.task_status is not None and f"{method} {route}" != TASK_ROUTE:
                continue
            if rule.has_action and (decision.blocks_call or decision.drop_answer):
                continue
            if not self._fires(rule):
                continue
            decision.latency += rule.latency
            if rule.hold:
                decision.holds.append(rule)
            if rule.status is not None or rule.drop or rule.drop_answer:
                decision.status = rule.status
                decision.drop = rule.drop
                decision.drop_answer = rule.drop_answer
            if rule.task is not None:
                decision.task = rule.task
            if rule.task_status is not None:
                decision.task_status = rule.task_status
        return decision
