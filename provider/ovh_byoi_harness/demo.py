"""`scripts/demo`: servers installed from your own image on a local OVH API emulator, in well under a minute.

1. Builds real disk images with real tools (sfdisk, mkfs.vfat, mtools, qemu-img) and starts the emulator with
   three servers, its clock compressed (`--speed`, 60 times by default: a 10-minute install takes 10 s).
2. Shows `ovh-byoi verify-image` passing the good image and catching two broken ones, before any server is
   erased.
3. Applies the demo stack (`Pulumi.yaml`, `__main__.py`, `Pulumi.demo.yaml`, copied to a temporary folder with
   the emulator's address): with the Pulumi CLI on PATH, `pulumi up` against a local backend in that folder;
   without it, the same program through the project's local engine, labelled as such.
4. Applies it again: nothing changes.
5. Reinstalls a server behind the stack's back, and shows `pulumi refresh --preview-only --expect-no-changes`
   reporting the drift.
6. Records the drift (`pulumi refresh`) and shows the replacement `pulumi preview` then offers a reviewer.

The emulator is stopped and the temporary folder removed at the end, whatever happens.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

import click
import yaml
from ovh_emulator.images import build_image
from ovh_emulator.testing import RunningEmulator, start_emulator

from .engine import ChangesNotExpectedError, EngineError, RunResult
from .runner import Operation, apply_project

__all__ = ["DEMO_ADDRESS", "DEMO_STACK", "main", "retarget", "stack_config"]

# The address the demo stack's config (and the examples' emulator stacks) use; a demo run points it elsewhere.
DEMO_ADDRESS = "http://127.0.0.1:8790"
DEMO_STACK = "demo"
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", f"Pulumi.{DEMO_STACK}.yaml")
EMULATED_INSTALL_SECONDS = 600
SERVERS = 3
MANAGED_SERVERS = ("ns1000001.emulator.ovh", "ns1000002.emulator.ovh")
DRIFTING_SERVER = MANAGED_SERVERS[1]
UNMANAGED_SERVER = "ns1000003.emulator.ovh"
GOOD_EFI_PATH = r"\efi\debian\grubx64.efi"
WRONG_EFI_PATH = r"\efi\ubuntu\shimx64.efi"

Echo = Callable[[str], None]


def retarget(value: Any, base_url: str) -> Any:
    """`value` (config: strings, lists, mappings) with every URL of `DEMO_ADDRESS` moved to `base_url`."""
    if isinstance(value, str):
        return base_url + value[len(DEMO_ADDRESS) :] if value.startswith(DEMO_ADDRESS) else value
    if isinstance(value, Mapping):
        return {key: retarget(item, base_url) for key, item in value.items()}
    if isinstance(value, list):
        return [retarget(item, base_url) for item in value]
    return value


def stack_config(project_dir: Path, stack: str) -> dict[str, Any]:
    """The `config` section of `Pulumi.<stack>.yaml`, as written (namespaced keys, structured values)."""
    document = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")) or {}
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise click.ClickException(f"{project_dir}/Pulumi.{stack}.yaml: `config` must be a mapping")
    return config


def provider_env(work: Path, speed: float) -> dict[str, str]:
    """The provider's waits follow the emulator's compressed clock (a testing knob, see the README), and its
    record of the reinstalls it asked for stays in the demo's folder."""
    return {"OVH_BYOI_TIME_SCALE": f"{speed:g}", "OVH_BYOI_JOURNAL": str(work / "reinstalls.sqlite")}


def _say(text: str = "") -> None:
    print(text, flush=True)


