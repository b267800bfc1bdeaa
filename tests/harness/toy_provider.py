"""A small dynamic provider whose "cloud" is a directory, so tests can see and change what it did.

Inputs: `world` (directory, required), `size` (int >= 0; a change replaces), `label` (a change updates),
`sleep` (seconds create/update take), `rendezvous` (create waits, at most `sleep` seconds, until that many
creates have started), `fail` (create raises with this text), `crash` (create kills its own
process), `password` (echoed, so the engine's secret marking by name can be checked), `delete_before_replace`
(diff asks for it).

Every call appends a JSON line to `<world>/journal.jsonl` (call, id, name, start/end times, the process id and
the config the process was configured with); `<world>/<id>.json` is the resource as the cloud sees it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)
from pulumi.output import Unknown

_INPUTS = (
    "world",
    "name",
    "size",
    "label",
    "sleep",
    "rendezvous",
    "fail",
    "crash",
    "password",
    "delete_before_replace",
)


def _journal(world: str, call: str, **fields: Any) -> None:
    record = {"call": call, "pid": os.getpid(), "time": time.time(), **fields}
    # One write of one short line with O_APPEND: concurrent calls do not interleave.
    with open(Path(world) / "journal.jsonl", "a", encoding="utf-8") as journal:
        journal.write(json.dumps(record) + "\n")


def read_journal(world: Path) -> list[dict[str, Any]]:
    path = world / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class ToyProvider(ResourceProvider):
    def configure(self, req: ConfigureRequest) -> None:
        # Kept on the instance: each process unpickles its own, configured once before any call.
        self.endpoint = req.config.get("toy:endpoint")
        self.token = req.config.get("toy:token")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        size = news.get("size", 0)
        if not isinstance(size, Unknown) and (not isinstance(size, int | float) or size < 0):
            failures.append(
                CheckFailure("size", f"size must be a number >= 0, got {size!r}; fix the size input")
            )
        if "world" not in news:
            failures.append(CheckFailure("world", "world is required: the directory the toy cloud lives in"))
        if not isinstance(news.get("world"), Unknown) and "world" in news:
            _journal(news["world"], "check", name=news.get("name"))
        return CheckResult(news, failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        _journal(news["world"], "diff", id=id_, name=news.get("name"))
        changed = [key for key in _INPUTS if olds.get(key) != news.get(key)]
        replaces = [key for key in changed if key == "size"]
        return DiffResult(
            changes=bool(changed),
            replaces=replaces,
            delete_before_replace=bool(news.get("delete_before_replace")),
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        world = props["world"]
        id_ = f"toy-{uuid.uuid4().hex[:8]}"
        start = time.time()
        print(f"[{props.get('name')}] creating {id_}", file=sys.stderr, flush=True)
        self._wait(world, id_, props, start)
        if props.get("crash"):
            os.kill(os.getpid(), signal.SIGKILL)
        if props.get("fail"):
            _journal(world, "create-failed", id=id_, name=props.get("name"), start=start, end=time.time())
            raise RuntimeError(str(props["fail"]))
        outs = self._outputs(id_, props)
        (Path(world) / f"{id_}.json").write_text(json.dumps(outs), encoding="utf-8")
        _journal(
            world, "create", id=id_, name=props.get("name"), start=start, end=time.time(), **self._seen()
        )
        print(f"[{props.get('name')}] created {id_}", flush=True)
        return CreateResult(id_, outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        world = props["world"]
        _journal(world, "read", id=id_, name=props.get("name"))
        path = Path(world) / f"{id_}.json"
        if not path.exists():
            return ReadResult(None, {})
        return ReadResult(id_, json.loads(path.read_text(encoding="utf-8")))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        world = news["world"]
        start = time.time()
        time.sleep(float(news.get("sleep", 0)))
        outs = self._outputs(id_, news)
        (Path(world) / f"{id_}.json").write_text(json.dumps(outs), encoding="utf-8")
        _journal(world, "update", id=id_, name=news.get("name"), start=start, end=time.time())
        return UpdateResult(outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        world = props["world"]
        (Path(world) / f"{id_}.json").unlink(missing_ok=True)
        _journal(world, "delete", id=id_, name=props.get("name"))

    @staticmethod
    def _wait(world: str, id_: str, props: dict[str, Any], start: float) -> None:
        """`sleep` seconds; with `rendezvous`, only until that many creates have started (`sleep` is then the
        deadline), so tests see how many calls run at once without betting on timings."""
        seconds = float(props.get("sleep", 0))
        if not props.get("rendezvous"):
            time.sleep(seconds)
            return
        (Path(world) / f"started-{id_}").touch()
        while (
            len(list(Path(world).glob("started-*"))) < int(props["rendezvous"])
            and time.time() < start + seconds
        ):
            time.sleep(0.02)

    def _seen(self) -> dict[str, Any]:
        return {"endpoint": getattr(self, "endpoint", None), "token": getattr(self, "token", None)}

    def _outputs(self, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        outs = {key: props[key] for key in _INPUTS if key in props}
        # A derived value under another name: plain unless the resource lists it in additional_secret_outputs.
        if "password" in props:
            outs["password_length"] = len(str(props["password"]))
        outs["endpoint"] = getattr(self, "endpoint", None)
        outs["serial"] = id_.removeprefix("toy-")
        return outs


class Toy(Resource):
    """The program-side resource; `serial`, `endpoint` and `password_length` are computed by the provider."""

    serial: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    size: pulumi.Output[int]
    label: pulumi.Output[str]
    password_length: pulumi.Output[int]

    def __init__(
        self,
        name: str,
        *,
        world: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
        **props: Any,
    ) -> None:
        super().__init__(
            ToyProvider(),
            name,
            {
                "world": world,
                "name": name,
                "serial": None,
                "endpoint": None,
                "password_length": None,
                **{key: None for key in ("size", "label")},
                **props,
            },
            opts,
        )
