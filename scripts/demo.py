"""`scripts/demo`: servers installed from your own image on a local OVH API emulator, by the real `pulumi up`.

1. Builds real disk images with real tools (sfdisk, mkfs.vfat, mtools, qemu-img) and starts the emulator with
   three servers, its clock compressed (`--speed`, 60 times by default: a 10-minute install takes 10 s).
2. Shows `ovh-byoi verify-image` passing the good image and catching two broken ones, before any server is
   erased.
3. Copies the demo stack (`Pulumi.yaml`, `__main__.py`, `Pulumi.demo.yaml` with the emulator's address) to a
   temporary folder, sets its credentials with `pulumi config set --secret`, and runs `pulumi up` with the
   Pulumi CLI that `scripts/bootstrap` put in the virtualenv, against a local backend in that folder.
4. Runs `pulumi up` again: nothing changes.
5. Reinstalls a server behind the stack's back, and shows `pulumi refresh --preview-only --expect-no-changes`
   reporting the drift.
6. Records the drift (`pulumi refresh`) and shows the replacement `pulumi preview` then offers a reviewer.

The emulator is stopped and the temporary folder removed at the end, whatever happens. Not shipped with the
package: it drives the checkout's own project and tools.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import click
import yaml
from ovh_emulator.images import build_image
from ovh_emulator.testing import RunningEmulator, start_emulator

# The address the demo stack's config uses; a demo run points it at the emulator it started.
DEMO_STACK = "demo"
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", f"Pulumi.{DEMO_STACK}.yaml")
# The secrets Pulumi.demo.yaml's comments set with `pulumi config set --secret [--path]`: the engine stores
# the whole stack config as the dynamic provider's inputs, in plain text but for the keys set as secrets, and
# the root stack refuses these in plain config.
DEMO_USER_DATA = "#cloud-config\npackages: [htop, vim]\ntimezone: Europe/Paris\n"
DEMO_METADATA_KEY = 'ovh-byoi:servers["ns1000002.emulator.ovh"].config_drive_metadata.role'
EMULATED_INSTALL_SECONDS = 600
SERVERS = 3
MANAGED_SERVERS = ("ns1000001.emulator.ovh", "ns1000002.emulator.ovh")
DRIFTING_SERVER = MANAGED_SERVERS[1]
UNMANAGED_SERVER = "ns1000003.emulator.ovh"
GOOD_EFI_PATH = r"\efi\debian\grubx64.efi"
WRONG_EFI_PATH = r"\efi\ubuntu\shimx64.efi"
REINSTALL = "POST /1.0/dedicated/server/{serviceName}/reinstall"


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


def _stream(
    command: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """Run `command`, printing its output indented as it comes; returns (exit status, output)."""
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if line.strip():
            _say("  " + line.rstrip("\n"))
    return process.wait(), "".join(lines)


def pulumi_cli() -> Path:
    """The CLI `scripts/bootstrap` linked into this virtualenv, else one on PATH."""
    linked = Path(sys.prefix) / "bin" / "pulumi"
    if linked.exists():
        return linked
    found = shutil.which("pulumi")
    if found is None:
        raise click.ClickException("no Pulumi CLI: run scripts/bootstrap, which installs or builds one")
    return Path(found)


class Stack:
    """The demo stack in a temporary folder, run by the real Pulumi CLI against a local file backend."""

    def __init__(self, pulumi: Path, project: Path, work: Path, speed: float) -> None:
        self.pulumi = pulumi
        self.project = project
        (work / "backend").mkdir()
        self.env = {
            "PATH": f"{pulumi.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PULUMI_HOME": str(work / "pulumi-home"),
            "PULUMI_BACKEND_URL": (work / "backend").as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": "demo passphrase",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            # A testing knob (docs/reference.md, "Configuration"): the provider waits in step with the
            # emulator's compressed clock, and keeps its record of the reinstalls it asked for in the demo's
            # folder.
            "OVH_BYOI_TIME_SCALE": f"{speed:g}",
            "OVH_BYOI_JOURNAL": str(work / "reinstalls.sqlite"),
        }

    def version(self) -> str:
        done = subprocess.run(
            [str(self.pulumi), "version"], capture_output=True, text=True, env={**os.environ, **self.env}
        )
        return done.stdout.strip()

    def run(self, *args: str, shown: Sequence[str] | None = None) -> tuple[int, str]:
        """`pulumi ARGS` in the stack's folder, shown as typed (`shown` hides nothing but flags)."""
        _say(f"$ pulumi {' '.join(_quoted(arg) for arg in (shown or args))}")
        return _stream([str(self.pulumi), *args, "--non-interactive"], cwd=self.project, env=self.env)