def _section(title: str) -> None:
    _say()
    _say(f"=== {title}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _quoted(argument: str) -> str:
    return f"'{argument}'" if any(ch in argument for ch in " \\'\"$") else argument


def _run_shown(command: Sequence[str], *, shown: str, env: Mapping[str, str] | None = None) -> int:
    """Run a command as a user would type it, printing the command line then its output as it comes."""
    _say(f"$ {shown}")
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip():
            _say("  " + line.rstrip("\n"))
    return process.wait()


def _ovh_byoi() -> list[str]:
    script = Path(sys.executable).with_name("ovh-byoi")
    return (
        [str(script)] if script.exists() else [sys.executable, "-c", "from ovh_byoi.cli import main; main()"]
    )


# --- the two ways of applying the stack ---------------------------------------------------------------------


class Applier(Protocol):
    """Runs the demo stack's operations; each says in its output what it did."""

    def up(self, *, expect_no_changes: bool = False) -> bool:
        """`pulumi up`; False when it failed (or changed something while `expect_no_changes`)."""

    def drift_check(self) -> str | None:
        """`pulumi refresh --preview-only --expect-no-changes`: None when in sync, else what drifted."""

    def refresh_then_preview(self, names: Sequence[str]) -> list[str] | None:
        """`pulumi refresh --yes`, then `pulumi preview`: which of `names` it would replace (None: failed)."""


class PulumiCli:
    """The real Pulumi CLI, with a local backend and a passphrase in the demo's temporary folder."""

    def __init__(self, pulumi: str, project: Path, work: Path, speed: float) -> None:
        self.pulumi = pulumi
        self.project = project
        self.env = {
            "PULUMI_BACKEND_URL": (work / "backend").as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": "demo passphrase",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            **provider_env(work, speed),
        }
        (work / "backend").mkdir()
        version = subprocess.run([pulumi, "version"], capture_output=True, text=True, check=False).stdout
        self.description = f"Pulumi CLI {version.strip()}, local backend in {work / 'backend'}"

    def _pulumi(self, *args: str) -> tuple[int, str]:
        lines: list[str] = []
        _say(f"$ pulumi {' '.join(args)}")
        process = subprocess.Popen(
            [self.pulumi, *args, "--stack", DEMO_STACK, "--non-interactive"],
            cwd=self.project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **self.env},
        )
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            _say("  " + line.rstrip("\n"))
        return process.wait(), "".join(lines)

    def up(self, *, expect_no_changes: bool = False) -> bool:
        if not (self.project / ".stack-created").exists():
            code, _ = self._pulumi("stack", "init")
            if code != 0:
                return False
            (self.project / ".stack-created").touch()
        args = ["up", "--yes"] + (["--expect-no-changes"] if expect_no_changes else [])
        code, _ = self._pulumi(*args)
        return code == 0

    def drift_check(self) -> str | None:
        code, output = self._pulumi("refresh", "--preview-only", "--expect-no-changes", "--diff")
        if code == 0:
            return None
        drifted = [line.strip() for line in output.splitlines() if "outside this stack" in line]
        return "\n".join(drifted) or f"pulumi refresh exited with status {code} (see above)"

    def refresh_then_preview(self, names: Sequence[str]) -> list[str] | None:
        refreshed, _ = self._pulumi("refresh", "--yes")
        previewed, output = self._pulumi("preview")
        if refreshed != 0 or previewed != 0:
            return None
        lines = [line for line in output.splitlines() if "replace" in line]
        return [name for name in names if any(name in line for line in lines)]


class LocalHarness:
    """The project's local engine: the same program and real provider processes, state in a file."""

    def __init__(self, project: Path, work: Path, speed: float) -> None:
        self.project = project
        self.state = work / "state.json"
        self.env = provider_env(work, speed)

    def _apply(self, operation: Operation, *, expect_no_changes: bool) -> RunResult:
        return apply_project(
            self.project,
            stack=DEMO_STACK,
            state_path=self.state,
            operation=operation,
            env=self.env,
            expect_no_changes=expect_no_changes,
            echo=lambda line: _say("  " + line),
        )

    def up(self, *, expect_no_changes: bool = False) -> bool:
        try:
            return self._apply("up", expect_no_changes=expect_no_changes).ok
        except ChangesNotExpectedError as error:
            _say(f"  error: {error}")
            return False

    def drift_check(self) -> str | None:
        try:
            result = self._apply("refresh-preview", expect_no_changes=True)
        except ChangesNotExpectedError as error:
            _say(f"  error: {error}")
            drifts = [
                error.result.outputs.get(step.urn, {}).get("drift") or f"{step.name} no longer exists"
                for step in error.result.changes()
            ]
            return "\n".join(drifts)
        return None if result.ok else "the refresh failed (see above)"

    def refresh_then_preview(self, names: Sequence[str]) -> list[str] | None:
        refreshed = self._apply("refresh", expect_no_changes=False)
        previewed = self._apply("preview", expect_no_changes=False)
        if not (refreshed.ok and previewed.ok):
            return None
        return [step.name for step in previewed.steps if step.op == "replace" and step.name in names]