def _build_images(folder: Path) -> dict[str, Path]:
    _section("1. Real disk images, built with sfdisk, mkfs.vfat, mtools and qemu-img")
    images = {
        "debian.qcow2": build_image(folder / "debian.qcow2", fmt="qcow2"),
        "no-table.raw": build_image(folder / "no-table.raw", partition_table=False),
    }
    _say("debian.qcow2  a GPT disk whose EFI system partition holds EFI/debian/grubx64.efi: to install")
    _say("no-table.raw  a bare FAT file system: no partition table, which OVH refuses as a raw image")
    return images


def _ovh_byoi() -> list[str]:
    script = Path(sys.executable).with_name("ovh-byoi")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ovh_byoi.cli"]


def _verify_images(emulator: RunningEmulator, checksum: str) -> None:
    _section("2. ovh-byoi verify-image: problems caught before any server is erased")
    good = emulator.image_url("debian.qcow2")
    checks = [
        (good, ["--full", "--checksum", checksum, "--efi-path", GOOD_EFI_PATH]),
        (emulator.image_url("no-table.raw"), ["--type", "raw"]),
        (good, ["--full", "--efi-path", WRONG_EFI_PATH]),
    ]
    for url, options in checks:
        _say(" ".join(["$ ovh-byoi", "verify-image", url, *(_quoted(option) for option in options)]))
        code, _ = _stream([*_ovh_byoi(), "verify-image", url, *options])
        _say(f"  (exit status {code})")


def _project_copy(
    project: Path, work: Path, emulator: RunningEmulator, checksum: str
) -> tuple[Path, dict[str, str]]:
    """The demo stack in `work/project`, pointed at the running emulator; returns it and the secrets that
    `pulumi config set --secret` must set (left out of the stack file)."""
    for name in PROJECT_FILES:
        if not (project / name).exists():
            raise click.ClickException(f"{project}: no {name}; run the demo from the project's checkout")
    copy = work / "project"
    copy.mkdir()
    shutil.copy2(project / "__main__.py", copy / "__main__.py")
    settings = yaml.safe_load((project / "Pulumi.yaml").read_text(encoding="utf-8"))
    # The copy runs in this interpreter's virtualenv (the project's .venv), wherever the copy lives.
    settings["runtime"] = {"name": "python", "options": {"toolchain": "pip", "virtualenv": sys.prefix}}
    (copy / "Pulumi.yaml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    document = yaml.safe_load((project / f"Pulumi.{DEMO_STACK}.yaml").read_text(encoding="utf-8")) or {}
    config = emulator.retarget(document.get("config") or {})
    secrets = {
        "ovh:applicationSecret": emulator.application_secret,
        "ovh:consumerKey": emulator.consumer_key,
        "ovh-byoi:defaults.config_drive_user_data": DEMO_USER_DATA,
        DEMO_METADATA_KEY: "web",
    }
    defaults = config.get("ovh-byoi:defaults")
    if isinstance(defaults, dict):
        # With a checksum, the image is identified by its bytes: moving it to another URL reinstalls nothing.
        defaults["image_checksum"] = checksum
    stack_file = copy / f"Pulumi.{DEMO_STACK}.yaml"
    stack_file.write_text(yaml.safe_dump({"config": config}, sort_keys=False), encoding="utf-8")
    return copy, secrets


def _reinstall_requests(emulator: RunningEmulator) -> int:
    return emulator.stats().get(REINSTALL, 0)


def _first_up(stack: Stack, emulator: RunningEmulator, secrets: Mapping[str, str], work: Path) -> bool:
    _section("3. pulumi up: the demo stack installs debian.qcow2 on two servers")
    _say(f"Pulumi CLI {stack.version()}, a local backend in {work / 'backend'}, the stack in {stack.project}")
    if stack.run("stack", "init", DEMO_STACK)[0] != 0:
        return False
    for key, value in secrets.items():
        path = ["--path"] if "." in key.split(":", 1)[1] else []
        if stack.run("config", "set", "--secret", *path, key, value)[0] != 0:
            return False
    if stack.run("up", "--yes")[0] != 0:
        _say("The first update failed (see above).")
        return False
    for service_name in MANAGED_SERVERS:
        view = emulator.server(service_name)
        _say(f"emulator: {service_name} runs {view['os']}, {len(view['installs'])} install(s) on record")
    return True


def _second_up(stack: Stack, emulator: RunningEmulator) -> bool:
    _section("4. pulumi up again: nothing to do, no server touched")
    before = _reinstall_requests(emulator)
    code, _ = stack.run("up", "--yes", "--expect-no-changes")
    after = _reinstall_requests(emulator)
    if code == 0 and after == before:
        _say(f"No change: the second run asked OVH for no reinstall ({after} reinstall requests in all).")
        return True
    _say("Unexpected: the second run changed something (see above).")
    return False


def _drift(stack: Stack, emulator: RunningEmulator) -> bool:
    _section("5. Drift: someone reinstalls a server from OVH's control panel")
    task = emulator.reinstall_out_of_band(DRIFTING_SERVER, "debian12_64")
    _say(f"emulator: {DRIFTING_SERVER} reinstalled with debian12_64 out of band, task {task['taskId']}")
    code, output = stack.run("refresh", "--preview-only", "--expect-no-changes", "--diff")
    # `--diff` shows each drifted server's new `drift` output: the reason, in the provider's words.
    drifted = sorted(set(re.findall(r'^\s*[+~]\s*drift\s*:\s*"(.+)"\s*$', output, re.MULTILINE)))
    if code != 0 and drifted:
        _say(f"Drift reported (exit status {code}), as a scheduled drift check would (its job fails):")
        for line in drifted:
            _say(f"  {line}")
        return True
    _say(f"Unexpected: no drift was reported (exit status {code}).")
    return False


def _review(stack: Stack) -> bool:
    _section("6. What a reviewer sees next: refresh records the drift, the preview shows the reinstall")
    refreshed, _ = stack.run("refresh", "--yes")
    previewed, output = stack.run("preview")
    replaced = [
        name
        for name in MANAGED_SERVERS
        if re.search(rf"^\s*\+-\s.*\b{re.escape(name)}\s+replace\b", output, re.MULTILINE)
    ]
    if refreshed == 0 and previewed == 0 and replaced == [DRIFTING_SERVER]:
        _say(
            f"The preview shows {DRIFTING_SERVER} as a `+-` replacement: `pulumi up` would erase it and "
            "install the image again. Nothing was run."
        )
        return True
    _say(f"Unexpected: the preview replaces {replaced or 'nothing'} (see above).")
    return False


def run_demo(project: Path, *, speed: float) -> bool:
    started = time.monotonic()
    pulumi = pulumi_cli()
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

        copy, secrets = _project_copy(project, work, emulator, checksum)
        stack = Stack(pulumi, copy, work, speed)
        if not _first_up(stack, emulator, secrets, work):
            return False
        # Each later step runs even when one before it went wrong: the demo shows everything it can.
        ok = all([_second_up(stack, emulator), _drift(stack, emulator), _review(stack)])

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
    default=Path(__file__).resolve().parents[1],
    show_default="the checkout",
    help="The project whose demo stack to apply (Pulumi.yaml, __main__.py, Pulumi.demo.yaml).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="How many times faster than OVH the emulator runs (and the provider waits).",
)
def main(project: Path, speed: float) -> None:
    """Install your own image on servers of a local OVH API emulator, with verify-image and pulumi up."""
    sys.exit(0 if run_demo(project.resolve(), speed=speed) else 1)


if __name__ == "__main__":
    main()