# --- the demo -----------------------------------------------------------------------------------------------


def _build_images(folder: Path) -> dict[str, Path]:
    _section("1. Real disk images, built with sfdisk, mkfs.vfat, mtools and qemu-img")
    images = {
        "debian.qcow2": build_image(folder / "debian.qcow2", fmt="qcow2"),
        "no-table.raw": build_image(folder / "no-table.raw", partition_table=False),
    }
    _say("debian.qcow2  a GPT disk whose EFI system partition holds EFI/debian/grubx64.efi: to install")
    _say("no-table.raw  a bare FAT file system: no partition table, which OVH refuses as a raw image")
    return images


def _verify_images(emulator: RunningEmulator, checksum: str) -> None:
    _section("2. ovh-byoi verify-image: problems caught before any server is erased")
    good = emulator.image_url("debian.qcow2")
    checks = [
        ["--full", "--checksum", checksum, "--efi-path", GOOD_EFI_PATH],
        ["--type", "raw"],
        ["--full", "--efi-path", WRONG_EFI_PATH],
    ]
    urls = [good, emulator.image_url("no-table.raw"), good]
    for url, options in zip(urls, checks, strict=True):
        shown = " ".join(["ovh-byoi", "verify-image", url, *(_quoted(option) for option in options)])
        code = _run_shown([*_ovh_byoi(), "verify-image", url, *options], shown=shown)
        _say(f"  (exit status {code})")


def _project_copy(project: Path, work: Path, emulator: RunningEmulator, checksum: str) -> Path:
    """The demo stack in `work/project`, its config pointing at the running emulator."""
    copy = work / "project"
    copy.mkdir()
    for name in PROJECT_FILES:
        if not (project / name).exists():
            raise click.ClickException(f"{project}: no {name}; run the demo from the project's checkout")
    shutil.copy2(project / "__main__.py", copy / "__main__.py")
    settings = yaml.safe_load((project / "Pulumi.yaml").read_text(encoding="utf-8"))
    # The copy runs in this interpreter's virtualenv (the project's .venv), wherever the copy lives.
    settings["runtime"] = {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": sys.prefix},
    }
    (copy / "Pulumi.yaml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    config = retarget(stack_config(project, DEMO_STACK), emulator.base_url)
    defaults = config.get("ovh-byoi:defaults")
    if isinstance(defaults, dict):
        # With a checksum, the image is identified by its bytes: moving it to another URL reinstalls nothing.
        defaults["image_checksum"] = checksum
    stack_file = copy / f"Pulumi.{DEMO_STACK}.yaml"
    stack_file.write_text(yaml.safe_dump({"config": config}, sort_keys=False), encoding="utf-8")
    return copy


def _applier(engine: str, project: Path, work: Path, speed: float) -> Applier:
    pulumi = shutil.which("pulumi") if engine in ("auto", "cli") else None
    if engine == "cli" and pulumi is None:
        raise click.ClickException("--engine cli: no `pulumi` on PATH (https://www.pulumi.com/docs/install/)")
    if pulumi is not None:
        cli = PulumiCli(pulumi, project, work, speed)
        _say(f"Applying with the {cli.description}")
        return cli
    _say("No Pulumi CLI on PATH: the stack is applied by the project's local engine instead, which runs the")
    _say("same program under Pulumi's mocks with real provider processes (labelled below). With the CLI")
    _say("installed, this demo runs `pulumi up` itself.")
    return LocalHarness(project, work, speed)


def run_demo(project: Path, *, speed: float, engine: str) -> bool:
    started = time.monotonic()
    ok = True
    with ExitStack() as cleanup:
        work = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="ovh-byoi-demo-")))
        images = _build_images(work / "images")
        checksum = _sha256(images["debian.qcow2"])
        emulator = cleanup.enter_context(start_emulator(servers=SERVERS, speed=speed, images=work / "images"))
        _say()
        _say(
            f"OVH API emulator at {emulator.url} with {SERVERS} servers, emulated at {speed:g}x: "
            f"an install that takes OVH about {EMULATED_INSTALL_SECONDS // 60} minutes takes "
            f"{EMULATED_INSTALL_SECONDS / speed:.0f} s here."
        )
        _verify_images(emulator, checksum)

        copy = _project_copy(project, work, emulator, checksum)
        _section("3. pulumi up: the demo stack installs debian.qcow2 on two servers")
        applier = _applier(engine, copy, work, speed)
        if not applier.up():
            _say("The first update failed (see above).")
            return False
        for service_name in MANAGED_SERVERS:
            view = emulator.server(service_name)
            _say(f"emulator: {service_name} runs {view['os']}, {len(view['installs'])} install(s) on record")

        _section("4. pulumi up again: nothing to do, no server touched")
        before = emulator.stats().get("POST /1.0/dedicated/server/{serviceName}/reinstall", 0)
        unchanged = applier.up(expect_no_changes=True)
        after = emulator.stats().get("POST /1.0/dedicated/server/{serviceName}/reinstall", 0)
        if unchanged and after == before:
            _say(f"No change: the second run asked OVH for no reinstall ({after} reinstall requests in all).")
        else:
            _say("Unexpected: the second run changed something (see above).")
            ok = False

        _section("5. Drift: someone reinstalls a server from OVH's control panel")
        task = emulator.reinstall_out_of_band(DRIFTING_SERVER, "debian12_64")
        _say(
            f"emulator: {DRIFTING_SERVER} reinstalled with debian12_64 out of band, OVH task {task['taskId']}"
        )
        drift = applier.drift_check()
        if drift:
            _say("Drift reported, as a scheduled drift check would (its job fails):")
            for line in drift.splitlines():
                _say(f"  {line}")
        else:
            _say("Unexpected: no drift was reported.")
            ok = False

        _section("6. What a reviewer sees next: refresh records the drift, the preview shows the reinstall")
        replaced = applier.refresh_then_preview(MANAGED_SERVERS)
        if replaced == [DRIFTING_SERVER]:
            _say(
                f"The preview shows {DRIFTING_SERVER} as a `+-` replacement: `pulumi up` would erase it and "
                "install the image again. Nothing was run."
            )
        else:
            _say(f"Unexpected: the preview replaces {'nothing (failed)' if replaced is None else replaced}.")
            ok = False

        untouched = emulator.server(UNMANAGED_SERVER)
        _say()
        _say(
            f"{UNMANAGED_SERVER} is not in the stack: it still runs {untouched['os']}, "
            f"{len(untouched['installs'])} install(s) on record."
        )
        _say(f"Cleaning up: stopping the emulator and removing {work}.")
    _say(f"Demo {'done' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s.")
    return ok


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The project whose demo stack to apply (Pulumi.yaml, __main__.py, Pulumi.demo.yaml).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="How many times faster than OVH the emulator runs (and the provider waits).",
)
@click.option(
    "--engine",
    type=click.Choice(["auto", "cli", "harness"]),
    default="auto",
    show_default=True,
    help="Apply with the Pulumi CLI (cli), the local engine (harness), or the CLI when it is on PATH (auto).",
)
def main(project: Path, speed: float, engine: str) -> None:
    """Install your own image on servers of a local OVH API emulator, with verify-image and pulumi up."""
    try:
        ok = run_demo(project.resolve(), speed=speed, engine=engine)
    except EngineError as error:
        raise click.ClickException(str(error)) from None
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
